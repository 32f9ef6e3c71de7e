"""Bench section for a frozen backbone's cached features: what extracting them costs once, and a
training step on them against a step that runs the frozen backbone."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lstmimg.bench.timing import Timing, measure, measure_pair


@dataclass
class FeatureBench:
    backbone: str
    size: int  # frames are size x size
    frames_per_step: int  # clips x frames per clip
    extract_frames_per_s: float  # the one-off extraction, frozen backbone in eval mode
    step_cached_ms: float  # LSTM and head on cached features
    step_uncached_ms: float  # the same step with the frozen backbone run on the frames
    ratio: float  # cached / uncached: an epoch's time with the cache, as a fraction of one without
    extract: Timing
    cached: Timing
    uncached: Timing


def bench_features(device: torch.device, repeats: int = 5, tiny: bool = False) -> FeatureBench:
    """A frozen torchvision backbone (random weights: the timing does not depend on them) under
    ``lrcn`` on clips of 4 x 8 frames: extraction, then a step with and without the cache."""
    from lstmimg.config import ModelConfig
    from lstmimg.data.images import normalize
    from lstmimg.engine.train.features import cnn_features
    from lstmimg.models.registry import build_model

    backbone, size, clips, frames = ("mobilenet_v3_small", 32, 2, 4) if tiny else ("resnet18", 112, 4, 8)
    cfg = ModelConfig(name="lrcn", backbone=backbone, freeze_backbone=True, img_size=(size, size), in_channels=3, num_classes=4)
    model = build_model(cfg).to(device).train()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    generator = torch.Generator().manual_seed(0)
    video = torch.randint(0, 256, (clips * frames, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 4, (clips,), generator=generator).to(device)
    extract = measure(lambda: cnn_features(model.cnn, video, mean, std, device, True), repeats, device=device)
    feats = cnn_features(model.cnn, video, mean, std, device, True)
    feats = feats.view(clips, frames, *feats.shape[1:]).to(device)
    x = normalize(video.to(device), mean, std).view(clips, frames, 3, size, size)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()

    def step(inputs: torch.Tensor, features: bool):
        loss = torch.nn.functional.cross_entropy(model(inputs.float(), features=features), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    cached, uncached = measure_pair(lambda: step(feats, True), lambda: step(x, False), repeats, device)
    return FeatureBench(backbone, size, clips * frames, round(clips * frames / extract.median, 1), round(cached.median * 1000, 3), round(uncached.median * 1000, 3),
                        round(cached.median / uncached.median, 4), extract, cached, uncached)
