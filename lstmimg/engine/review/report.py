"""The review report: one page that opens from disk and shows what a model got right and wrong.

A report folder holds ``index.html`` (from the Jinja2 template in ``lstmimg/assets/report/``, names
escaped), the page's ``report.js`` and ``report.css``, ``data.js`` (every sample as plain data: one JSON
value the page loads as a script, since browsers refuse to ``fetch`` a file beside a page opened from
disk), ``thumbs/`` (one small JPEG a sample, made from the pixels the model read) and ``predictions.csv``.
The page builds its tables and gallery from ``data.js`` with ``textContent``: a file or class name is
never markup. Nothing on it asks the network for anything.

``ReportWriter`` is fed sample by sample (``add``) while predictions are made, so thumbnails come from
images already decoded and a collection of any size is never held as pixels; ``close`` writes the rest.
``metrics`` are the figures the page shows, from labels and probabilities.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lstmimg.engine.review.metrics import metrics
from lstmimg.errors import LstmimgError
from lstmimg.files import atomic_write_text, check_output_folder

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "report"
THUMB_SIDE = 64  # longest side of a thumbnail, px (a video: each of its STRIP frames)
STRIP = 4  # frames in a video's thumbnail strip
SHEET_COLUMNS = 8  # thumbnails a row in a batch's sheet
ALL_PROBS = 20  # up to this many classes, every class's probability is kept per sample; more: the top ALL_PROBS
REPORT_FILES = ("index.html", "data.js")


def check_report_folder(out: str | Path, overwrite: bool = False, option: str = "--report") -> Path:
    """``out`` as a Path if a report can be written there: refused when it holds a report already,
    unless ``overwrite``."""
    out = check_output_folder(out, option)
    if not overwrite:
        for name in REPORT_FILES:
            if (out / name).exists():
                raise LstmimgError(f"{out / name}: exists; choose another folder or add --overwrite (nothing was replaced)")
    return out


def thumbnail_jpeg(pixels: np.ndarray | torch.Tensor, channels_last: bool = False) -> bytes:
    """A small JPEG of uint8 pixels: an image ``(C, H, W)`` (the model's input; motion channels beyond
    the first three are left out) or a clip's frames ``(T, C, H, W)`` (a strip of ``STRIP`` of them side by
    side); ``channels_last``: ``(H, W, C)`` / ``(T, H, W, C)``, as pictures of files come."""
    from PIL import Image

    a = pixels.numpy() if isinstance(pixels, torch.Tensor) else np.asarray(pixels)
    if not channels_last:
        a = np.moveaxis(a, -3, -1)  # (..., H, W, C)
    frames = a.ndim == 4
    if frames:
        a = np.concatenate(list(a[np.linspace(0, len(a) - 1, min(STRIP, len(a))).round().astype(int)]), axis=1)  # (H, n*W, C)
    a = a[..., 0] if a.shape[-1] == 1 else a[..., :3]
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))
    scale = THUMB_SIDE * (STRIP if frames else 1) / max(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class ReportWriter:
    """Writes a report folder sample by sample.

    ``kind``: "image" or "video"; ``classes``: the model's; ``labelled``: whether samples have a true
    label. ``add`` one sample at a time (its probabilities over ``classes``, its true class index or None,
    and its pixels for the thumbnail, or None for none); ``skip`` an input that could not be read;
    ``close`` writes the page and returns what was written.
    """

    def __init__(self, out: str | Path, kind: str, classes: Sequence[str], title: str, labelled: bool, overwrite: bool = False, scored: str = "",
                 predictions_csv: bool = True):
        self.out = check_report_folder(out, overwrite)
        self.kind, self.classes, self.title, self.labelled, self.scored = kind, list(classes), title, labelled, scored
        self.rows: list[list] = []  # [path, true, pred, prob, probs]
        self.skipped: list[list[str]] = []
        self.probs: list[torch.Tensor] = []
        self.details: dict[int, dict] = {}  # sample index -> extra detail (an explanation picture)
        self.timelines: list[dict] = []  # video sources followed window by window (add_timeline)
        self.predictions_csv = predictions_csv  # predictions.csv beside the page (a check page has its own lists)
        self.sheets = 0  # thumbnail sheets written (add_batch)
        self.thumbs = self.out / "thumbs"
        try:
            self.thumbs.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LstmimgError(f"{self.out}: cannot create the folder ({err.strerror})") from None

    def add(self, path: str | Path, probs: torch.Tensor | dict[int, float], true: int | None = None, pixels=None, channels_last: bool = False) -> int:
        """Add one sample; returns its index. ``probs``: every class's probability ``(K,)``, or
        ``{class index: probability}`` of the top classes only (results files keep no more); ``pixels``:
        see ``thumbnail_jpeg``."""
        i = len(self.rows)
        if isinstance(probs, dict):
            probs = dict(sorted(probs.items(), key=lambda kv: -kv[1]))
            pred, prob = next(iter(probs.items()))
            pairs = [[int(k), round(float(p), 4)] for k, p in probs.items()]
        else:
            probs = probs.float()
            pred, prob = int(probs.argmax()), float(probs.max())
            top = probs.topk(min(ALL_PROBS, len(probs)))
            pairs = [round(float(p), 4) for p in probs] if len(probs) <= ALL_PROBS else [[int(k), round(float(p), 4)] for p, k in zip(top.values, top.indices)]
        thumb = None
        if pixels is not None:
            thumb = f"thumbs/{i:06d}.jpg"
            (self.out / thumb).write_bytes(thumbnail_jpeg(pixels, channels_last))
        self.rows.append([str(path), true, pred, round(prob, 4), pairs, thumb])
        if self.labelled:
            if not isinstance(probs, torch.Tensor):
                raise LstmimgError("a labelled report needs every class's probability")
            self.probs.append(probs)
        return i

    def add_batch(self, paths: Sequence[str | Path], probs: torch.Tensor, pixels: torch.Tensor | None = None, labels: Sequence[int] | None = None) -> None:
        """Add a batch of images at once: ``probs`` ``(B, K)``, ``pixels`` uint8 ``(B, C, H, W)`` (the
        model's input), ``labels`` their true classes. Their thumbnails go into one JPEG sheet (a grid,
        ``SHEET_COLUMNS`` wide), which costs a batch one encoding and one file instead of one a sample."""
        probs = probs.float()
        conf, pred = probs.max(1)
        if probs.shape[1] <= ALL_PROBS:
            kept = probs.mul(1e4).round().div(1e4).tolist()
        else:
            top = probs.topk(ALL_PROBS, dim=1)
            kept = [[[k, round(p, 4)] for p, k in zip(ps, ks)] for ps, ks in zip(top.values.tolist(), top.indices.tolist())]
        cells = self._sheet(pixels) if pixels is not None else [None] * len(paths)
        for n, path in enumerate(paths):
            self.rows.append([str(path), None if labels is None else int(labels[n]), int(pred[n]), round(float(conf[n]), 4), kept[n], cells[n]])
        if self.labelled:
            if labels is None:
                raise LstmimgError("a labelled report needs the true labels")
            self.probs.extend(probs)

    def _sheet(self, pixels: torch.Tensor) -> list[list]:
        """One JPEG of the batch's thumbnails; each sample's place in it ``[file, x, y, w, h, sheet w, sheet h]``."""
        from PIL import Image

        b, c, h, w = pixels.shape
        scale = min(1.0, THUMB_SIDE / max(h, w))
        th, tw = max(1, round(h * scale)), max(1, round(w * scale))
        cols = min(SHEET_COLUMNS, b)
        rows = -(-b // cols)
        grid = np.zeros((rows * th, cols * tw, 3), dtype=np.uint8)
        images = pixels[:, :3] if c >= 3 else pixels[:, :1].expand(-1, 3, -1, -1)
        if scale < 1:
            images = torch.nn.functional.interpolate(images.float(), size=(th, tw), mode="bilinear", antialias=True, align_corners=False).round().clamp(0, 255).byte()
        tiles = images.permute(0, 2, 3, 1).numpy()  # (B, th, tw, 3)
        for n in range(b):
            r, q = divmod(n, cols)
            grid[r * th : (r + 1) * th, q * tw : (q + 1) * tw] = tiles[n]
        name = f"thumbs/s{self.sheets:05d}.jpg"
        self.sheets += 1
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, "JPEG", quality=85)
        (self.out / name).write_bytes(buffer.getvalue())
        return [[name, (n % cols) * tw, (n // cols) * th, tw, th, cols * tw, rows * th] for n in range(b)]

    def skip(self, path: str | Path, reason: str) -> None:
        self.skipped.append([str(path), reason])

    def detail(self, i: int, **extra) -> None:
        """Attach extra detail to sample ``i`` (``picture``: a file inside the report folder; ``timeline``: windows)."""
        self.details.setdefault(i, {}).update(extra)

    def summary(self) -> dict:
        """The figures the page shows at its top (labelled: ``metrics``; else counts per predicted label)."""
        counts = [0] * len(self.classes)
        for row in self.rows:
            counts[row[2]] += 1
        out = {"samples": len(self.rows), "skipped": len(self.skipped), "predicted_counts": counts}
        if self.labelled and self.rows:
            out.update(metrics([r[1] for r in self.rows], torch.stack(self.probs), self.classes))
        return out

    def close(self, extra: dict | None = None) -> dict:
        """Write ``data.js``, ``index.html``, the page's script and style, ``predictions.csv``; returns
        ``{"index", "samples", "bytes"}`` (the folder's size on disk)."""
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        summary = self.summary()
        data = {"title": self.title, "kind": self.kind, "labelled": self.labelled, "scored": self.scored, "classes": self.classes,
                "columns": ["path", "true", "pred", "prob", "probs", "thumb"], "samples": self.rows,
                "skipped": self.skipped, "details": {str(k): v for k, v in self.details.items()}, "timelines": self.timelines, "summary": summary, **(extra or {})}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        atomic_write_text(self.out / "data.js", "window.LSTMIMG_REPORT = " + text + ";\n")
        for name in ("report.js", "report.css"):
            shutil.copyfile(ASSETS / name, self.out / name)
        env = Environment(loader=FileSystemLoader(ASSETS), autoescape=select_autoescape(["html", "j2"]))
        html = env.get_template("index.html.j2").render(title=self.title, scored=self.scored, samples=len(self.rows), kind=self.kind)
        atomic_write_text(self.out / "index.html", html)
        if self.predictions_csv:
            self._write_csv()
        size = sum(p.stat().st_size for p in self.out.rglob("*") if p.is_file())
        return {"index": str(self.out / "index.html"), "samples": len(self.rows), "bytes": size, **{k: summary[k] for k in ("accuracy", "macro_f1", "ece") if k in summary}}

    def _write_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "true", "predicted", "prob", "correct"] if self.labelled else ["path", "predicted", "prob"])
        for path, true, pred, prob, *_ in self.rows:
            if self.labelled:
                writer.writerow([path, self.classes[true], self.classes[pred], prob, int(true == pred)])
            else:
                writer.writerow([path, self.classes[pred], prob])
        atomic_write_text(self.out / "predictions.csv", buffer.getvalue())


