"""Pictures: training curves, the confusion matrix, explanations and video timelines (matplotlib, imported only here).

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
    lowest = min(min(r["val_acc"], r["train_acc"]) for r in rows)  # every point on the chart, the first epochs' too
    ax_acc.set(title="accuracy", xlabel="epoch", ylim=(max(0.0, lowest - 0.05), 1.02))
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")  # accuracy climbs towards 1.0: the legend stays below the curves' end
    _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path, what: str = "validation") -> None:
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
    ax.set(xlabel="predicted", ylabel="true", title=f"{what} confusion matrix")
    _save(fig, path)


def _show(ax, image) -> None:
    """A (C, H, W) 0..1 tensor drawn as an image (grey for one channel)."""
    pixels = image.permute(1, 2, 0).numpy()
    ax.imshow(pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3], cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_image_explanation(image, result: dict, scan: str, path: Path) -> None:
    """Three panels: the heatmap over the image, the model's own steps along their scan path shaded by
    importance, and the anytime curve (the target's probability after k steps)."""
    import numpy as np

    fig = _figure(figsize=(12, 4))
    ax_heat, ax_steps, ax_curve = fig.subplots(1, 3)
    _show(ax_heat, image)
    ax_heat.imshow(np.array(result["heatmap"]), cmap="jet", alpha=0.45)
    ax_heat.set_title(f"where: occlusion heatmap ({result['target']})")
    _show(ax_steps, image)
    steps = result["steps"]
    peak = max((s["importance"] for s in steps), default=0) or 1
    from matplotlib.patches import Rectangle

    for s in steps:
        y0, x0, y1, x1 = s["box"]
        ax_steps.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, color="red", alpha=0.6 * s["importance"] / peak, linewidth=0))
    centres = [((b[1] + b[3]) / 2 - 0.5, (b[0] + b[2]) / 2 - 0.5) for b in (s["box"] for s in steps)]
    if len(centres) > 1:
        ax_steps.plot(*zip(*centres), color="white", linewidth=0.8, alpha=0.8)
    ax_steps.set_title(f"its steps ({scan}), by importance")
    ks = [a["steps"] for a in result["anytime"]]
    ax_curve.plot(ks, [a["prob"] for a in result["anytime"]], marker="o", markersize=3)
    ax_curve.set(title=f"anytime: p({result['target']}) after k steps", xlabel="steps read", ylim=(0, 1.02))
    ax_curve.grid(alpha=0.3)
    _save(fig, path)


def plot_video_explanation(clip, result: dict, classes: Sequence[str], path: Path, strip: int = 12) -> None:
    """A filmstrip of (up to ``strip``) sampled frames over the frame importance bars and each class's
    probability as the LSTM reads the frames."""
    frames = result["frames"]
    n = len(frames)
    shown = list(range(n)) if n <= strip else sorted({round(i * (n - 1) / (strip - 1)) for i in range(strip)})
    fig = _figure(figsize=(max(8, 1.1 * len(shown)), 6))
    grid = fig.add_gridspec(3, len(shown), height_ratios=[1, 1, 1.4])
    for n, i in enumerate(shown):
        ax = fig.add_subplot(grid[0, n])
        _show(ax, clip[i])
        ax.set_title(f"{i + 1}", fontsize=8)
    xs = list(range(1, len(frames) + 1))
    ax_imp = fig.add_subplot(grid[1, :])
    ax_imp.bar(xs, [f["importance"] for f in frames], color="tab:red")
    ax_imp.set(ylabel="importance", title=f"which frames decided {result['target']} (occlusion)")
    ax_imp.set_xlim(0.5, len(frames) + 0.5)
    ax_prob = fig.add_subplot(grid[2, :])
    for k, name in enumerate(classes):
        ax_prob.plot(xs, [row[k] for row in result["probs"]], label=name, linewidth=2 if name == result["target"] else 1)
    ax_prob.set(xlabel="frames read", ylabel="probability", ylim=(0, 1.02))
    ax_prob.set_xlim(0.5, len(frames) + 0.5)
    ax_prob.grid(alpha=0.3)
    ax_prob.legend(fontsize=8, ncols=min(4, len(classes)))
    _save(fig, path)


def plot_timeline(result: dict, classes: Sequence[str], path: Path) -> None:
    """Each class's probability per window over a whole video, its segments shaded by label."""
    fig = _figure(figsize=(10, 3.5))
    ax = fig.subplots()
    windows = result["windows"]
    colours = {name: f"C{i % 10}" for i, name in enumerate(classes)}
    mids = [(w["start"] + w["end"]) / 2 for w in windows]
    for k, name in enumerate(classes):
        ax.plot(mids, [w["probs"][k] for w in windows], color=colours[name], label=name, marker="o" if len(windows) < 40 else None, markersize=3)
    for seg in result["segments"]:
        ax.axvspan(seg["start"], seg["end"], color=colours[seg["label"]], alpha=0.12, linewidth=0)
    ax.set(xlabel="seconds", ylabel="probability", ylim=(0, 1.02), title=f"{Path(result['path']).name}: {result['label']} {result['prob']:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=min(4, len(classes)))
    _save(fig, path)


def plot_mistakes(samples: Sequence[dict], kind: str, wrong: int, total: int, path: Path, what: str = "val") -> None:
    """The mistakes gallery: each sample (``pixels``: an image ``(H, W, 3)`` or a video's frames ``(F, H,
    W, 3)``, or None when its file could not be read) with its file name, true and predicted class and
    the predicted probability; images four a row, a video a row of frames."""
    title = f"{wrong} of {total} {what} samples wrong" + (f", the {len(samples)} most confident shown" if wrong > len(samples) else "")
    if not samples:
        fig = _figure(figsize=(6, 1.5))
        ax = fig.subplots()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no mistakes: all {total} {what} samples right", ha="center", va="center", fontsize=12)
        _save(fig, path)
        return
    video = kind == "video"
    cols = max((len(s["pixels"]) for s in samples if s["pixels"] is not None), default=1) if video else min(4, len(samples))
    rows = len(samples) if video else -(-len(samples) // cols)
    fig = _figure(figsize=(2.2 * cols, 2.8 * rows if not video else 2.1 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for n, s in enumerate(samples):
        label = f"{s['name']}\ntrue {s['true']}\nsaid {s['pred']} {s['prob']:.2f}"
        frames = ([] if s["pixels"] is None else list(s["pixels"])) if video else [s["pixels"]]
        cells = axes[n] if video else [axes[n // cols][n % cols]]
        for ax, pixels in zip(cells, frames):
            if pixels is not None:
                ax.imshow(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, cmap="gray")
        cells[0].set_title(label if frames and frames[0] is not None else f"{label}\n(file not readable now)", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
