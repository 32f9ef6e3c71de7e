"""A run's data, described once: ``TrainingData``.

``describe`` builds it from a data root: its kind (images or videos), classes, splits and file lists,
and the input format the files have (channels, most common size). Planning (``engine.train.plan``) then fixes
the size the model reads, the channels and the motion input; ``load`` decodes every split into memory,
or leaves a large training set to be read from disk per batch by DataLoader workers (``loaders``), and
computes the channel statistics. Training, batching and scoring read this one object; nothing below it
calls back up.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lstmimg.config import TrainConfig
from lstmimg.data import clips as V
from lstmimg.data import loaders as L
from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Split, detect_kind, split_folder
from lstmimg.data.images import channel_stats, decode_split, infer_image_format
from lstmimg.data.motion import channels as motion_channels
from lstmimg.data.motion import normalization as motion_normalization
from lstmimg.errors import LstmimgError

Progress = Callable[[str, int, int], None]  # split, done, total
IN_MEMORY_BYTES = 2 * 1024**3  # with --load auto, a training set larger than this decoded is read from disk per batch by workers
STATS_SAMPLES = {"image": 2000, "video": 64}  # a disk-read training set's mean and std come from this many samples


@dataclass
class TrainingData:
    """Labelled images or videos and how they are read.

    What the files are (from ``describe``): ``kind`` ("image" or "video"), ``classes``, ``splits`` (file
    lists of train / val / test), ``found_size`` (H, W: their most common size). How the model reads them
    (planning may change these before ``load``): ``channels`` (1 or 3, plus motion channels for videos),
    ``size`` (H, W), ``motion`` (``data.motion``), ``load`` ("auto", "memory" or "disk"). Filled by
    ``load``: ``sets`` (decoded or disk-read sets by split), ``mean`` and ``std`` per channel.
    """

    root: Path
    kind: str
    classes: list[str]
    splits: dict[str, Split]
    channels: int
    size: tuple[int, int]
    found_size: tuple[int, int]
    motion: str = "none"
    fit: str = "squash"  # how images of another aspect meet ``size`` (images.to_array)
    load_mode: str = "auto"
    sets: dict = field(default_factory=dict)
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    features: bool = False  # the sets hold a frozen backbone's features instead of images (engine.train.features)
    raw: dict = field(default_factory=dict)  # the images behind cached features, kept for --unfreeze-after
    pin: bool = False  # page-locked batches, so copies to a GPU overlap compute
    size_counts: dict = field(default_factory=dict)  # images of each (H, W) among the training files read (describe)

    def set_motion(self, method: str) -> None:
        """Frames carry ``method``'s motion channels (``data.motion``) from now on: set before ``load``."""
        self.motion, self.channels = method, 3 + motion_channels(method)

    def from_disk(self, name: str, decoded_bytes: Callable[[], int]) -> bool:
        """Whether split ``name`` is read from disk per batch by DataLoader workers (``loaders``) rather
        than held decoded: only ``train``, with ``--load disk``, or with ``auto`` when it would take more
        than ``IN_MEMORY_BYTES``."""
        if name != "train" or self.load_mode == "memory":
            return False
        return self.load_mode == "disk" or decoded_bytes() > IN_MEMORY_BYTES

    def load(self, cfg: TrainConfig, progress: Progress | None = None) -> None:
        """Decode every split into memory, except a training set read from disk (``from_disk``); mean and
        std come from train (videos with motion: the motion channels get their fixed scaling)."""
        (self._load_videos if self.kind == "video" else self._load_images)(cfg, progress)
        if self.motion != "none" and self.mean:
            mean, std = motion_normalization(self.motion)
            self.mean, self.std = self.mean[:3] + mean, self.std[:3] + std

    def _load_images(self, cfg: TrainConfig, progress: Progress | None) -> None:
        h, w = self.size
        for name, split in self.splits.items():
            if self.from_disk(name, lambda split=split: len(split.paths) * self.channels * h * w):
                self.sets[name] = L.disk_images(split, self.channels, self.size, cfg.workers, self.fit)
                self.mean, self.std = channel_stats(decode_split(spread(split, STATS_SAMPLES["image"]), self.channels, self.size, cfg.workers, fit=self.fit).images)
                continue
            self.sets[name] = decode_split(split, self.channels, self.size, cfg.workers, _per_split(progress, name), self.fit)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = channel_stats(self.sets["train"].images)

    def _load_videos(self, cfg: TrainConfig, progress: Progress | None) -> None:
        decode = dict(cache=cfg.cache, workers=cfg.workers, motion=self.motion, stride=cfg.frame_stride)
        for name, split in self.splits.items():
            if self.from_disk(name, lambda split=split: V.decoded_bytes(split.paths, self.size) * self.channels // 3):
                self.sets[name] = L.disk_clips(split, self.size, cfg.clip_len, cfg.frame_stride, cfg.cache, cfg.workers, self.motion)
                self.mean, self.std = V.video_stats(V.decode_videos(spread(split, STATS_SAMPLES["video"]), self.size, **decode).videos)
                continue
            self.sets[name] = V.decode_videos(split, self.size, _per_split(progress, name), **decode)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = V.video_stats(self.sets["train"].videos)

    def pin_memory(self) -> None:
        """Hand out page-locked training batches from now on, so copies to the GPU overlap compute."""
        self.pin = True
        if isinstance(self.sets.get("train"), L.DiskSet):
            self.sets["train"].pin = True  # the DataLoader pins each batch

    @property
    def loading(self) -> str:
        """How the training set is read, in words."""
        data = self.sets["train"]
        if not isinstance(data, L.DiskSet):
            return "in memory"
        if not data.workers:
            return "from disk in the main process"
        return f"from disk by {data.workers} worker process{'es' if data.workers > 1 else ''}"

    def close(self) -> None:
        """Stop the DataLoader workers of disk-read sets (the sets held in memory stay usable)."""
        for data in self.sets.values():
            if isinstance(data, L.DiskSet):
                data.close()

    def size_of(self, split: str) -> int:
        return len(self.sets[split].labels)

    @property
    def skipped(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in s.skipped]

    @property
    def errors(self) -> list[str]:
        """Why each skipped file was skipped (one line each, naming the file)."""
        return [e for s in self.sets.values() for e in s.errors]

    @property
    def truncated(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in getattr(s, "truncated", [])]


def describe(root: str | Path, cfg: TrainConfig) -> TrainingData:
    """The data under ``root``: its kind, splits (``cfg.val_split`` of each class held out, seeded, when
    there is no ``val/``), classes and input format. ``size`` is ``cfg.img_size`` when given, else the
    files' own size until planning fits it."""
    kind = detect_kind(root)
    splits = split_folder(root, cfg.val_split, cfg.seed, VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS)
    if cfg.exclude:
        splits = without(splits, cfg.exclude)
    train = splits["train"].paths
    if kind == "video":
        channels, found = 3, tuple(cfg.img_size) if cfg.img_size else V.infer_video_size(train)  # no probing when the size is given
    else:
        counts: Counter = Counter()
        channels, found = infer_image_format(train, counts=counts)
        return TrainingData(Path(root), kind, splits["train"].classes, splits, channels, tuple(cfg.img_size or found), found, load_mode=cfg.load, size_counts=dict(counts))
    return TrainingData(Path(root), kind, splits["train"].classes, splits, channels, tuple(cfg.img_size or found), found, load_mode=cfg.load)


def without(splits: dict[str, Split], exclude: Sequence[str]) -> dict[str, Split]:
    """``splits`` less the files named in ``exclude`` (matched by real path); a split left with a class
    of no file keeps the class (its counts say so)."""
    gone = {os.path.realpath(p) for p in exclude}
    out = {}
    for name, split in splits.items():
        keep = [i for i, p in enumerate(split.paths) if os.path.realpath(p) not in gone]
        out[name] = Split([split.paths[i] for i in keep], [split.labels[i] for i in keep], split.classes)
    if not out["train"].paths:
        raise LstmimgError("--exclude leaves no training file")
    return out


def spread(split: Split, count: int) -> Split:
    """About ``count`` files spread evenly over ``split``."""
    step = max(1, len(split.paths) // count)
    return Split(split.paths[::step], split.labels[::step], split.classes)


def _per_split(progress: Progress | None, name: str) -> Callable[[int, int], None] | None:
    return (lambda done, total: progress(name, done, total)) if progress else None
