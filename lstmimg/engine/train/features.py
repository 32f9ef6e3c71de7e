"""A frozen backbone's features, computed once: later epochs run only the sequence model and the head.

With ``--freeze-backbone`` the CNN's output for an image (or a video frame) never changes, so every
split held in memory is run through the CNN once, and its images (or frames) are replaced by their
feature maps ``(F, h, w)``, kept in float16. Clips are then cut from the per-frame maps exactly as they
were from the frames. Augmentation is off while features are cached (a random affine of the image
cannot be applied to its features); ``--no-feature-cache`` trains on the images, augmented, which
measured no better with a frozen backbone (benchmarks/fine_tune.py, docs/own-data.md), so no
augmented views are cached either.

With ``--cache DIR`` the features of each file are also kept on disk, in ``DIR/features/``, one
``.npy`` entry per image or video, keyed by the file's content and a fingerprint of everything that
makes its features: the CNN's weights (so the backbone, its weights and any fine-tuning), the input
size and the normalisation. A later run with the same settings reads them instead of running the CNN.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstmimg.data.dataset import TrainingData
from lstmimg.data.images import normalize
from lstmimg.files import atomic_write, content_hash
from lstmimg.models.layers import run_cnn

Progress = Callable[[str, int, int, float], None]  # split, done, total, items per second
FORMAT = "features-v1"


@torch.inference_mode()
def cnn_features(cnn: nn.Module, images: torch.Tensor, mean, std, device: torch.device, backbone: bool, batch: int = 64) -> torch.Tensor:
    """Feature maps ``(N, F, h, w)`` (float16, CPU) of uint8 images ``(N, C, H, W)``."""
    cnn.eval()
    out = [run_cnn(cnn, normalize(images[i : i + batch].to(device), mean, std), backbone).half().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out).contiguous()


def fingerprint(cnn: nn.Module, size: tuple[int, int], channels: int, mean, std) -> str:
    """What makes a file's features, in 16 hex digits: every tensor of the CNN (weights and batch-norm
    statistics), the input size and channels, and the normalisation."""
    digest = hashlib.sha256(repr((FORMAT, tuple(size), channels, [round(m, 6) for m in mean], [round(s, 6) for s in std])).encode())
    for name, tensor in cnn.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class DiskFeatures:
    """Per-file feature entries in ``folder``: ``<content hash>-<fingerprint>.npy``, written atomically."""

    def __init__(self, folder: str | Path, settings: str):
        self.folder, self.settings = Path(folder), settings

    def entry(self, path: Path) -> Path:
        return self.folder / f"{content_hash(path)}-{self.settings}.npy"

    def get(self, path: Path) -> torch.Tensor | None:
        entry = self.entry(path)
        if not entry.is_file():
            return None
        try:
            return torch.from_numpy(np.load(entry))
        except (OSError, ValueError):
            return None  # a damaged entry is computed again and replaced

    def put(self, path: Path, features: torch.Tensor) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.entry(path)) as f:
            np.save(f, features.numpy())


def _items(data) -> list[torch.Tensor]:
    """A split's samples: each image ``(1, C, H, W)`` or each video ``(T, C, H, W)``."""
    return [data.images[i : i + 1] for i in range(len(data.images))] if hasattr(data, "images") else data.videos


def split_features(data, compute: Callable[[torch.Tensor], torch.Tensor], disk: DiskFeatures | None, report: Callable[[int, int, int], None]) -> list[torch.Tensor]:
    """The features of every sample of ``data`` (an in-memory image or video set), read from ``disk``
    where it holds them, else computed (images in batches of 64) and stored there. ``report(done,
    total, computed)`` counts images or frames: all done so far, and those the CNN computed."""
    items = _items(data)
    out: list[torch.Tensor | None] = [disk.get(p) if disk else None for p in data.paths]
    todo = [i for i, f in enumerate(out) if f is None]
    total, done = sum(len(x) for x in items), sum(len(items[i]) for i, f in enumerate(out) if f is not None)
    computed = 0
    report(done, total, computed)
    group = 64 if hasattr(data, "images") else 1  # images a batch at a time, videos one by one
    for start in range(0, len(todo), group):
        idx = todo[start : start + group]
        feats = compute(torch.cat([items[i] for i in idx]))
        offset = 0
        for i in idx:
            out[i] = feats[offset : offset + len(items[i])].clone() if group > 1 else feats
            offset += len(items[i])
            if disk:
                disk.put(data.paths[i], out[i])
        done, computed = done + len(feats), computed + len(feats)
        report(done, total, computed)
    return out


def cache_features(data: TrainingData, model: nn.Module, device: torch.device, progress: Progress | None = None, cache: str | Path | None = None, keep: bool = False) -> None:
    """Replace the images (or video frames) of every split ``data`` holds in memory by the frozen CNN's
    features of them; from then on ``data`` hands out features (``data.features``). ``cache``: a folder
    whose ``features/`` keeps them across runs. ``keep``: hold on to the images too, so ``restore_images``
    can bring them back (for ``--unfreeze-after``)."""
    report = progress or (lambda split, done, total, rate: None)
    disk = DiskFeatures(Path(cache) / "features", fingerprint(model.cnn, data.size, data.channels, data.mean, data.std)) if cache else None
    compute = lambda x: cnn_features(model.cnn, x, data.mean, data.std, device, model.backbone)  # noqa: E731
    data.raw = {}
    for name, held in data.sets.items():
        started = time.perf_counter()

        def rate_report(done: int, total: int, computed: int, name=name, started=started) -> None:
            report(name, done, total, computed / max(1e-9, time.perf_counter() - started))  # what the disk held is not speed

        feats = split_features(held, compute, disk, rate_report)
        if hasattr(held, "images"):
            data.raw[name] = held.images if keep else None
            held.images = torch.cat(feats)
        else:
            data.raw[name] = held.videos if keep else None
            held.videos = feats
    data.features = True


def restore_images(data: TrainingData) -> None:
    """Undo ``cache_features(keep=True)``: the sets hold images (or frames) again."""
    for name, raw in data.raw.items():
        held = data.sets[name]
        if hasattr(held, "images"):
            held.images = raw
        else:
            held.videos = raw
    data.raw, data.features = {}, False
