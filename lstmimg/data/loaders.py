"""Training sets read from disk per batch by DataLoader worker processes (``--load disk``), instead
of being held decoded in memory.

A disk set keeps one DataLoader for the whole run, its workers alive between epochs
(``persistent_workers``); each epoch hands it that epoch's batches (``EpochBatches``). The workers
decode (and, for videos, cut the clips) ``prefetch_factor`` batches ahead while the main process
trains; with ``workers=0`` the main process decodes. Every random draw is made in the main process, so
a disk set gives the same batches as the same set held in memory. Unreadable files are dropped from
their batch and listed in ``skipped`` (with the reason in ``errors``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from lstmimg.config import MIN_BATCH
from lstmimg.data import clips as V
from lstmimg.data.folders import Split
from lstmimg.data.images import load_image
from lstmimg.errors import LstmimgError


def default_workers() -> int:
    """Worker processes when ``--workers`` is not given: one per core, up to 4, the cores shared among
    the training processes on this machine (torchrun's ``LOCAL_WORLD_SIZE``)."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(4, (os.cpu_count() or 1) // local_world))


class EpochBatches:
    """A batch sampler whose batches are set anew each epoch, so one DataLoader serves the whole run."""

    def __init__(self):
        self.batches: list[list] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def start_worker(worker_id: int) -> None:
    """In each worker process (ours alone): OpenCV without its thread pool, whose threads fork() does
    not copy (a worker forked after the parent had used the pool could hang in cvtColor), and quiet."""
    import cv2

    cv2.setNumThreads(0)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


class DiskSet:
    """A training set read per batch: ``dataset[item]`` gives ``(sample, label, error or None,
    truncated path or None)``, the error a message naming an unreadable file; ``labels`` are every
    file's label, ``skipped``, ``errors`` and ``truncated`` fill in as the files are met. The dataset
    holds no reference back to the loader, so dropping the set (or ``close``) stops its workers at once."""

    def __init__(self, dataset: torch.utils.data.Dataset, labels: list[int], workers: int | None):
        self.dataset = dataset
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.workers = default_workers() if workers is None else workers
        self.skipped: list[Path] = []
        self.errors: list[str] = []
        self.truncated: list[Path] = []
        self.pin = False  # page-locked batches, for copies to a GPU that overlap compute
        self._sampler = EpochBatches()
        self._loader: torch.utils.data.DataLoader | None = None

    def batches(self, items: list[list]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Decoded ``(samples, labels)`` for each batch of ``items`` (what ``dataset[...]`` takes), in
        order; a batch left with fewer than ``MIN_BATCH`` readable samples is dropped."""
        self._sampler.batches = items
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                self.dataset, batch_sampler=self._sampler, num_workers=self.workers, collate_fn=_collate, pin_memory=self.pin,
                persistent_workers=self.workers > 0, prefetch_factor=2 if self.workers else None, worker_init_fn=start_worker,
                generator=torch.Generator().manual_seed(0),  # its workers' seeds: not drawn from the global RNG dropout uses
            )
        for samples, labels, bad, truncated in self._loader:
            for path, error in bad:
                if path not in self.skipped:
                    self.skipped.append(path)
                    self.errors.append(error)
            self.truncated += [p for p in truncated if p not in self.truncated]
            if len(labels) >= MIN_BATCH:
                yield samples, labels

    def close(self) -> None:
        """Stop the worker processes (dropping the set does the same)."""
        self._loader = None


def _collate(items):
    good = [(x, y) for x, y, _, _ in items if x is not None]
    bad = [p for x, _, p, _ in items if x is None]
    truncated = [t for x, _, _, t in items if x is not None and t is not None]
    if not good:
        return torch.empty(0, dtype=torch.uint8), torch.empty(0, dtype=torch.long), bad, truncated
    return torch.stack([x for x, _ in good]), torch.tensor([y for _, y in good]), bad, truncated


class ImageFiles(torch.utils.data.Dataset):
    """Images decoded one by one: item ``i`` is file ``i`` of ``split``, uint8 ``(C, H, W)``."""

    def __init__(self, split: Split, channels: int, size: tuple[int, int], fit: str = "squash"):
        self.split, self.channels, self.size, self.fit = split, channels, size, fit

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, i: int):
        path, label = self.split.paths[i], self.split.labels[i]
        try:
            return torch.from_numpy(load_image(path, self.channels, self.size, self.fit)), label, None, None
        except LstmimgError as err:
            return None, label, (path, str(err)), None


class VideoClips(torch.utils.data.Dataset):
    """Clips cut from videos one by one. Item ``(i, draw)`` is the clip of ``clip_len`` frames every
    ``stride`` of video ``i`` (or its segments') that the draw picks (``clips.drawn_frames``), uint8
    ``(T, 3, H, W)``: the clip ``clips.random_clips`` cuts from the same video held in memory.

    With a frame cache, the first epoch decodes each video whole into it, and later ones read only the
    clip's frames from the memory-mapped entry. Without one, a video is decoded only up to the clip's
    last frame and only the clip's frames are converted (``video.read_frames``), placed by the frame
    count in the file's header; a file whose header has no count, or that ends early, is decoded whole."""

    def __init__(self, split: Split, size: tuple[int, int], clip_len: int, stride: int, cache: str | None, motion: str = "none"):
        self.split, self.size, self.clip_len, self.stride, self.cache, self.motion = split, size, clip_len, stride, cache, motion
        # content hashes made once, here in the main process; the workers get them with the dataset
        self.keys = [_key(path, size, motion, stride) for path in split.paths] if cache else [None] * len(split.paths)

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, item: tuple[int, float]):
        i, draw = item
        path, label = self.split.paths[i], self.split.labels[i]

        def picked(length: int) -> list[int]:  # the clip's frame numbers in a video of that length
            return V.drawn_frames(draw, length, self.clip_len, self.stride).tolist()

        if self.cache is None:
            try:
                return torch.from_numpy(self._read_clip(path, picked)).permute(0, 3, 1, 2), label, None, None
            except LstmimgError:
                pass  # no frame count, ends early, or unreadable: decoded whole below, which tells them apart
        try:
            frames, truncated = V.decode_cached(path, self.size, self.cache, mmap=True, key=self.keys[i], motion=self.motion, stride=self.stride)  # (T, H, W, 3 + k)
        except LstmimgError as err:
            return None, label, (path, str(err)), None
        clip = frames[picked(len(frames))]  # (clip_len, H, W, 3), only these frames read from a mapped entry
        return torch.from_numpy(clip).permute(0, 3, 1, 2), label, None, path if truncated else None


    def _read_clip(self, path: Path, picked) -> np.ndarray:
        """The clip's frames ``(clip_len, H, W, 3 + k)``, decoding only up to its last one."""
        return V.read_picked(path, picked, self.size, self.motion, self.stride)


def _key(path: Path, size: tuple[int, int], motion: str = "none", stride: int = 1) -> str | None:
    try:
        return V.cache_key(path, size, motion, stride)
    except OSError:
        return None  # unreadable: the worker names it


def disk_images(split: Split, channels: int, size: tuple[int, int], workers: int | None, fit: str = "squash") -> DiskSet:
    """``split``'s images, decoded per batch; items are file indices."""
    return DiskSet(ImageFiles(split, channels, size, fit), split.labels, workers)


def disk_clips(split: Split, size: tuple[int, int], clip_len: int, stride: int, cache: str | None, workers: int | None, motion: str = "none") -> DiskSet:
    """Clips of ``split``'s videos (with ``motion`` input), decoded per batch; items are ``(video index, draw)``."""
    return DiskSet(VideoClips(split, size, clip_len, stride, cache, motion), split.labels, workers)
