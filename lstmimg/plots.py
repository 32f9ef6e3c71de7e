"""Pictures of a run: training curves and the confusion matrix (matplotlib, imported only here)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from lstmimg.checkpoint import atomic_write_bytes


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(rows: Sequence[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and val, side by side."""
    plt = _figure()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        ax_loss.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("val_acc", "val")):
        ax_acc.plot(epochs, [r[key] for r in rows], marker="o", label=label)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="accuracy", xlabel="epoch", ylim=(max(0.0, min(r["val_acc"] for r in rows) - 0.05), 1.0))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)
    plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> None:
    """Confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    plt = _figure()
    n = len(classes)
    side = min(14, 2 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    if n <= 30:
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if count > peak / 2 else "black")
    ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title="validation confusion matrix")
    _save(fig, path)
    plt.close(fig)