EXPLAINED = 6  # image mistakes explained (occlusion heat map) in a labelled report: the most confident ones


def held_pictures(held, kind: str):
    """The thumbnails' pixels of the decoded split ``held``: its uint8 images ``(N, C, H, W)`` (the model's
    input) where it holds them, else a function giving sample ``i``'s ``(pixels, channels_last)``: a
    video's frames, or a picture of its file."""
    from lstmimg.engine.review.mistakes import thumbnail

    if getattr(held, "images", None) is not None and held.images.dtype == torch.uint8:
        return held.images  # the decoded split itself: ReportWriter.add_batch takes it 64 at a time
    if getattr(held, "videos", None) is not None:
        return lambda i: (held.videos[i], False)

    def from_file(i: int):
        pixels = thumbnail(kind, Path(held.paths[i]))
        return None if pixels is None else (pixels, True)

    return from_file


def labelled_report(out: str | Path, kind: str, classes: Sequence[str], paths: Sequence[str | Path], labels: torch.Tensor, probs: torch.Tensor, pictures,
                    title: str, scored: str, skipped: Sequence[tuple[str, str]] = (), ckpt=None, explained: int = EXPLAINED, overwrite: bool = False, device: str = "cpu",
                    clip_probs: Sequence[torch.Tensor] = ()) -> dict:
    """The report of labelled predictions ``probs`` ``(N, K)`` of ``paths`` (true ``labels`` ``(N,)``);
    ``pictures``: see ``held_pictures`` (images: thumbnails a sheet a batch); with ``ckpt`` (an image model), the ``explained`` most confident
    mistakes get the occlusion heat map of ``lstmimg explain``; ``clip_probs``: each video's clip
    probabilities ``(n, K)``, its timeline in the detail (with ``ckpt``, whose clip settings place them). Returns ``ReportWriter.close``'s figures."""
    writer = ReportWriter(out, kind, classes, title, labelled=True, overwrite=overwrite, scored=scored)
    if isinstance(pictures, torch.Tensor):
        for start in range(0, len(paths), 64):
            writer.add_batch(paths[start : start + 64], probs[start : start + 64], pictures[start : start + 64], labels[start : start + 64])
    else:
        for i, path in enumerate(paths):
            writer.add(path, probs[i], int(labels[i]), *(pictures(i) or (None,)))
    for path, reason in skipped:
        writer.skip(path, reason)
    if ckpt is not None and kind == "video" and clip_probs:
        held_timelines(writer, paths, pictures, clip_probs, ckpt.meta)
    if ckpt is not None and kind == "image" and explained and hasattr(ckpt.model, "prefix_logits"):
        from lstmimg.engine.review.mistakes import mistakes

        picked = [i for i, _, _ in mistakes(labels, probs, explained)]
        if picked:
            explain_into(writer, ckpt, picked, [Path(paths[i]) for i in picked], device)
    return writer.close()


