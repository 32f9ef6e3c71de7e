"""The mistakes gallery: the samples a model gets wrong, most confident first, drawn from their files
(``mistakes.png`` in a run folder, and from ``lstmimg eval --out``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lstmimg.errors import LstmimgError

GALLERY = 16  # mistakes drawn at most
STRIP = 6  # frames shown per video


def mistakes(labels: torch.Tensor, probs: torch.Tensor, limit: int = GALLERY) -> list[tuple[int, int, float]]:
    """The samples whose top class is wrong, most confident first: (index, predicted class, its probability)."""
    conf, pred = probs.max(1)
    wrong = sorted((pred != labels).nonzero().flatten().tolist(), key=lambda i: -float(conf[i]))
    return [(i, int(pred[i]), float(conf[i])) for i in wrong[:limit]]


def thumbnail(kind: str, path: Path, side: int = 128) -> np.ndarray | None:
    """A picture of a sample from its file: an image ``(H, W, 3)`` at most ``side`` a side, or a
    video's ``STRIP`` evenly spaced frames ``(STRIP, H, W, 3)``; None when the file cannot be read now."""
    try:
        if kind == "image":
            from lstmimg.data.images import open_image

            img = open_image(path).convert("RGB")
            img.thumbnail((side, side))
            return np.asarray(img)
        from lstmimg.data.video_io import read_frames

        pick = lambda count: np.linspace(0, max(0, count - 1), STRIP).round().astype(int).tolist()  # noqa: E731
        try:
            return read_frames(path, pick)
        except LstmimgError:  # no frame count in the header, or fewer frames than it says
            return strip_of_any_length(path, side * 2)
    except (LstmimgError, OSError, ValueError):
        return None


KEPT = 4 * STRIP  # frames a strip of unknown length holds at most while it reads


def strip_of_any_length(path: Path, side: int) -> np.ndarray:
    """``STRIP`` evenly spaced frames of a video whose length is not known beforehand, each at most
    ``side`` pixels a side, in bounded memory: at most ``KEPT`` small frames are held, every other one
    let go (and the step doubled) whenever that many are."""
    from lstmimg.data.video_io import FrameReader, probe_size

    h, w = probe_size(path)
    scale = min(1.0, side / max(h, w))
    kept: list[np.ndarray] = []
    step = 1
    with FrameReader(path, size=(max(1, round(h * scale)), max(1, round(w * scale)))) as reader:
        for n, frame in enumerate(reader):
            if n % step == 0:
                kept.append(frame.rgb)
                if len(kept) == KEPT:
                    kept, step = kept[::2], step * 2
    return np.stack(kept)[np.linspace(0, len(kept) - 1, STRIP).round().astype(int)]


def write_mistakes(kind: str, paths: Sequence[Path], labels: torch.Tensor, probs: torch.Tensor, classes: Sequence[str], path: Path, what: str = "val") -> int:
    """Draw the gallery of ``paths``' mistakes (``probs``: ``(N, K)``, ``labels``: ``(N,)``) to ``path``;
    returns how many samples were wrong."""
    from lstmimg.engine.review.plots import plot_mistakes

    picked = mistakes(labels, probs)
    samples = [{"pixels": thumbnail(kind, paths[i]), "name": f"{Path(paths[i]).parent.name}/{Path(paths[i]).name}", "true": classes[int(labels[i])], "pred": classes[pred], "prob": p}
               for i, pred, p in picked]
    wrong = int((probs.argmax(1) != labels).sum())
    plot_mistakes(samples, kind, wrong, len(labels), path, what)
    return wrong
