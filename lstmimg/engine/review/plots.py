"""Pictures: training curves, the confusion matrix, the mistakes gallery, explanations, video timelines and a
tuning search (matplotlib, imported only here).

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


DPI = 110  # of every saved figure


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


def _save(fig, path: Path, tight: bool = True) -> None:
    """``fig`` as a PNG at ``path``, cropped to what is drawn (``tight``) or at its own size."""
    from matplotlib import rc_context

    buffer = io.BytesIO()
    with warnings.catch_warnings(), rc_context({"font.family": font_families()}):
        warnings.filterwarnings("ignore", message="Glyph .* missing from")  # drawn as a box where no font has it
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    atomic_write_bytes(path, buffer.getvalue())


def plot_curves(rows: Sequence[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train and val, side by side."""
    _save(curves_figure(rows), path, tight=False)  # its margins are set: no second drawing to find them


def curves_figure(rows: Sequence[dict]):
    """The figure of ``plot_curves`` (returned for tests to read)."""
    fig = _figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.92, wspace=0.16)  # room for the tick labels, titles and axis labels
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
    return fig


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


LINE_STYLES = ("-", "--", ":", "-.")


def _class_lines(ax, xs, series: Sequence[Sequence[float]], names: Sequence[str], strong: str | None = None, marker: bool = False) -> None:
    """One line per class, none hidden under another: each has its own colour and dash pattern, and the
    lines drawn first are the widest, so a later line lying on top of one (two classes both at 0, say)
    leaves its edges showing."""
    n = len(names)
    for k, name in enumerate(names):
        width = 1.2 + 2.4 * (n - 1 - k) / max(1, n - 1)  # first class widest
        ax.plot(xs, series[k], color=f"C{k % 10}", linestyle=LINE_STYLES[(k // 10 + k) % len(LINE_STYLES)], linewidth=width + (1 if name == strong else 0),
                label=name, marker="o" if marker else None, markersize=3, alpha=0.9)


def _heading(result: dict) -> str:
    """File name, its true label when its folder says it, and what the model said."""
    true = f"true {result['true']}" if result.get("true") else "true label unknown"
    head = f"{Path(result['path']).name}: {true}, predicted {result['label']} {result['prob']:.2f}"
    return head if result["target"] == result["label"] else f"{head}; explaining {result['target']}"


def image_explanation_figure(image, result: dict, scan: str):
    """The figure of ``plot_image_explanation`` (returned for tests to read)."""
    import numpy as np
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    fig = _figure(figsize=(14, 4.6), layout="constrained")
    ax_heat, ax_steps, ax_curve = fig.subplots(1, 3)
    fig.suptitle(_heading(result), fontsize=11)
    _show(ax_heat, image)
    heat = np.array(result["heatmap"])
    shown = ax_heat.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=max(float(heat.max()), 1e-6))
    fig.colorbar(shown, ax=ax_heat, fraction=0.046, pad=0.03, label=f"drop of p({result['target']}) when covered")
    ax_heat.set_title(f"where: occlusion heat map ({result['target']})", fontsize=10)
    _show(ax_steps, image)
    steps = result["steps"]
    peak = max((s["importance"] for s in steps), default=0) or 1
    for s in steps:
        y0, x0, y1, x1 = s["box"]
        ax_steps.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, color="red", alpha=0.6 * s["importance"] / peak, linewidth=0))
    fig.colorbar(ScalarMappable(Normalize(0, peak), "Reds"), ax=ax_steps, fraction=0.046, pad=0.03, label="step importance (drop when covered)")
    centres = [((b[1] + b[3]) / 2 - 0.5, (b[0] + b[2]) / 2 - 0.5) for b in (s["box"] for s in steps)]
    if len(centres) > 1:  # the scan path, an arrow from each step to the next
        ax_steps.plot(*zip(*centres), color="cyan", linewidth=0.8, alpha=0.8)
        every = max(1, len(centres) // 12)
        for (xa, ya), (xb, yb) in list(zip(centres, centres[1:]))[::every]:
            ax_steps.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops={"arrowstyle": "->", "color": "cyan", "lw": 0.9})
    top = {s["step"] for s in sorted(steps, key=lambda s: -s["importance"])[:3]}
    label_every = max(1, -(-len(steps) // 32))  # at most about 32 numbers, the three that decided most always
    for s, (cx, cy) in zip(steps, centres):
        if s["step"] in top or s["step"] == 1 or s["step"] == len(steps) or s["step"] % label_every == 0:
            ax_steps.text(cx, cy, str(s["step"]), ha="center", va="center", fontsize=8 if s["step"] in top else 7,
                          color="yellow" if s["step"] in top else "white", fontweight="bold" if s["step"] in top else "normal",
                          bbox={"boxstyle": "round,pad=0.1", "facecolor": "black", "alpha": 0.5, "linewidth": 0})
    ax_steps.set_title(f"its {len(steps)} steps ({scan}), numbered in reading order;\nthe 3 that decided most in yellow", fontsize=10)
    ks = [a["steps"] for a in result["anytime"]]
    ax_curve.plot(ks, [a["prob"] for a in result["anytime"]], marker="o", markersize=3)
    ax_curve.set(title=f"anytime: p({result['target']}) after k of {len(ks)} steps", xlabel="steps read", ylabel="probability", ylim=(0, 1.02))
    ax_curve.title.set_fontsize(10)
    ax_curve.grid(alpha=0.3)
    return fig


def plot_image_explanation(image, result: dict, scan: str, path: Path) -> None:
    """Three panels under the file's name, true label (when its folder is a class) and prediction: the
    heat map over the image with its colour scale, the model's own steps along their scan path (arrows,
    step numbers) shaded by importance, and the anytime curve (the target's probability after k steps)."""
    _save(image_explanation_figure(image, result, scan), path)


def video_explanation_figure(clip, result: dict, classes: Sequence[str], strip: int = 12):
    """The figure of ``plot_video_explanation`` (returned for tests to read)."""
    frames = result["frames"]
    n = len(frames)
    shown = list(range(n)) if n <= strip else sorted({round(i * (n - 1) / (strip - 1)) for i in range(strip)})
    fig = _figure(figsize=(max(8, 1.1 * len(shown)), 6.8), layout="constrained")
    fig.suptitle(_heading(result), fontsize=11)
    grid = fig.add_gridspec(3, len(shown), height_ratios=[1, 1, 1.4])
    timed = n > 0 and frames[0]["time"] is not None
    for col, i in enumerate(shown):
        ax = fig.add_subplot(grid[0, col])
        _show(ax, clip[i])
        when = f"\n{frames[i]['time']:.2f} s" if timed else ""
        ax.set_title(f"#{i + 1} (src {frames[i]['index']}){when}", fontsize=7)
    stride = frames[1]["index"] - frames[0]["index"] if n > 1 else 1
    xs = list(range(1, n + 1))
    ax_imp = fig.add_subplot(grid[1, :])
    ax_imp.bar(xs, [f["importance"] for f in frames], color="tab:red")
    ax_imp.set(ylabel="importance", title=f"which frames decided {result['target']} (occlusion); #k = k-th sampled frame, src = its frame number in the file")
    ax_imp.title.set_fontsize(9)
    ax_imp.title.set_y(1.25 if timed and n > 1 else 1.0)  # above the seconds axis
    ax_prob = fig.add_subplot(grid[2, :], sharex=ax_imp)
    _class_lines(ax_prob, xs, [[row[k] for row in result["probs"]] for k in range(len(classes))], classes, strong=result["target"])
    every = f"every {stride} source frames" if stride > 1 else "every source frame"
    ax_prob.set(xlabel=f"sampled frames read ({every})", ylabel="probability", ylim=(0, 1.02))
    ax_prob.set_xlim(0.5, n + 0.5)
    ax_prob.grid(alpha=0.3)
    ax_prob.legend(fontsize=8, ncols=min(4, len(classes)))
    if timed and n > 1:  # seconds on top of the frames, from the file's frame rate
        per = frames[1]["time"] - frames[0]["time"]
        seconds = ax_imp.secondary_xaxis("top", functions=(lambda k: (k - 1) * per, lambda t: t / per + 1 if per else t))
        seconds.set_xlabel("seconds into the video", fontsize=8)
    return fig


def plot_video_explanation(clip, result: dict, classes: Sequence[str], path: Path, strip: int = 12) -> None:
    """A filmstrip of (up to ``strip``) sampled frames, each titled with its place among the sampled
    frames, its source frame number and time, over the frame importance bars (a seconds axis on top)
    and each class's probability as the LSTM reads the frames."""
    _save(video_explanation_figure(clip, result, classes, strip), path)


def timeline_figure(result: dict, classes: Sequence[str]):
    """The figure of ``plot_timeline`` (returned for tests to read)."""
    fig = _figure(figsize=(10, 3.8))
    ax = fig.subplots()
    windows = result["windows"]
    mids = [(w["start"] + w["end"]) / 2 for w in windows]
    _class_lines(ax, mids, [[w["probs"][k] for w in windows] for k in range(len(classes))], classes, marker=len(windows) < 40)
    for seg in result["segments"]:
        ax.axvspan(seg["start"], seg["end"], color=f"C{classes.index(seg['label']) % 10}", alpha=0.12, linewidth=0)
    ax.set(xlabel="seconds", ylabel="probability", ylim=(0, 1.02), title=f"{Path(result['path']).name}: {result['label']} {result['prob']:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=min(4, len(classes)))
    return fig


def plot_timeline(result: dict, classes: Sequence[str], path: Path) -> None:
    """Each class's probability per window over a whole video (every class its own colour and dash, so
    no line hides another), its segments shaded by label."""
    _save(timeline_figure(result, classes), path)


def plot_mistakes(samples: Sequence[dict], kind: str, wrong: int, total: int, path: Path, what: str = "val") -> None:
    """The mistakes gallery: each sample (``pixels``: an image ``(H, W, 3)`` or a video's frames ``(F, H,
    W, 3)``, or None when its file could not be read) with its file name, true and predicted class and
    the predicted probability; images four a row, a video a row of frames.

    The pictures are placed as pixels (``figimage``, scaled to a fixed box), not drawn in a set of axes
    each: axes cost most of the drawing time, and a gallery is drawn at the end of every training run."""
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
    box, gap, head, label = (150 if video else 176), 20, 40, 56  # pixels: a picture's box, between boxes, the title, a sample's lines
    width, height = cols * (box + gap) + gap, head + rows * (label + box + gap)
    fig = _figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for n, s in enumerate(samples):
        row, col = (n, 0) if video else divmod(n, cols)
        frames = ([] if s["pixels"] is None else list(s["pixels"])) if video else [s["pixels"]]
        x, top = gap + col * (box + gap), height - head - row * (label + box + gap)  # the cell's top left corner, from the bottom left
        text = f"{s['name']}\ntrue {s['true']}\nsaid {s['pred']} {s['prob']:.2f}"
        fig.text(x / width, top / height, text if frames and frames[0] is not None else f"{text}\n(file not readable now)", fontsize=7, va="top")
        for k, pixels in enumerate(frames):
            if pixels is not None:
                picture = _fit(pixels, box)
                h, w = picture.shape[:2]
                fig.figimage(picture, xo=x + k * (box + gap) + (box - w) // 2, yo=top - label - box + (box - h) // 2, origin="upper")
    fig.suptitle(title, fontsize=10)
    _save(fig, path, tight=False)


def _fit(pixels, box: int):
    """``pixels`` ``(H, W, C)`` as RGB uint8 scaled so its longer side is ``box`` (block pixels when enlarged)."""
    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).astype(np.uint8)).convert("RGB")
    scale = box / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return np.asarray(img.resize(size, Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX))


def plot_search(rows: Sequence[dict], metric: str, path: Path) -> None:
    """A tuning search (``rows``: ``trials.jsonl``'s): each trial's score against the time it ended, pruned
    trials as grey crosses at the score they were stopped at, the best so far as a line."""
    import numpy as np

    last_value = {r["trial"]: r["value"] for r in rows if r["state"] == "running"}  # each trial's last epoch
    done = [r for r in rows if r["state"] == "complete"]
    pruned = [r for r in rows if r["state"] == "pruned" and r["trial"] in last_value]
    fig = _figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.scatter([r["at"] / 60 for r in pruned], [last_value[r["trial"]] for r in pruned], marker="x", color="0.6", label=f"pruned ({len(pruned)})")
    ax.scatter([r["at"] / 60 for r in done], [r["value"] for r in done], color="tab:blue", label=f"complete ({len(done)})")
    if done:
        order = sorted(done, key=lambda r: r["at"])
        ax.step([r["at"] / 60 for r in order], np.maximum.accumulate([r["value"] for r in order]), where="post", color="tab:orange", label="best so far")
    defaults = next((r for r in done if r["trial"] == 0), None)
    if defaults:
        ax.axhline(defaults["value"], color="tab:green", ls="--", lw=1, label="defaults (trial 0)")
    ax.set_xlabel("minutes into the search")
    ax.set_ylabel(f"val {metric.replace('_', '-')}")
    ax.set_title("lstmimg tune: each trial's val score (pruned: where it was stopped)" if rows else "lstmimg tune: no trial started within the budget")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)