def held_timelines(writer: ReportWriter, paths: Sequence[str | Path], pictures, clip_probs: Sequence[torch.Tensor], meta: dict) -> None:
    """Each held video's timeline from its clips (``clip_timeline``): ``pictures(i)`` gives its decoded
    frames ``(T, C, H, W)``, the thumbnails of the clips' first frames; the file's header its frame rate."""
    from lstmimg.config import clip_settings
    from lstmimg.data.clips import scored_frames
    from lstmimg.data.video_io import open_video

    clip_len, stride, _ = clip_settings(meta)
    for i, (path, probs) in enumerate(zip(paths, clip_probs)):
        got = pictures(i) if callable(pictures) else None
        video = got[0] if got is not None and not got[1] else None
        fps, count = None, 0
        try:
            cap, info = open_video(path)
            cap.release()
            fps, count = info.fps or None, info.frame_count or 0
        except LstmimgError:  # gone since it was scored: its clips are still placed, in frames
            pass
        frames = len(video) if video is not None else count
        if frames:
            first = video[[c[0] for c in scored_frames(frames, clip_len, stride, len(probs))]] if video is not None else None
            clip_timeline(writer, i, probs, frames, fps, clip_len, stride, first)


def explain_into(writer: ReportWriter, ckpt, indices: Sequence[int], paths: Sequence[Path], device: str = "cpu") -> None:
    """The occlusion heat map of each of ``paths`` (samples ``indices``), as a picture in the report folder."""
    from lstmimg.engine.review.explanations import explain

    try:
        results = explain(paths, ckpt, device=device)
    except LstmimgError:  # a file gone since it was scored: the report keeps its other parts
        return
    (writer.out / "explain").mkdir(exist_ok=True)
    for i, result in zip(indices, results):
        name = f"explain/{i:06d}.png"
        (writer.out / name).write_bytes(heat_picture(result["image"], np.asarray(result["heatmap"], dtype=np.float32)))
        writer.detail(i, picture=name)


