"""What differs between image and video training, behind one small interface.

A task knows its data's splits, classes and input format; it has the datasets decoded once, or read
from disk by workers (``load``); it owns batching: the shuffled order, the rule that drops a batch of
one sample, and so the step count (``steps_per_epoch``, ``batches``); and it scores a model on a split
through the one inference path (``score``). ``training.fit`` and ``inference.evaluate`` drive either
kind the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from lstmimg import clips as V
from lstmimg import data as D
from lstmimg import loaders as L
from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.distributed import Dist, shard
from lstmimg.errors import LstmimgError
from lstmimg.inference import Predictor, image_probs, video_probs
from lstmimg.plan import batches_in, capped_size, input_side

Progress = Callable[[str, int, int], None]
IN_MEMORY_BYTES = 2 * 1024**3  # with --load auto, a training set larger than this decoded is read from disk per batch by workers
STATS_SAMPLES = {"image": 2000, "video": 64}  # a disk-read training set's mean and std come from this many samples


def process_batch(batch_size: int, d: Dist) -> int:
    """This process's part of the global batch: N processes take one process's steps."""
    return max(D.MIN_BATCH, -(-batch_size // d.world))


def epoch_order(n: int, batch_size: int, generator: torch.Generator, d: Dist) -> list[torch.Tensor]:
    """This process's index batches for one epoch: one shuffled order for all processes, this
    process's share of it, in batches of its part of the global ``batch_size``; a last batch of fewer
    than ``MIN_BATCH`` samples is dropped."""
    order = shard(torch.randperm(n, generator=generator), d).split(process_batch(batch_size, d))
    return [idx for idx in order if len(idx) >= D.MIN_BATCH]


def steps_per_epoch(n: int, batch_size: int, d: Dist) -> int:
    """How many batches ``epoch_order`` gives (at least 1, for the LR schedule)."""
    return batches_in(n // d.world, process_batch(batch_size, d))


class ImageTask:
    """Image folders: batches ``(B, C, H, W)``."""

    kind = "image"
    motion = "none"  # videos: motion input beside the RGB frames (``VideoTask.set_motion``)

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: int | None = None, size: tuple[int, int] | None = None, model: ModelConfig | None = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        self.notes: list[str] = []  # what was chosen for the user, for the run's first lines
        if channels is None or size is None:
            channels, found = D.infer_image_format(self._train_paths())
            if size is None:
                size = self._fitted(found, model)
        self.channels, self.size = channels, tuple(size)
        self._start_state()

    def _train_paths(self) -> list[Path]:
        return self.splits.get("train", next(iter(self.splits.values()))).paths

    def _fitted(self, found: tuple[int, int], model: ModelConfig | None) -> tuple[int, int]:
        """``found`` (H, W) shrunk to the default side for ``model`` (plan.input_side), saying so."""
        side, why = input_side(self.kind, model)
        size = capped_size(found, side)
        if size != found:
            self.notes.append(f"{self.kind}s are {found[0]}x{found[1]}: trained at {size[0]}x{size[1]} ({why}; --img-size to change)")
        return size

    def _start_state(self) -> None:
        """What both kinds hold before ``load``."""
        self.sets: dict = {}
        self.mean: list[float] = []
        self.std: list[float] = []
        self.pin = False  # page-locked batches, so copies to a GPU overlap compute (``pin_memory``)
        self.features = False  # the sets hold a frozen backbone's features instead of images (features.py)

    def from_disk(self, name: str, decoded_bytes: Callable[[], int]) -> bool:
        """Whether split ``name`` is read from disk per batch by DataLoader workers (``loaders``) rather
        than held decoded: only ``train``, with ``--load disk``, or with ``auto`` when it would take more
        than ``IN_MEMORY_BYTES``."""
        if name != "train" or self.cfg.load == "memory":
            return False
        return self.cfg.load == "disk" or decoded_bytes() > IN_MEMORY_BYTES

    def load(self, progress: Progress | None = None) -> None:
        """Decode every split into memory, except a training set read from disk (``from_disk``); mean
        and std come from train."""
        h, w = self.size
        for name, split in self.splits.items():
            if self.from_disk(name, lambda split=split: len(split.paths) * self.channels * h * w):
                self.sets[name] = L.disk_images(split, self.channels, self.size, self.cfg.workers)
                self.mean, self.std = D.channel_stats(D.decode_split(_spread(split, STATS_SAMPLES["image"]), self.channels, self.size, self.cfg.workers).images)
                continue
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = D.decode_split(split, self.channels, self.size, self.cfg.workers, report)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = D.channel_stats(self.sets["train"].images)

    def pin_memory(self) -> None:
        """Hand out page-locked training batches from now on, so copies to the GPU overlap compute."""
        self.pin = True
        if isinstance(self.sets.get("train"), L.DiskSet):
            self.sets["train"].pin = True  # the DataLoader pins each batch

    def _pinned(self, x: torch.Tensor) -> torch.Tensor:
        return x.pin_memory() if self.pin else x

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
    def samples_per_epoch(self) -> int:
        """Training samples an epoch draws: every image once, or ``clips_per_video`` clips per video."""
        return len(self.sets["train"].labels) * (self.cfg.clips_per_video or 1 if self.kind == "video" else 1)

    def steps_per_epoch(self, d: Dist = Dist()) -> int:
        return steps_per_epoch(self.samples_per_epoch, self.cfg.batch_size, d)

    def batches(self, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled uint8 batches ``(B, C, H, W)`` of this process's share (``d``) of the training set."""
        data = self.sets["train"]
        index_batches = epoch_order(len(data.labels), self.cfg.batch_size, generator, d)
        if isinstance(data, L.DiskSet):
            yield from data.batches([idx.tolist() for idx in index_batches])
        else:
            for idx in index_batches:
                yield self._pinned(data.images[idx]), data.labels[idx]

    def score(self, net, split: str, device, batch_size: int = 256) -> tuple[torch.Tensor, dict]:
        """Class probabilities ``(N, K)`` for every sample of ``split``, and extra metrics."""
        return image_probs(Predictor(net, self.mean, self.std, device, self.features), self.sets[split].images, batch_size), {}


