"""Explanations: which regions and which frames decided, and how the decision formed along the sequence.

Everything here is occlusion, so it needs no gradients (none through cuDNN's LSTM, none through a
frozen backbone) and works for every model:

- an image is covered by patches of 1/8 of its side, sliding at half that; each patch is replaced by
  the training mean (which the model sees as 0 after normalisation), all of them in one batch, and
  the drop of the target's probability is spread over the patch's pixels: the heatmap;
- each step of the model's own sequence (a region of ``region_lstm`` in its scan order, or for
  ``cnn_lstm`` the image area under a step of the feature-map sequence) is occluded the same way;
- a video's sampled frames are occluded in spans of 1/8 of them, sliding one frame at a time: replaced
  by the clip's mean frame (``mean``, the default: measured more faithful) or by the frame before the
  span (``hold``); a frame's importance is the mean drop of the spans that cover it (evidence spread
  over several frames survives the loss of any one, so single frames would show little);
- the anytime curve is the target's probability after the model has read the first k steps (or
  frames), each prefix read on its own (``prefix_logits``): its last point is the prediction.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch

from lstmimg.checkpoint import Checkpoint
from lstmimg.config import trained_on_segments, window_stride
from lstmimg.data.folders import VIDEO_EXTENSIONS, check_file
from lstmimg.data.images import load_image
from lstmimg.engine.infer.inference import Predictor
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.errors import LstmimgError
from lstmimg.files import check_output_folder
from lstmimg.runs import resolve_model

MAX_FRAMES = 64  # sampled frames of a video explained (the first ones)
BASELINES = ("mean", "hold")


def explain(
    paths: Sequence[str | Path],
    model: str | Path | Checkpoint | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    frame_baseline: str = "mean",
) -> list[dict]:
    """Explain the model's decision on each image or video of ``paths`` (the model's kind decides
    which; without ``model``, the newest run of the kind of the first file). Returns one dict per
    input (see docs/explain.md; ``true`` is the input's folder name when that is a class of the model,
    else None); ``target`` (a class name) is explained instead of the predicted
    label; ``out`` writes a picture per input there (its path in ``picture``)."""
    if frame_baseline not in BASELINES:
        raise LstmimgError(f"--frame-baseline {frame_baseline!r} is not one of: {', '.join(BASELINES)}")
    if not paths:
        raise LstmimgError("no input files given")
    if out is not None:
        check_output_folder(out, "--out")
    if isinstance(model, Checkpoint):
        ckpt = model
    else:
        kind = "video" if Path(paths[0]).suffix.lower() in VIDEO_EXTENSIONS else "image"
        ckpt = load_checkpoint(resolve_model(model, kind)[0], kind=None if model else kind)
    if not hasattr(ckpt.model, "prefix_logits"):
        raise LstmimgError(f"{ckpt.path}: explain needs the PyTorch checkpoint (an .onnx file cannot read prefixes of its sequence)")
    if target is not None and target not in ckpt.classes:
        raise LstmimgError(f"--target {target!r} is not a class of the model ({', '.join(ckpt.classes)})")
    predictor = Predictor.from_checkpoint(ckpt, device)
    pictures = picture_paths(paths, Path(out)) if out is not None else {}
    results = []
    for path in paths:
        path = Path(path)
        check_file(path, "a video" if ckpt.kind == "video" else "an image")
        result = _video(ckpt, predictor, path, target, frame_baseline) if ckpt.kind == "video" else _image(ckpt, predictor, path, target)
        result = {"path": result["path"], "true": path.parent.name if path.parent.name in ckpt.classes else None, **result}  # ImageFolder: the folder is the label
        if out is not None:
            result["picture"] = str(_picture(ckpt, result, pictures[path]))
        results.append(result)
    return results


def picture_paths(paths: Sequence[str | Path], out: Path) -> dict[Path, Path]:
    """Where each input's picture goes: ``out/NAME.explain.png``, in the sub-folders that keep inputs of
    the same name apart (each input's folder relative to the folder all of them share), so no picture
    replaces another: ``a/x.png`` and ``b/x.png`` go to ``out/a/x.explain.png`` and ``out/b/x.explain.png``;
    ``a/x.png`` and ``a/x.jpg``, which share a name but for the extension, keep it: ``x.png.explain.png``."""
    folders = [Path(p).resolve().parent for p in paths]
    shared = Path(os.path.commonpath(folders))
    stems = Counter((folder, Path(p).stem) for p, folder in zip(paths, folders))
    name = lambda p, folder: Path(p).name if stems[folder, Path(p).stem] > 1 else Path(p).stem  # noqa: E731  (x.png and x.jpg: x.png.explain.png, x.jpg.explain.png)
    return {Path(p): out / folder.relative_to(shared) / f"{name(p, folder)}.explain.png" for p, folder in zip(paths, folders)}


def _target(ckpt: Checkpoint, probs: torch.Tensor, target: str | None) -> tuple[int, dict]:
    label = int(probs.argmax())
    t = ckpt.classes.index(target) if target is not None else label
    return t, {"label": ckpt.classes[label], "prob": round(float(probs[label]), 5), "target": ckpt.classes[t]}


def occlusion_boxes(h: int, w: int, parts: int = 8) -> list[tuple[int, int, int, int]]:
    """Patches of about 1/``parts`` of the image's side, sliding at half that, covering every pixel."""
    side_h, side_w = max(1, round(h / parts)), max(1, round(w / parts))

    def starts(n: int, side: int) -> list[int]:
        out = list(range(0, n - side + 1, max(1, side // 2)))
        return out if out[-1] == n - side else [*out, n - side]

    return [(y, x, y + side_h, x + side_w) for y in starts(h, side_h) for x in starts(w, side_w)]


def _drops(predictor: Predictor, images: torch.Tensor, t: int, base: float, batch: int = 256) -> list[float]:
    """Drop of class ``t``'s probability from ``base`` for each of ``images`` (0..1 float), >= 0."""
    probs = torch.cat([predictor.probs(images[i : i + batch])[:, t] for i in range(0, len(images), batch)])
    return (base - probs).clamp_min(0).tolist()


def _image(ckpt: Checkpoint, predictor: Predictor, path: Path, target: str | None) -> dict:
    c = ckpt.config
    h, w = c.img_size
    x = torch.from_numpy(load_image(path, c.in_channels, (h, w), c.fit)).float().div(255)  # (C, H, W), 0..1
    probs = predictor.probs(x[None])[0]
    t, head = _target(ckpt, probs, target)
    base = float(probs[t])
    mean = torch.tensor(ckpt.mean[: c.in_channels]).view(-1, 1, 1)

    def occluded(boxes) -> torch.Tensor:
        batch = x.repeat(len(boxes), 1, 1, 1)
        for i, (y0, x0, y1, x1) in enumerate(boxes):
            batch[i, :, y0:y1, x0:x1] = mean
        return batch

    boxes = occlusion_boxes(h, w)
    heat, count = torch.zeros(h, w), torch.zeros(h, w)
    for (y0, x0, y1, x1), drop in zip(boxes, _drops(predictor, occluded(boxes), t, base)):
        heat[y0:y1, x0:x1] += drop
        count[y0:y1, x0:x1] += 1
    heat /= count.clamp_min(1)
    step_boxes = model_steps(ckpt)
    steps = [{"step": i + 1, "box": box, "importance": round(d, 6)} for i, (box, d) in enumerate(zip(step_boxes, _drops(predictor, occluded(step_boxes), t, base)))]
    along = predictor.prefix_probs(x[None])[0, :, t]
    return {"path": str(path), **head, "method": "occlusion: patches of 1/8 of the side at half-patch stride, replaced by the training mean",
            "heatmap": [[round(v, 6) for v in row] for row in heat.tolist()], "steps": steps,
            "anytime": [{"steps": k + 1, "prob": round(float(p), 6)} for k, p in enumerate(along)], "image": x}


def model_steps(ckpt: Checkpoint) -> list[list[int]]:
    """The input area of each step of the model's own sequence, in its order: ``[y0, x0, y1, x1]``."""
    from lstmimg.models.regions import step_boxes

    c = ckpt.config
    if c.name == "region_lstm":
        return step_boxes(c.scan, c.patch, c.img_size, c.img_size)
    from lstmimg.models.layers import run_cnn

    with torch.inference_mode():
        fmap = run_cnn(ckpt.model.cnn, torch.zeros(1, c.in_channels, *c.img_size), ckpt.model.backbone)
    return step_boxes(c.scan, 1, tuple(fmap.shape[-2:]), c.img_size)


def _video(ckpt: Checkpoint, predictor: Predictor, path: Path, target: str | None, baseline: str) -> dict:
    from lstmimg.data.clips import first_frames
    from lstmimg.data.video_io import open_video

    c = ckpt.config
    stride = window_stride(ckpt.meta)  # a model trained on segments: the spacing of its training frames
    frames = first_frames(path, c.img_size, MAX_FRAMES, c.motion, stride, trained_on_segments(ckpt.meta))  # (T, H, W, C): only the frames explained are decoded
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)  # (T, C, H, W), 0..1
    probs = predictor.probs(clip[None])[0]
    t, head = _target(ckpt, probs, target)
    n = len(clip)
    width = max(1, math.ceil(n / 8))  # spans of 1/8 of the frames, as patches of 1/8 of the side for images
    starts = range(n - width + 1)
    batch = clip.repeat(len(starts), 1, 1, 1, 1)  # one copy per span occluded
    for i, s0 in enumerate(starts):
        held = clip[s0 - 1] if s0 else clip[min(width, n - 1)]
        batch[i, s0 : s0 + width] = clip.mean(dim=0) if baseline == "mean" else held
    importance, count = torch.zeros(n), torch.zeros(n)
    for s0, drop in zip(starts, _drops(predictor, batch, t, float(probs[t]), batch=max(1, 256 // n))):
        importance[s0 : s0 + width] += drop
        count[s0 : s0 + width] += 1
    drops = (importance / count.clamp_min(1)).tolist()
    along = predictor.prefix_probs(clip[None])[0]  # (T, K)
    cap, info = open_video(path)
    cap.release()
    fps = info.fps or 0.0
    return {"path": str(path), **head, "method": f"occlusion: spans of {width} sampled frames sliding by one, replaced by {'the clip mean frame' if baseline == 'mean' else 'the frame before the span'}",
            "frames": [{"index": i * stride, "time": round(i * stride / fps, 3) if fps else None, "importance": round(d, 6), "prob": round(float(along[i, t]), 6)}
                       for i, d in enumerate(drops)],
            "probs": [[round(float(p), 6) for p in row] for row in along], "clip": clip}


def _picture(ckpt: Checkpoint, result: dict, path: Path) -> Path:
    from lstmimg.engine.review.plots import plot_image_explanation, plot_video_explanation

    path.parent.mkdir(parents=True, exist_ok=True)
    if ckpt.kind == "video":
        plot_video_explanation(result["clip"][:, :3], result, ckpt.classes, path)
    else:
        plot_image_explanation(result["image"], result, ckpt.config.scan, path)
    return path


def public(result: dict) -> dict:
    """``result`` without the pixels it carries for drawing (what ``--json`` prints)."""
    return {k: v for k, v in result.items() if k not in ("image", "clip")}
