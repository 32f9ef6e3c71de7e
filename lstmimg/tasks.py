"""What differs between image and video training, behind one small interface.

A task knows its data's splits, classes and input format, decodes the data once (``load``), yields
uint8 training batches (``batches``) and scores a model on a split (``score``). ``engine.fit`` and
``engine.evaluate`` drive either kind the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from lstmimg import clips as V
from lstmimg import data as D
from lstmimg import loaders as L
from lstmimg.config import TrainConfig
from lstmimg.distributed import Dist, shard
from lstmimg.errors import LstmimgError

Progress = Callable[[str, int, int], None]
IN_MEMORY_BYTES = 2 * 1024**3  # with --load auto, a training set larger than this decoded is read per batch by workers
STATS_SAMPLES = {"image": 2000, "video": 64}  # a streamed training set's mean and std come from this many samples


class ImageTask:
    """Image folders: batches ``(B, C, H, W)``."""

    kind = "image"

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: int | None = None, size: tuple[int, int] | None = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        if channels is None or size is None:
            channels, found = D.infer_image_format(splits.get("train", next(iter(splits.values()))).paths)
            size = size or found
        self.channels, self.size = channels, tuple(size)
        self.sets: dict = {}
        self.mean: list[float] = []
        self.std: list[float] = []

    def streams(self, name: str, decoded_bytes: Callable[[], int]) -> bool:
        """Whether split ``name`` is read per batch by DataLoader workers (``loaders``) rather than held
        decoded: only ``train``, with ``--load stream``, or with ``auto`` when it would take more than
        ``IN_MEMORY_BYTES``."""
        if name != "train" or self.cfg.load == "memory":
            return False
        return self.cfg.load == "stream" or decoded_bytes() > IN_MEMORY_BYTES

    def load(self, progress: Progress | None = None) -> None:
        """Decode every split into memory, except a streamed training set (``streams``); mean and std
        come from train."""
        h, w = self.size
        for name, split in self.splits.items():
            if self.streams(name, lambda split=split: len(split.paths) * self.channels * h * w):
                self.sets[name] = L.stream_images(split, self.channels, self.size, self.cfg.workers)
                self.mean, self.std = D.channel_stats(D.decode_split(_spread(split, STATS_SAMPLES["image"]), self.channels, self.size, self.cfg.workers).images)
                continue
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = D.decode_split(split, self.channels, self.size, self.cfg.workers, report)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = D.channel_stats(self.sets["train"].images)

    def pin_memory(self) -> None:
        """Page-lock the training tensors, so copies to the GPU can overlap compute."""
        data = self.sets["train"]
        if isinstance(data, L.Streamed):
            data.pin = True  # the DataLoader pins each batch
        elif hasattr(data, "images"):
            data.images = data.images.pin_memory()
        else:
            data.videos = [v.pin_memory() for v in data.videos]

    @property
    def loading(self) -> str:
        """How the training set is read, in words."""
        data = self.sets["train"]
        if not isinstance(data, L.Streamed):
            return "in memory"
        if not data.workers:
            return "streamed in the main process"
        return f"streamed by {data.workers} worker process{'es' if data.workers > 1 else ''}"

    def close(self) -> None:
        """Stop the DataLoader workers of streamed sets (the sets held in memory stay usable)."""
        for data in self.sets.values():
            if isinstance(data, L.Streamed):
                data.close()

    def size_of(self, split: str) -> int:
        return len(self.sets[split].labels)

    @property
    def skipped(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in s.skipped]

    def batches(self, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled batches of this process's share (``d``) of the training set."""
        data = self.sets["train"]
        order = shard(torch.randperm(len(data.labels), generator=generator), d).split(self.cfg.batch_size)
        index_batches = [idx for idx in order if len(idx) > 1]  # a batch of one breaks batch norm: one dropped sample
        if isinstance(data, L.Streamed):
            yield from data.batches([idx.tolist() for idx in index_batches])
        else:
            for idx in index_batches:
                yield data.images[idx], data.labels[idx]

    @torch.inference_mode()
    def score(self, net, split: str, device, batch_size: int = 256) -> tuple[torch.Tensor, dict]:
        """Class probabilities ``(N, K)`` for every sample of ``split``, and extra metrics."""
        images = self.sets[split].images
        net.eval()
        out = [net(D.normalize(images[i : i + batch_size].to(device), self.mean, self.std)).float().softmax(1).cpu() for i in range(0, len(images), batch_size)]
        return torch.cat(out), {}


class VideoTask(ImageTask):
    """Class folders of videos: batches of clips ``(B, T, C, H, W)``; scores are per video."""

    kind = "video"

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: int | None = None, size: tuple[int, int] | None = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        self.channels = 3
        self.size = tuple(size or cfg.img_size or V.infer_video_size(splits.get("train", next(iter(splits.values()))).paths))
        self.sets, self.mean, self.std = {}, [], []

    def load(self, progress: Progress | None = None) -> None:
        cfg = self.cfg
        for name, split in self.splits.items():
            if self.streams(name, lambda split=split: V.decoded_bytes(split.paths, self.size)):
                self.sets[name] = L.stream_clips(split, self.size, cfg.clip_len, cfg.frame_stride, cfg.cache, cfg.workers)
                self.mean, self.std = V.video_stats(V.decode_videos(_spread(split, STATS_SAMPLES["video"]), self.size, cache=cfg.cache, workers=cfg.workers).videos)
                continue
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = V.decode_videos(split, self.size, report, cache=cfg.cache, workers=cfg.workers)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = V.video_stats(self.sets["train"].videos)

    @property
    def truncated(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in s.truncated]

    def batches(self, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data, cfg = self.sets["train"], self.cfg
        n = len(data.labels)
        order = shard(torch.randperm(n, generator=generator), d).split(cfg.batch_size)
        draws = torch.rand(n, generator=generator)  # where each video's clip starts (clips.clip_start)
        index_batches = [idx for idx in order if len(idx) > 1]
        if isinstance(data, L.Streamed):
            stream = data.batches([[(i, float(draws[i])) for i in idx.tolist()] for idx in index_batches])
        else:
            stream = ((V.random_clips(data, idx, draws, cfg.clip_len, cfg.frame_stride), data.labels[idx]) for idx in index_batches)
        for clips, labels in stream:  # (B, T, C, H, W), (B,)
            if cfg.shuffle_frames:
                clips = V.shuffle_time(clips, generator)
            yield clips, labels

    def score(self, net, split: str, device, batch_size: int = 256) -> tuple[torch.Tensor, dict]:
        shuffler = torch.Generator().manual_seed(self.cfg.seed) if self.cfg.shuffle_frames else None
        probs, clip_acc = V.score_videos(net, self.sets[split], self.mean, self.std, device, self.cfg.clip_len, self.cfg.frame_stride, self.cfg.val_clips, shuffler)
        return probs, {"clip_accuracy": clip_acc}


def _spread(split: D.Split, count: int) -> D.Split:
    """About ``count`` files spread evenly over ``split``."""
    step = max(1, len(split.paths) // count)
    return D.Split(split.paths[::step], split.labels[::step], split.classes)


def make_task(root: str | Path, cfg: TrainConfig) -> ImageTask:
    """The task for a training data root: its splits found, its input format inferred."""
    kind = D.detect_kind(root)
    if kind == "video":
        return VideoTask(D.split_folder(root, cfg.val_split, cfg.seed, D.VIDEO_EXTENSIONS), cfg)
    splits = D.split_folder(root, cfg.val_split, cfg.seed)
    return ImageTask(splits, cfg, size=cfg.img_size)


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