class VideoTask(ImageTask):
    """Class folders of videos: batches of clips ``(B, T, C, H, W)``; scores are per video."""

    kind = "video"

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: int | None = None, size: tuple[int, int] | None = None, model: ModelConfig | None = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        self.channels = 3
        self.notes: list[str] = []
        self.size = tuple(size or cfg.img_size or self._fitted(V.infer_video_size(self._train_paths()), model))
        self._start_state()

    def set_motion(self, method: str) -> None:
        """Frames carry ``method``'s motion channels (motion.py) from now on: set before ``load``."""
        from lstmimg.motion import channels

        self.motion, self.channels = method, 3 + channels(method)

    def load(self, progress: Progress | None = None) -> None:
        from lstmimg.motion import normalization

        cfg = self.cfg
        decode = dict(cache=cfg.cache, workers=cfg.workers, motion=self.motion, stride=cfg.frame_stride)
        for name, split in self.splits.items():
            if self.from_disk(name, lambda split=split: V.decoded_bytes(split.paths, self.size) * self.channels // 3):
                self.sets[name] = L.disk_clips(split, self.size, cfg.clip_len, cfg.frame_stride, cfg.cache, cfg.workers, self.motion)
                self.mean, self.std = V.video_stats(V.decode_videos(_spread(split, STATS_SAMPLES["video"]), self.size, **decode).videos)
                continue
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = V.decode_videos(split, self.size, report, **decode)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = V.video_stats(self.sets["train"].videos)
        if self.motion != "none" and self.mean:  # fixed scaling for motion, not the data's (motion.normalization)
            mean, std = normalization(self.motion)
            self.mean, self.std = self.mean[:3] + mean, self.std[:3] + std

    @property
    def truncated(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in s.truncated]

    def batches(self, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data, cfg = self.sets["train"], self.cfg
        n, items = len(data.labels), self.samples_per_epoch  # item i: a clip of video i % n
        index_batches = epoch_order(items, cfg.batch_size, generator, d)
        draws = torch.rand(items, generator=generator)  # where each clip starts (clips.clip_start)
        if isinstance(data, L.DiskSet):
            clip_batches = data.batches([[(i % n, float(draws[i])) for i in idx.tolist()] for idx in index_batches])
        else:
            clip_batches = ((V.random_clips(data, idx % n, draws[idx], cfg.clip_len, cfg.frame_stride), data.labels[idx % n]) for idx in index_batches)
        for clips, labels in clip_batches:  # (B, T, C, H, W), (B,)
            if cfg.shuffle_frames:
                clips = V.shuffle_time(clips, generator)
            yield self._pinned(clips), labels

    def score(self, net, split: str, device, batch_size: int = 64) -> tuple[torch.Tensor, dict]:
        """Video probabilities ``(N, K)`` from ``val_clips`` clips per video, and the clip accuracy."""
        shuffler = torch.Generator().manual_seed(self.cfg.seed) if self.cfg.shuffle_frames else None
        data = self.sets[split]
        probs, per_video = video_probs(Predictor(net, self.mean, self.std, device, self.features), data.videos, self.cfg.clip_len, self.cfg.frame_stride, self.cfg.val_clips, batch_size, shuffler)
        hits = sum(int((p.argmax(1) == label).sum()) for p, label in zip(per_video, data.labels.tolist()))
        return probs, {"clip_accuracy": hits / max(1, sum(len(p) for p in per_video))}


def _spread(split: D.Split, count: int) -> D.Split:
    """About ``count`` files spread evenly over ``split``."""
    step = max(1, len(split.paths) // count)
    return D.Split(split.paths[::step], split.labels[::step], split.classes)


def task_for(kind: str, splits: dict[str, D.Split], cfg: TrainConfig, channels: int | None = None, size: tuple[int, int] | None = None, model: ModelConfig | None = None) -> ImageTask:
    """The task of this kind ("image" or "video") over these splits; ``model``: the network asked for,
    whose pretrained weights choose the default input size."""
    return (VideoTask if kind == "video" else ImageTask)(splits, cfg, channels, size, model)


def make_task(root: str | Path, cfg: TrainConfig, model: ModelConfig | None = None) -> ImageTask:
    """The task for a training data root: its splits found, its input format inferred."""
    kind = D.detect_kind(root)
    extensions = D.VIDEO_EXTENSIONS if kind == "video" else D.IMAGE_EXTENSIONS
    return task_for(kind, D.split_folder(root, cfg.val_split, cfg.seed, extensions), cfg, size=cfg.img_size, model=model)


def labelled_folder(root: str | Path, kind: str, classes: list[str], split: str | None = None) -> D.Split:
    """The labelled files to evaluate on: ``root/<class>/`` or a split of a root with ``train/``
    (default ``test`` if present, else ``val``), labelled by the model's ``classes``."""
    root = Path(root)
    if split is None and (root / "train").is_dir():
        split = "test" if (root / "test").is_dir() else "val"
    folder = root / split if split else root
    found = D.find_classes(folder)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise LstmimgError(f"{folder}: classes the model does not know: {', '.join(unknown)} (model classes: {', '.join(classes)})")
    paths, labels = D.list_class_images(folder, found, D.VIDEO_EXTENSIONS if kind == "video" else D.IMAGE_EXTENSIONS)
    return D.Split(paths, [classes.index(found[i]) for i in labels], list(classes))
