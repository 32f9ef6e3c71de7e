"""Image models: an image ``(B, C, H, W)`` (float, normalised) read as a sequence by a recurrent layer,
returning logits ``(B, num_classes)``.

``region_lstm`` slices the image itself into regions (``regions.slice_regions``); ``cnn_lstm`` reads the
rows or positions of a CNN's feature map. Both pool the sequence to one vector (last state or mean),
optionally join global image features, and classify it with a linear head.
"""

from __future__ import annotations

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.models.layers import FrozenCNN, SequenceReader, build_cnn, image_statistics, read_prefixes, run_cnn
from lstmimg.models.regions import sequence_shape, slice_regions


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
