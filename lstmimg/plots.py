"""Pictures of a run: training curves and the confusion matrix (matplotlib, imported only here).

Figures are made with ``matplotlib.figure.Figure`` and drawn by the Agg canvas directly, so plotting
never touches pyplot's global backend (a notebook keeps its own). Class names in any script are drawn
with the first installed font that has their glyphs.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

from lstmimg.files import atomic_write_bytes

# Fonts with CJK glyphs, tried after matplotlib's DejaVu Sans (which has Latin, Greek, Cyrillic, ...)
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR", "Source Han Sans", "WenQuanYi Zen Hei",
                  "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN", "IPAGothic", "Noto Sans", "Arial Unicode MS")


def font_families(installed: Sequence[str] | None = None) -> list[str]:
    """DejaVu Sans, then the installed fallback fonts (matplotlib takes each glyph from the first font
    in the list that has it)."""
    if installed is None:
        from matplotlib import font_manager

        installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [name for name in FALLBACK_FONTS if name in installed]


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(fig, path: Path) -> None:
    from matplotlib import rc_context

    buffer = io.BytesIO()
    with warnings.catch_warnings(), rc_context({"font.family": font_families()}):
        warnings.filterwarnings("ignore", message="Glyph .* missing from")  # drawn as a box where no font has it
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(rows: Sequence[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and val, side by side."""
    fig = _figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in rows]
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


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> None:
    """Confusion matrix with counts in the cells (rows: true class, columns: predicted)."""
    n = len(classes)
    side = min(14, 2 + 0.5 * n)
    fig = _figure(figsize=(side, side))
    ax = fig.subplots()
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
