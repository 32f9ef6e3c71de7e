"""What a run writes for people to look at, beside its checkpoints: ``metrics.csv`` after every epoch, and
once training is done the plots (``curves.png``, ``confusion_matrix.png``), the mistakes gallery
(``mistakes.png``) and the review page (``report/``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from lstmimg.files import atomic_write_text


def write_metrics(path: Path, rows: list[dict]) -> None:
    """One row per epoch; a run resumed from an older version keeps the columns it lacked empty."""
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_pictures(run_dir: Path, data, rows: list[dict], confusion, labels: torch.Tensor, probs: torch.Tensor) -> None:
    """The curves, the val confusion matrix and, where the val samples' files are known (cached features
    keep them too), the mistakes gallery."""
    from lstmimg.engine.review.mistakes import write_mistakes
    from lstmimg.engine.review.plots import plot_confusion, plot_curves  # matplotlib: only once training is done

    plot_curves(rows, run_dir / "curves.png")
    plot_confusion(confusion, data.classes, run_dir / "confusion_matrix.png")
    if getattr(data.sets["val"], "paths", None):
        write_mistakes(data.kind, data.sets["val"].paths, labels, probs, data.classes, run_dir / "mistakes.png")


def write_review(run_dir: Path, data, ckpt, best_epoch: int, labels: torch.Tensor, probs: torch.Tensor, clip_probs: list, device) -> None:
    """The review page of the best checkpoint on the val split, in ``report/`` (replaced on a resumed run)."""
    from lstmimg.engine.review.report import held_pictures, labelled_report

    held = data.sets["val"]
    scored = f"Scored: the val split of {data.root} ({len(labels)} files), by the best checkpoint (epoch {best_epoch})"
    labelled_report(run_dir / "report", data.kind, data.classes, held.paths, labels, probs, held_pictures(held, data.kind),
                    f"lstmimg run {run_dir.name}", scored, list(zip(data.skipped, data.errors)), ckpt, overwrite=True, device=str(device),
                    clip_probs=clip_probs)