def heat_picture(image: torch.Tensor, heat: np.ndarray, side: int = 192) -> bytes:
    """A PNG of an image ``(C, H, W)`` (0..1) beside its occlusion heat map ``(H, W)`` laid over it,
    with the colour scale below (from no drop to the largest drop of the predicted class's probability)."""
    from PIL import Image, ImageDraw

    rgb = (image[:3].expand(3, -1, -1) if image.shape[0] == 1 else image[:3]).permute(1, 2, 0).numpy()
    h, w = heat.shape
    scale = max(1, side // max(h, w))
    top = max(float(heat.max()), 1e-6)
    t = np.clip(heat / top, 0, 1)[..., None]
    colour = np.concatenate([np.clip(2 * t, 0, 1), np.clip(2 * t - 1, 0, 1), np.zeros_like(t)], axis=2)  # black -> red -> yellow
    overlay = 0.35 * rgb.mean(2, keepdims=True) + 0.65 * colour
    pair = np.concatenate([rgb, np.ones((h, max(1, w // 8), 3)), overlay], axis=1)
    img = Image.fromarray((pair * 255).astype(np.uint8)).resize((pair.shape[1] * scale, h * scale), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (img.width, img.height + 30), "white")
    canvas.paste(img, (0, 0))
    bar = np.linspace(0, 1, 120)[None, :, None]
    strip = np.concatenate([np.clip(2 * bar, 0, 1), np.clip(2 * bar - 1, 0, 1), np.zeros_like(bar)], axis=2).repeat(8, axis=0)
    canvas.paste(Image.fromarray((strip * 255).astype(np.uint8)), (img.width - 120, img.height + 4))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, img.height + 8), "image | occlusion map", fill="black")
    draw.text((img.width - 120, img.height + 14), f"drop 0 .. {top:.3f}", fill="black")
    return _png(canvas)


def _png(img) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def results_report(results: str | Path, out: str | Path, overwrite: bool = False) -> dict:
    """A report from ``predict --jsonl`` results, without the model: each row's top classes, a thumbnail
    of its file, and its error row listed as not classified. The classes are those the rows name."""
    from lstmimg.data.folders import VIDEO_EXTENSIONS
    from lstmimg.engine.review.mistakes import thumbnail

    results = Path(results)
    rows, n = [], 0
    try:
        with results.open(encoding="utf-8") as f:
            for line in f:
                n += 1  # the line a bad one is named by
                if line.strip():
                    rows.append(json.loads(line))
    except OSError as err:
        raise LstmimgError(f"{results}: cannot read ({err.strerror})") from None
    except (ValueError, UnicodeDecodeError):
        raise LstmimgError(f"{results}: line {n} is not JSON (a --jsonl file of lstmimg predict is)") from None
    good = [r for r in rows if isinstance(r, dict) and "top" in r and "path" in r]
    bad = [r for r in rows if isinstance(r, dict) and "error" in r]
    if not good and not bad or len(good) + len(bad) < len(rows):
        raise LstmimgError(f"{results}: not the --jsonl results of lstmimg predict (each line a path with its top classes, or its error)")
    classes = sorted({t["label"] for r in good for t in r["top"]})
    index = {c: k for k, c in enumerate(classes)}
    kind = "video" if good and sum(Path(r["path"]).suffix.lower() in VIDEO_EXTENSIONS for r in good) > len(good) / 2 else "image"
    writer = ReportWriter(out, kind, classes, f"lstmimg predict: {results.name}", labelled=False, overwrite=overwrite, scored=f"Results: {results}")
    for r in good:
        pixels = thumbnail(kind, Path(r["path"]), THUMB_SIDE)
        writer.add(r["path"], {index[t["label"]]: t["prob"] for t in r["top"]}, pixels=pixels, channels_last=True)
    for r in bad:
        writer.skip(r["path"], r["error"])
    return writer.close()


TIMELINE_THUMBS = 240  # frames shown per video timeline at most (one per window, spread over the video), besides its keyframes


def add_timeline(writer: ReportWriter, result: dict, size: tuple[int, int] = (THUMB_SIDE, THUMB_SIDE)) -> None:
    """Add one source of ``lstmimg video`` (``classify_sources``' result): a sample for the gallery and
    its timeline (windows, segments, keyframes at the label changes, a frame per window up to
    ``TIMELINE_THUMBS``). Frames are read again from a file; a live source has no frames to show."""
    from lstmimg.data.video_io import is_live, read_frames

    classes = writer.classes
    windows, segments = result["windows"], result["segments"]
    starts = [w["start"] for w in windows]
    shown = sorted(set(np.linspace(0, len(windows) - 1, min(TIMELINE_THUMBS, len(windows))).round().astype(int).tolist())) if windows else []
    changes = sorted({min(len(starts) - 1, bisect.bisect_left(starts, s["start"] - 1e-3)) for s in segments})  # the window each segment starts with
    frames: dict[int, str] = {}  # window index -> its first frame's thumbnail
    first = None
    if windows and not is_live(result["path"]) and result.get("fps"):
        index_of = lambda t: max(0, int(round(t * result["fps"])))  # noqa: E731  (seconds -> the source's frame number)
        wanted = sorted({index_of(starts[j]) for j in set(shown) | set(changes)})
        try:
            pixels = read_frames(result["path"], lambda count: [min(i, count - 1) for i in wanted], size)
        except LstmimgError:
            pixels = None
        if pixels is not None:
            by_index = dict(zip(wanted, pixels))
            source = len(writer.timelines)
            for j in sorted(set(shown) | set(changes)):
                name = f"thumbs/t{source:03d}_{j:05d}.jpg"
                (writer.out / name).write_bytes(thumbnail_jpeg(by_index[index_of(starts[j])], channels_last=True))
                frames[j] = name
            first = by_index[index_of(starts[0])]
    index = {c: k for k, c in enumerate(classes)}
    i = writer.add(result["path"], {index[t["label"]]: t["prob"] for t in result["top"]}, pixels=first, channels_last=True)
    writer.timelines.append({
        "sample": i, "source": result["path"], "label": result["label"], "prob": result["prob"], "fps": result.get("fps") or 0,
        "windows": [[round(w["start"], 3), round(w["end"], 3), index[w["label"]], w["prob"], w["probs"]] for w in windows],
        "segments": [[round(s["start"], 3), round(s["end"], 3), index[s["label"]], s["prob"]] for s in segments],
        "frames": {str(j): name for j, name in frames.items()}, "keyframes": [j for j in changes if j in frames],
    })


def clip_timeline(writer: ReportWriter, i: int, clip_probs: torch.Tensor, frames: int, fps: float | None, clip_len: int, stride: int, first_frames=None) -> None:
    """Sample ``i``'s timeline from the clips it was scored by (``predict``, ``eval``, a run's report):
    ``clip_probs`` ``(n, K)`` of its ``n`` evenly spaced clips (``scored_frames`` over ``frames``), each a
    window of the band from its first frame to its last, in seconds where ``fps`` is known (else in
    frames); ``first_frames``: each clip's first frame ``(C, H, W)`` uint8, the window's thumbnail. Costs
    no model call: the clips were read anyway."""
    from lstmimg.data.clips import scored_frames

    clips = scored_frames(frames, clip_len, stride, len(clip_probs))
    per = 1 / fps if fps else 1.0
    windows, segments = [], []
    for clip, probs in zip(clips, clip_probs.tolist()):
        k = max(range(len(probs)), key=probs.__getitem__)
        windows.append([round(clip[0] * per, 3), round((clip[-1] + 1) * per, 3), k, round(probs[k], 5), [round(p, 5) for p in probs]])
    for j, w in enumerate(windows):  # runs of clips with the same label, their mean probability
        if segments and segments[-1][2] == w[2]:
            seg = segments[-1]
            seg[1], seg[4] = w[1], seg[4] + [w[3]]
        else:
            segments.append([w[0], w[1], w[2], None, [w[3]], j])
    names = {}
    if first_frames is not None:
        for j, pixels in enumerate(first_frames):
            names[str(j)] = f"thumbs/c{i:06d}_{j:03d}.jpg"
            (writer.out / names[str(j)]).write_bytes(thumbnail_jpeg(pixels[:3]))
    keyframes = [seg[5] for seg in segments] if names else []
    writer.detail(i, timeline={"unit": "s" if fps else "frames", "fps": fps or 0,
                               "windows": windows, "segments": [[a, b, k, round(sum(ps) / len(ps), 5)] for a, b, k, _, ps, _ in segments],
                               "frames": names, "keyframes": keyframes})

