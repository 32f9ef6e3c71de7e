"""The parts every model is made of: the recurrent reader and its pooling, the CNNs (the small built-in
one or a torchvision backbone), and the global image statistics some models join to the sequence."""

from __future__ import annotations

import torch
from torch import nn

from lstmimg.config import ModelConfig


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
        from lstmimg.models.backbones import build_backbone

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
