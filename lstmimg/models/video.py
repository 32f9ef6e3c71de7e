"""Video models: clips ``(B, T, C, H, W)`` (float, normalised) -> logits ``(B, num_classes)``, with the
recurrent state carried from one window of a long video to the next."""

from __future__ import annotations

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.models.layers import FrozenCNN, SequenceReader, build_cnn, channels_last, read_prefixes, run_cnn, small_cnn


class LRCN(FrozenCNN, nn.Module):
    """Long-term recurrent convolutional network over clips ``(B, T, C, H, W)``.

    Frames are read forward in time only (the spec fixes ``bidirectional=False``), so the state can be
    carried from one window of a long video to the next (``forward_window``). Each frame's CNN map is
    pooled to a 4x4 grid (keeping coarse position, so motion is visible), projected to ``embed``
    features, and the frame sequence is read by the recurrent layer.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.backbone, self.frozen = cfg.backbone is not None, cfg.freeze_backbone
        self.motion = cfg.in_channels - 3 if cfg.motion in ("diff", "flow") else 0  # motion channels after RGB (motion.py)
        self.two_stream = bool(self.motion) and (cfg.fusion == "two-stream" or self.backbone)  # a backbone takes RGB only
        self.cnn, (feat, _, _) = build_cnn(cfg.replace(in_channels=3) if self.two_stream else cfg)
        self.frame_embed = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(feat * 16, cfg.embed), nn.ReLU())
        width = cfg.embed
        if self.two_stream:  # motion's own small CNN; its features join the RGB features before the LSTM
            self.motion_cnn = small_cnn(self.motion, cfg.cnn_channels).to(memory_format=torch.channels_last)
            self.motion_embed = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(cfg.cnn_channels[-1] * 16, cfg.embed), nn.ReLU())
            width += cfg.embed
        self.reader = SequenceReader(width, cfg)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(self.reader.out_features, cfg.num_classes))

    def encode_frames(self, clips: torch.Tensor, features: bool = False) -> torch.Tensor:
        """``(B, T, C, H, W)`` -> per-frame features ``(B, T, embed)`` (two-stream: ``2 * embed``): one
        CNN call over all B*T frames (none with ``features``: the clips are the CNN's maps
        ``(B, T, F, h, w)``, computed before)."""
        b, t = clips.shape[:2]
        frames = clips.flatten(0, 1)
        if features:
            return self.frame_embed(frames).view(b, t, -1)
        rgb = frames[:, :3] if self.two_stream else frames
        out = self.frame_embed(run_cnn(self.cnn, rgb, self.backbone)).view(b, t, -1)
        if self.two_stream:
            motion = self.motion_embed(self.motion_cnn(channels_last(frames[:, 3:]))).view(b, t, -1)
            out = torch.cat([out, motion], dim=2)
        return out

    def forward(self, clips: torch.Tensor, features: bool = False) -> torch.Tensor:
        return self.head(self.reader(self.encode_frames(clips, features)))

    def prefix_logits(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits after reading the first k frames, k = 1..T: ``(B, T, K)``."""
        return read_prefixes(self.reader, self.encode_frames(clips), self.head)

    def forward_window(self, clips: torch.Tensor, state=None):
        """Logits for this window ``(B, T, C, H, W)`` read on from ``state`` (the LSTM's ``(h, c)``;
        None: zeros), and the state to carry into the next window: memory stays constant however long
        the video is."""
        summary, new_state = self.reader.read(self.encode_frames(clips), state)
        return self.head(summary), new_state
