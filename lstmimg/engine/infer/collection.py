"""Classifying a collection: many image or video files, results handed out batch by batch as they come.

Files are decoded by DataLoader worker processes (``data.inputs``), ahead of the model and in order;
the model sees batches of images, or the clips of several videos at once (a video scored exactly as
``lstmimg eval`` scores it: its ``val_clips`` clips, softmax averaged). Nothing is held beyond the
batches in flight, so memory does not grow with the number of files. ``predict`` (the CLI's and the
library's) and sharded runs (``engine.infer.outputs``) consume ``classify_files``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmimg.checkpoint import Checkpoint
from lstmimg.config import clip_settings
from lstmimg.data.inputs import Decoded, ImageInputs, VideoInputs, collate_images, kind_of
from lstmimg.data.loaders import default_workers, start_worker
from lstmimg.engine.infer.inference import Predictor, prefetch
from lstmimg.errors import LstmimgError, article


@dataclass
class Batch:
    """What one model call gave: ``results`` in input order, ``{"path", "label", "prob", "top"}`` (videos
    also ``"frames"``, ``"seconds"``), and ``skipped``: ``(path, reason)`` for each unreadable file."""

    results: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    probs: torch.Tensor | None = None  # (B, K): every class's probability, a row per result
    pixels: torch.Tensor | list[torch.Tensor] | None = None  # with pictures=True: what the model read: images (B, C, H, W), or each video's middle clip (T, C, H, W)
    clips: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # videos, with pictures=True: each one's clip probabilities (n, K) and clips' first frames (n, C, H, W)


def split_kinds(paths: Sequence[Path], kind: str) -> tuple[list[Path], list[tuple[str, str]]]:
    """The paths a model of ``kind`` takes, and ``(path, reason)`` for those of the other kind."""
    mine, other = [], []
    for path in paths:
        if kind_of(path, kind) == kind:
            mine.append(path)
        else:
            theirs = "video" if kind == "image" else "image"
            other.append((str(path), f"{article(theirs)} {theirs}; the model is {article(kind)} {kind} model"))
    return mine, other


def likely_kind(paths: Sequence[Path]) -> str:
    """``video`` when most of ``paths`` are videos, else ``image``: the kind of the default model."""
    videos = sum(kind_of(p, "image") == "video" for p in paths)
    return "video" if videos > len(paths) / 2 else "image"


def classify_files(paths: Sequence[Path], ckpt: Checkpoint, topk: int = 5, batch_size: int = 64, device: str | torch.device = "auto",
                   workers: int | None = None, pictures: bool = False) -> Iterator[Batch]:
    """Classify ``paths`` (all of ``ckpt``'s kind: see ``split_kinds``) with ``ckpt``'s model, one
    ``Batch`` a model call, in input order. ``batch_size``: images, or video clips, per call; ``workers``:
    decoding processes (0: a thread of this process; None: one per core, up to 4); ``pictures``: each
    batch also hands out the decoded pixels (for the report's thumbnails, made from what was decoded anyway)."""
    if batch_size < 1:
        raise LstmimgError(f"--batch-size must be >= 1, got {batch_size}")
    if workers is not None and workers < 0:
        raise LstmimgError(f"--workers must be >= 0, got {workers}")
    predictor = Predictor.from_checkpoint(ckpt, device)
    k = max(1, min(topk, len(ckpt.classes)))

    def results(paths: Sequence[str | Path], probs: torch.Tensor) -> list[dict]:
        """One result per row of ``probs`` ``(B, K)``: the top k classes, found for the batch at once."""
        top_p, top_i = probs.topk(k, dim=1)
        out = []
        for path, ps, ids in zip(paths, top_p.tolist(), top_i.tolist()):
            top = [{"label": ckpt.classes[i], "prob": round(p, 5)} for p, i in zip(ps, ids)]
            out.append({"path": str(path), "label": top[0]["label"], "prob": top[0]["prob"], "top": top})
        return out

    c = ckpt.config
    if ckpt.kind == "image":
        for images in _decoded(ImageInputs(paths, c.in_channels, c.img_size, c.fit), batch_size, workers, collate_images):
            batch = Batch(skipped=images.errors)
            if images.x is not None:
                batch.probs = predictor.probs(images.x)
                batch.results = results(images.paths, batch.probs)
                batch.pixels = images.x if pictures else None
            yield batch
        return
    videos = VideoInputs(paths, c.img_size, *clip_settings(ckpt.meta), c.motion)
    pending: list[Decoded] = []
    skipped: list[tuple[str, str]] = []

    def run() -> Batch:
        probs = predictor.probs(torch.cat([d.x for d in pending]))  # (clips of every pending video, K)
        batch = Batch(skipped=list(skipped))
        per_video = torch.stack([p.mean(0) for p in probs.split([len(d.x) for d in pending])])  # softmax averaged over each video's clips
        batch.probs, batch.pixels = per_video, [d.x[len(d.x) // 2] for d in pending] if pictures else None
        if pictures:
            batch.clips = [(p, d.x[:, 0]) for p, d in zip(probs.split([len(d.x) for d in pending]), pending)]
        batch.results = [{**r, "frames": d.frames, "seconds": d.seconds} for r, d in zip(results([d.path for d in pending], per_video), pending)]
        pending.clear()
        skipped.clear()
        return batch

    for items in _decoded(videos, 1, workers, start=start_worker):
        for d in items:
            if d.x is None:
                skipped.append((str(d.path), d.error))
            else:
                pending.append(d)
        if sum(len(d.x) for d in pending) >= batch_size:
            yield run()
    if pending:
        yield run()
    elif skipped:
        yield Batch(skipped=list(skipped))


def _decoded(dataset: torch.utils.data.Dataset, batch_size: int, workers: int | None, collate: Callable = list, start: Callable | None = None) -> Iterator:
    """``dataset``'s items, ``batch_size`` at a time and in order (joined by ``collate``), decoded by
    worker processes (0: one thread here) at most two batches a worker ahead; ``start`` runs in each
    worker as it starts (OpenCV's settings, for videos)."""
    if len(dataset) == 0:
        return
    workers = default_workers() if workers is None else workers
    batches = -(-len(dataset) // batch_size)
    workers = min(workers, batches) if batches > 1 else 0  # no worker without a batch to decode; one batch has nothing to overlap with, and starting a process costs more than it decodes
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                                         prefetch_factor=2 if workers else None, worker_init_fn=start if workers else None)
    yield from (prefetch(loader) if workers == 0 else loader)


def predict(
    paths: Sequence[str | Path],
    model: str | Path | Checkpoint | None = None,
    topk: int = 5,
    batch_size: int = 64,
    device: str = "auto",
    workers: int | None = None,
) -> tuple[list[dict], list[str]]:
    """Classify image or video files with an image or video model (default: the newest run of the
    kind most of ``paths`` are, else the bundled one). Returns ``(results, errors)``: one result per
    readable file of the model's kind, ``{"path", "label", "prob", "top": [{"label", "prob"}, ...]}``
    (videos also ``"frames"`` and ``"seconds"``), and one message per file that was not classified. For
    collections too large to hold, iterate ``classify_files`` instead."""
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.runs import resolve_model

    paths = [Path(p) for p in paths]
    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(resolve_model(model, likely_kind(paths))[0])
    mine, other = split_kinds(paths, ckpt.kind)
    results, errors = [], [f"{path}: {why}" for path, why in other]
    for batch in classify_files(mine, ckpt, topk, batch_size, device, workers):
        results += batch.results
        errors += [message for _, message in batch.skipped]
    return results, errors


def classify_to_files(files: Sequence[Path], ckpt: Checkpoint, targets: Sequence[tuple[Path | None, str]], resume: bool = False,
                      overwrite: bool = False, topk: int = 5, batch_size: int = 64, device: str = "auto", workers: int | None = None,
                      on_start: Callable[[int, int], None] | None = None, on_batch: Callable[[Batch], None] | None = None, report=None) -> dict:
    """Classify ``files`` (all of ``ckpt``'s kind) into result files as the results come.

    ``targets``: ``(path, format)`` pairs, format ``jsonl`` or ``csv``, path None for standard output.
    ``resume`` skips the inputs every target already holds; ``overwrite`` replaces the targets. Under
    torchrun (``WORLD_SIZE`` > 1) each process classifies its fixed share of ``files`` into its own part
    of each target, and the first merges the parts into the targets once all are done. ``on_start(todo,
    done)``: the number of inputs this process will classify and how many it skips as done;
    ``on_batch``: each ``Batch``. ``overwrite`` writes the new results beside the old file and replaces it
    only once they are complete, so a run that fails keeps the old one. ``report``: a ``ReportWriter``
    (engine/review/report.py) fed every result and unreadable input, its thumbnails made from the pixels
    decoded for the model, and closed at the end (one process, no ``resume``). Returns ``{"rank", "world",
    "classified", "already_done", "skipped", "skipped_all"}`` (``skipped_all``: over every process; with
    ``report``, also ``"report"``: what it wrote).
    """
    from lstmimg.engine.infer import outputs as O
    from lstmimg.engine.infer.loading import resolve_device
    from lstmimg.engine.train import distributed

    d, dev = distributed.setup(resolve_device(device), timeout_s=7 * 24 * 3600)  # a share may take long; the others wait at the end
    files = [Path(f) for f in files]
    writers: list[O.ResultFile] = []
    try:
        if d.active and any(path is None for path, _ in targets):
            raise LstmimgError("several processes write to files, not to standard output: give --jsonl FILE or --csv FILE")
        for path, fmt in targets:
            if path is not None:
                O.check_output(path, f"--{fmt}", resume, overwrite)
        distributed.barrier(d)  # every process has checked before any writes
        done: list[set[str]] = []
        for path, fmt in targets:
            if path is not None and overwrite and d.main:
                O.remove_parts(path)  # an earlier run's parts; the file itself stays until the new results replace it whole
            done.append(O.done_paths(path, fmt) if path is not None and resume else set())
        distributed.barrier(d)  # every process has read what is done before any writes
        in_parts = d.active or overwrite  # results go to parts, merged into the file at the end
        for (path, fmt), held in zip(targets, done):
            writers.append(O.ResultFile(O.part_path(path, d.rank, d.world) if path is not None and in_parts else path, fmt, ckpt.kind, resume and not overwrite, held))
        mine = O.share(files, d.rank, d.world) if d.active else files
        todo = [f for f in mine if not writers or any(str(f) not in w.done for w in writers)]
        if on_start:
            on_start(len(todo), len(mine) - len(todo))
        skipped = 0
        if report is not None and (d.active or resume):
            raise LstmimgError("--report is written by one process from the start; with --devices or --resume, build it afterwards from the results: lstmimg report FILE.jsonl")
        for batch in classify_files(todo, ckpt, topk, batch_size, dev, workers, pictures=report is not None):
            if report is not None and ckpt.kind == "image" and batch.results:
                report.add_batch([r["path"] for r in batch.results], batch.probs, batch.pixels)
            elif report is not None:
                from lstmimg.config import clip_settings
                from lstmimg.engine.review.report import clip_timeline

                clip_len, stride, _ = clip_settings(ckpt.meta)
                for i, result in enumerate(batch.results):
                    n = report.add(result["path"], batch.probs[i], pixels=batch.pixels[i])
                    fps = result["frames"] / result["seconds"] if result.get("seconds") else None
                    clip_timeline(report, n, *batch.clips[i][:1], result["frames"], fps, clip_len, stride, batch.clips[i][1])
            if report is not None:
                for path, why in batch.skipped:
                    report.skip(path, why)
            for writer in writers:
                writer.write(batch.results + [{"path": path, "error": why} for path, why in batch.skipped])  # an unreadable input has its row too
            skipped += len(batch.skipped)
            if on_batch:
                on_batch(batch)
        for writer in writers:
            writer.close()
        total_skipped = int(distributed.sum_all([float(skipped)], d, dev)[0])  # every process's unreadable files, for the exit code
        if d.main:
            for path, fmt in targets:
                if path is not None and (in_parts or O.parts_of(path)):
                    O.merge_parts(path, fmt, ckpt.kind, [str(f) for f in files], keep_existing=not overwrite)
        distributed.barrier(d)
        summary = {"rank": d.rank, "world": d.world, "classified": len(todo) - skipped, "already_done": len(mine) - len(todo), "skipped": skipped, "skipped_all": total_skipped}
        if report is not None:
            summary["report"] = report.close()
        return summary
    finally:
        for writer in writers:
            writer.close()
        distributed.teardown(d)
