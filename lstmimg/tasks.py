"""What differs between image and video training, behind one small interface.

A task knows its data's splits, classes and input format, decodes the data once (``load``), yields
uint8 training batches (``batches``) and scores a model on a split (``score``). ``engine.fit`` and
``engine.evaluate`` drive either kind the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

import os

import torch

from lstmimg import clips as V
from lstmimg import data as D
from lstmimg.config import TrainConfig
from lstmimg.distributed import Dist, shard
from lstmimg.errors import LstmimgError

Progress = Callable[[str, int, int], None]
IN_MEMORY_BYTES = 2 * 1024**3  # a training set larger than this, decoded, is read per batch by DataLoader workers


class StreamedImages:
    """A training set too large to hold decoded: DataLoader worker processes decode each batch while
    the model trains on the previous one. Unreadable files are dropped from their batch and listed."""

    def __init__(self, split: D.Split, channels: int, size: tuple[int, int], workers: int):
        self.split, self.channels, self.size = split, channels, size
        self.labels = torch.tensor(split.labels, dtype=torch.long)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.skipped: list[Path] = []

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, i: int):
        path = self.split.paths[i]
        try:
            return torch.from_numpy(D.load_image(path, self.channels, self.size)), self.split.labels[i], None
        except LstmimgError:
            return None, self.split.labels[i], path

    def batches(self, index_batches: list[torch.Tensor], pin: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        loader = torch.utils.data.DataLoader(
            self, batch_sampler=[b.tolist() for b in index_batches], num_workers=self.workers, collate_fn=_collate,
            pin_memory=pin, prefetch_factor=2 if self.workers else None,
            generator=torch.Generator().manual_seed(0),  # its workers' seeds: not drawn from the global RNG dropout uses
        )
        for images, labels, bad in loader:
            self.skipped += [p for p in bad if p not in self.skipped]
            if len(labels) > 1:
                yield images, labels


def _collate(samples):
    good = [(x, y) for x, y, _ in samples if x is not None]
    bad = [p for x, _, p in samples if x is None]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad


class ImageTask:
    """Image folders: batches ``(B, C, H, W)``."""

    kind = "image"

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: Optional[int] = None, size: Optional[tuple[int, int]] = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        if channels is None or size is None:
            channels, found = D.infer_image_format(splits.get("train", next(iter(splits.values()))).paths)
            size = size or found
        self.channels, self.size = channels, tuple(size)
        self.sets: dict = {}
        self.mean: list[float] = []
        self.std: list[float] = []
        self.pin = False  # page-locked batches (set for CUDA by pin_memory)

    def load(self, progress: Optional[Progress] = None) -> None:
        """Decode every split into memory, except a training set too large for it (``IN_MEMORY_BYTES``),
        which DataLoader workers then read per batch; mean and std come from train."""
        h, w = self.size
        for name, split in self.splits.items():
            if name == "train" and len(split.paths) * self.channels * h * w > IN_MEMORY_BYTES:
                self.sets[name] = StreamedImages(split, self.channels, self.size, self.cfg.workers)
                step = max(1, len(split.paths) // 2000)  # statistics from a spread of 2,000 images
                sample = D.decode_split(D.Split(split.paths[::step], split.labels[::step], split.classes), self.channels, self.size, self.cfg.workers)
                self.mean, self.std = D.channel_stats(sample.images)
                continue
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = D.decode_split(split, self.channels, self.size, self.cfg.workers, report)
        if "train" in self.sets and not self.mean:
            self.mean, self.std = D.channel_stats(self.sets["train"].images)

    def pin_memory(self) -> None:
        """Page-lock the training tensors, so copies to the GPU can overlap compute."""
        data = self.sets["train"]
        if isinstance(data, StreamedImages):
            self.pin = True  # the DataLoader pins each batch
        elif hasattr(data, "images"):
            data.images = data.images.pin_memory()
        else:
            data.videos = [v.pin_memory() for v in data.videos]

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
        if isinstance(data, StreamedImages):
            yield from data.batches(index_batches, self.pin)
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

    def __init__(self, splits: dict[str, D.Split], cfg: TrainConfig, channels: Optional[int] = None, size: Optional[tuple[int, int]] = None):
        self.splits, self.cfg = splits, cfg
        self.classes = next(iter(splits.values())).classes
        self.channels = 3
        self.size = tuple(size or cfg.img_size or V.infer_video_size(splits.get("train", next(iter(splits.values()))).paths))
        self.sets, self.mean, self.std, self.pin = {}, [], [], False

    def load(self, progress: Optional[Progress] = None) -> None:
        for name, split in self.splits.items():
            report = (lambda done, total, name=name: progress(name, done, total)) if progress else None
            self.sets[name] = V.decode_videos(split, self.size, report, cache=self.cfg.cache, workers=self.cfg.workers)
        if "train" in self.sets:
            self.mean, self.std = V.video_stats(self.sets["train"].videos)

    @property
    def truncated(self) -> list[str]:
        return [str(p) for s in self.sets.values() for p in s.truncated]

    def batches(self, generator: torch.Generator, d: Dist = Dist()) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = self.sets["train"]
        for idx in shard(torch.randperm(len(data.labels), generator=generator), d).split(self.cfg.batch_size):
            if len(idx) > 1:
                clips = V.random_clips(data, idx, self.cfg.clip_len, self.cfg.frame_stride, generator)
                if self.cfg.shuffle_frames:
                    clips = V.shuffle_time(clips, generator)
                yield clips, data.labels[idx]

    def score(self, net, split: str, device, batch_size: int = 256) -> tuple[torch.Tensor, dict]:
        shuffler = torch.Generator().manual_seed(self.cfg.seed) if self.cfg.shuffle_frames else None
        probs, clip_acc = V.score_videos(net, self.sets[split], self.mean, self.std, device, self.cfg.clip_len, self.cfg.frame_stride, self.cfg.val_clips, shuffler)
        return probs, {"clip_accuracy": clip_acc}


def make_task(root: str | Path, cfg: TrainConfig) -> ImageTask:
    """The task for a training data root: its splits found, its input format inferred."""
    kind = D.detect_kind(root)
    if kind == "video":
        return VideoTask(D.split_folder(root, cfg.val_split, cfg.seed, D.VIDEO_EXTENSIONS), cfg)
    splits = D.split_folder(root, cfg.val_split, cfg.seed)
    return ImageTask(splits, cfg, size=cfg.img_size)


def labelled_folder(root: str | Path, kind: str, classes: list[str], split: Optional[str] = None) -> D.Split:
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
