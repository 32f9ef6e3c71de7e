"""Models, chosen by name from one registry.

Every model takes images ``(B, C, H, W)`` (float, normalised) and returns logits ``(B, num_classes)``.
Each is built from a ``ModelConfig`` by a builder registered here, so ``list_models()`` sees them all
without importing anything else.

Shared structure: something turns the image into a sequence ``(B, T, D)``; a fused recurrent layer
(``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``) reads it; the sequence is pooled to one vector (last state or
mean over steps), optionally joined with global image features, and a linear head classifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError
from lstmimg.regions import sequence_shape, slice_regions


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "image" (input B,C,H,W) or "video" (input B,T,C,H,W)
    description: str
    builder: Callable[[ModelConfig], nn.Module]
    fixed: dict = field(default_factory=dict)  # settings this model always has, whatever the config says

    def complete(self, cfg: ModelConfig) -> ModelConfig:
        """``cfg`` with this model's fixed settings, so what a run records is what was built."""
        return cfg.replace(**self.fixed) if self.fixed else cfg


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, kind: str, description: str, fixed: dict | None = None):
    """Decorator that adds a builder to ``MODELS``; a name can be registered once only. ``fixed``:
    config settings the model always has (see ``ModelSpec.complete``)."""

    def add(builder: Callable[[ModelConfig], nn.Module]):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelSpec(name, kind, description, builder, dict(fixed or {}))
        return builder

    return add


def list_models() -> list[ModelSpec]:
    """All registered models, sorted by name."""
    return [MODELS[name] for name in sorted(MODELS)]


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise LstmimgError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the model ``cfg.name`` from its config (random weights unless the config names a file)."""
    spec = get_model_spec(cfg.name)
    return spec.builder(spec.complete(cfg))


class SequenceReader(nn.Module):
    """A fused recurrent layer over ``(B, T, D)`` plus pooling to ``(B, out_features)``."""

    CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

    def __init__(self, in_features: int, cfg: ModelConfig):
        super().__init__()
        self.rnn = self.CELLS[cfg.rnn](
            in_features,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.pool = cfg.pool
        self.out_features = cfg.hidden * (2 if cfg.bidirectional else 1)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` -> ``(B, out_features)``."""
        return self.read(seq)[0]

    def read(self, seq: torch.Tensor, state=None):
        """Like ``forward``, from ``state`` (None: zeros), also returning the state after the last step,
        to carry into the next window of a video."""
        out, new_state = self.rnn(seq, state)  # out: (B, T, dirs*hidden)
        if self.pool == "mean":
            return out.mean(dim=1), new_state
        h_n = new_state[0] if isinstance(new_state, tuple) else new_state  # (layers*dirs, B, hidden)
        dirs = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(h_n[-dirs:]), dim=1), new_state  # last layer, both directions


def read_prefixes(reader: SequenceReader, seq: torch.Tensor, head: nn.Module, extra: torch.Tensor | None = None) -> torch.Tensor:
    """Logits after the reader has read the first k steps of ``seq`` ``(B, T, D)``, k = 1..T:
    ``(B, T, K)``. Each prefix is read on its own, so a bidirectional reader sees only the prefix; the
    last equals the logits of the whole sequence. ``extra``: features joined to every summary."""
    out = []
    for k in range(1, seq.shape[1] + 1):
        feats = reader(seq[:, :k])
        out.append(head(feats if extra is None else torch.cat([feats, extra], dim=1)))
    return torch.stack(out, dim=1)


