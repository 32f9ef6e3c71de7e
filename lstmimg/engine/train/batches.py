"""Training batches: one shuffled order shared by every process, each process's share of it, and the
rule that drops a batch of one sample (it would break batch norm), so the step count.

Images come as uint8 ``(B, C, H, W)``; videos as one random clip ``(B, T, C, H, W)`` per item, each
video drawn ``clips_per_video`` times an epoch. Every random draw comes from the run's generator, so a
disk-read set (``data.loaders``) gives the same batches as the same set held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lstmimg.config import MIN_BATCH, TrainConfig
from lstmimg.data import clips as V
from lstmimg.data.dataset import TrainingData
from lstmimg.data.loaders import DiskSet
from lstmimg.engine.train.distributed import Dist, shard
from lstmimg.engine.train.plan import batches_in


def process_batch(batch_size: int, d: Dist) -> int:
    """This process's part of the global batch: N processes take one process's steps."""
    return max(MIN_BATCH, -(-batch_size // d.world))


def epoch_order(n: int, batch_size: int, generator: torch.Generator, d: Dist, weights: torch.Tensor | None = None) -> list[torch.Tensor]:
    """This process's index batches for one epoch: one shuffled order for all processes, this
    process's share of it, in batches of its part of the global ``batch_size``; a last batch of fewer
    than ``MIN_BATCH`` samples is dropped. ``weights`` ``(n,)``: ``n`` draws with replacement in
    proportion to them instead (the balanced sampler)."""
    drawn = torch.multinomial(weights, n, replacement=True, generator=generator) if weights is not None else torch.randperm(n, generator=generator)
    order = shard(drawn, d).split(process_batch(batch_size, d))
    return [idx for idx in order if len(idx) >= MIN_BATCH]


def steps_per_epoch(n: int, batch_size: int, d: Dist) -> int:
    """How many batches ``epoch_order`` gives (at least 1, for the LR schedule)."""
    return batches_in(n // d.world, process_batch(batch_size, d))


def samples_per_epoch(data: TrainingData, cfg: TrainConfig) -> int:
    """Training samples an epoch draws: every image once, or ``clips_per_video`` clips per video."""
    return data.size_of("train") * ((cfg.clips_per_video or 1) if data.kind == "video" else 1)


def epoch_steps(data: TrainingData, cfg: TrainConfig, d: Dist = Dist()) -> int:
    """Optimizer steps an epoch of ``data`` makes on each process."""
    return steps_per_epoch(samples_per_epoch(data, cfg), cfg.batch_size, d)


def train_batches(data: TrainingData, cfg: TrainConfig, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled uint8 batches of this process's share (``d``) of the training set, with their labels."""
    batches = _clip_batches(data, cfg, generator, d) if data.kind == "video" else _image_batches(data, cfg, generator, d)
    pin = data.pin and not isinstance(data.sets["train"], DiskSet)  # a disk set's DataLoader pins its batches
    for x, y in batches:
        yield (x.pin_memory() if pin else x), y


def balanced_weights(labels: torch.Tensor, cfg: TrainConfig) -> torch.Tensor | None:
    """With ``cfg.sampler == "balanced"``, each sample's weight: one over its class's count, so every class
    is drawn equally often; else None (each sample once an epoch)."""
    if cfg.sampler != "balanced":
        return None
    counts = torch.bincount(labels).double()
    return 1.0 / counts[labels]


def _image_batches(data: TrainingData, cfg: TrainConfig, generator: torch.Generator, d: Dist) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    train = data.sets["train"]
    index_batches = epoch_order(len(train.labels), cfg.batch_size, generator, d, balanced_weights(train.labels, cfg))
    if isinstance(train, DiskSet):
        yield from train.batches([idx.tolist() for idx in index_batches])
        return
    for idx in index_batches:
        yield train.images[idx], train.labels[idx]  # (B, C, H, W), (B,)


def _clip_batches(data: TrainingData, cfg: TrainConfig, generator: torch.Generator, d: Dist) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    train = data.sets["train"]
    n, items = len(train.labels), samples_per_epoch(data, cfg)  # item i: a clip of video i % n
    weights = balanced_weights(train.labels, cfg)
    index_batches = epoch_order(items, cfg.batch_size, generator, d, None if weights is None else weights.repeat(items // n + 1)[:items])
    draws = torch.rand(items, generator=generator)  # where each clip starts (clips.clip_start)
    if isinstance(train, DiskSet):
        clip_batches = train.batches([[(i % n, float(draws[i])) for i in idx.tolist()] for idx in index_batches])
    else:
        clip_batches = ((V.random_clips(train, idx % n, draws[idx], cfg.clip_len, cfg.frame_stride), train.labels[idx % n]) for idx in index_batches)
    for clips, labels in clip_batches:  # (B, T, C, H, W), (B,)
        if cfg.shuffle_frames:
            clips = V.shuffle_time(clips, generator)
        yield clips, labels