def image_statistics(x: torch.Tensor) -> torch.Tensor:
    """Global colour and texture statistics of ``(B, C, H, W)``: per channel mean, std, and mean
    absolute horizontal and vertical gradient -> ``(B, 4*C)``."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(2, 3))
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(2, 3))
    return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), dx, dy], dim=1)


@register_model("region_lstm", "image", "image sliced into rows, columns or patches (raster/snake); LSTM over the regions")
class RegionLSTM(nn.Module):
    """Slice the image into regions, embed each region (flatten + linear), read them with an LSTM."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scan, self.patch = cfg.scan, cfg.patch
        steps, region_dim = sequence_shape(cfg.scan, cfg.patch, cfg.in_channels, *cfg.img_size)
        self.embed = nn.Sequential(nn.Linear(region_dim, cfg.embed), nn.ReLU())
        self.reader = SequenceReader(cfg.embed, cfg)
        self.fuse_global = cfg.fuse_global
        extra = 4 * cfg.in_channels if cfg.fuse_global else 0
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(self.reader.out_features + extra, cfg.num_classes))

    def prefix_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after reading the first k regions, k = 1..T: ``(B, T, K)`` (the anytime curve)."""
        seq = self.embed(slice_regions(x, self.scan, self.patch))
        return read_prefixes(self.reader, seq, self.head, image_statistics(x) if self.fuse_global else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.embed(slice_regions(x, self.scan, self.patch))  # (B, T, embed)
        feats = self.reader(seq)
        if self.fuse_global:
            feats = torch.cat([feats, image_statistics(x)], dim=1)
        return self.head(feats)


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """NHWC memory layout: oneDNN and cuDNN run convolutions on it faster (`lstmimg bench`: 1.25x to
    1.66x training, 1.85x to 2.4x inference on CPU); the values are the same."""
    return x.contiguous(memory_format=torch.channels_last)


def small_cnn(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Conv3x3-BN-ReLU-MaxPool stages; each stage halves H and W."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        in_channels = width
    return nn.Sequential(*layers)


def build_cnn(cfg: ModelConfig) -> tuple[nn.Module, tuple[int, int, int]]:
    """The CNN of ``cnn_lstm`` and ``lrcn``: the small built-in one, or ``cfg.backbone``; in train mode
    and channels_last. Also returns the shape ``(F, h, w)`` of its feature map for ``cfg.img_size``,
    probed with a dummy image."""
    if cfg.backbone:
        from lstmimg.backbones import build_backbone

        cnn = build_backbone(cfg.backbone, cfg.backbone_weights, cfg.pretrained, cfg.weights)
    else:
        cnn = small_cnn(cfg.in_channels, cfg.cnn_channels)
    with torch.no_grad():
        probe = torch.zeros(1, 3 if cfg.backbone else cfg.in_channels, *cfg.img_size)
        _, feat, fh, fw = cnn.eval()(probe).shape
    if cfg.freeze_backbone:
        cnn.requires_grad_(False)
    return cnn.train(not cfg.freeze_backbone).to(memory_format=torch.channels_last), (feat, fh, fw)


class FrozenCNN:
    """Mixin: a frozen CNN stays in eval mode (its batch-norm statistics as loaded) when the model trains."""

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.cnn.eval()
        return self


def run_cnn(cnn: nn.Module, x: torch.Tensor, backbone: bool) -> torch.Tensor:
    """``cnn`` over images ``(N, C, H, W)``; a torchvision ``backbone`` gets the 3 channels it was made
    for (grey repeated, extra channels dropped)."""
    if backbone and x.shape[1] != 3:
        x = x[:, :1].expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    return cnn(channels_last(x))


@register_model("cnn_lstm", "image", "CNN feature map read as a sequence (rows or positions) by an LSTM; optional torchvision backbone")
class CNNLSTM(FrozenCNN, nn.Module):
    """A CNN turns the image into a feature map ``(B, F, h, w)``; its rows (or positions, in a scan
    order over the map) are the sequence an LSTM reads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.scan, self.backbone, self.frozen = cfg.scan, cfg.backbone is not None, cfg.freeze_backbone
        self.cnn, (feat, fh, fw) = build_cnn(cfg)
        _, region_dim = sequence_shape(cfg.scan, 1, feat, fh, fw)
        self.reader = SequenceReader(region_dim, cfg)
        self.fuse_global = cfg.fuse_global
        extra = feat if cfg.fuse_global else 0
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(self.reader.out_features + extra, cfg.num_classes))

    def prefix_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits after reading the first k steps of the feature-map sequence, k = 1..T: ``(B, T, K)``."""
        fmap = run_cnn(self.cnn, x, self.backbone)
        return read_prefixes(self.reader, slice_regions(fmap, self.scan, 1), self.head, fmap.mean(dim=(2, 3)) if self.fuse_global else None)

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        """Logits for images ``(B, C, H, W)``, or, with ``features``, for the CNN's feature maps of them
        ``(B, F, h, w)`` computed before (a frozen backbone's, cached)."""
        fmap = x if features else run_cnn(self.cnn, x, self.backbone)  # (B, F, h, w)
        feats = self.reader(slice_regions(fmap, self.scan, 1))  # sequence over rows or positions
        if self.fuse_global:
            feats = torch.cat([feats, fmap.mean(dim=(2, 3))], dim=1)
        return self.head(feats)


@register_model("lrcn", "video", "video: a CNN encodes every frame (batched over B*T), an LSTM reads the frames in order (LRCN)", fixed={"bidirectional": False})
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
