"""Scoring: a model's class probabilities on a split of a run's data (validation, the final report), and
``evaluate``, a model on a labelled folder; accuracy, per-class figures and the confusion matrix."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from lstmimg.config import TrainConfig, clip_settings
from lstmimg.data.dataset import TrainingData
from lstmimg.data.folders import detect_kind, labelled_folder
from lstmimg.engine.infer.inference import Predictor, image_probs, video_probs
from lstmimg.engine.infer.loading import load_checkpoint, resolve_device
from lstmimg.engine.review.metrics import classification_report
from lstmimg.errors import LstmimgError
from lstmimg.runs import resolve_model


def evaluate(data: str | Path, model: str | Path | None = None, split: str | None = None, device: str = "auto", out: str | Path | None = None) -> dict:
    """Accuracy, per-class precision / recall / F1 and the confusion matrix of a model on labelled
    images or videos (videos scored as in the run's validation: its clip length, stride and clips per
    video). With ``out``, also writes ``report.json``, ``confusion_matrix.png`` and ``mistakes.png`` (the
    samples it gets wrong, most confident first) to that folder, and the report counts ``mistakes``.

    ``data`` is a folder of class folders, or a root with ``train/ val/ test/`` (then ``split``, by
    default ``test`` if present, else ``val``). ``model`` is a run folder or checkpoint (default: the
    newest run of the data's kind, else the bundled model).
    """
    if out is not None:
        check_report_folder(Path(out))
    kind = detect_kind(data)
    ckpt = load_checkpoint(resolve_model(model, kind)[0], kind=kind)
    run = run_splits(ckpt.path, kind)
    if split == "val" and not (Path(data) / "val").is_dir() and run is not None and same_folder(run["root"], data):
        files, scored, name = run["val"], f"the run's val split ({len(run['val'].paths)} files held out of {run['root']})", "val"
    else:
        files = labelled_folder(data, kind, ckpt.classes, split)
        scored, name = scored_split(data, split), split or ("test" if (Path(data) / "test").is_dir() else "val" if (Path(data) / "train").is_dir() else "eval")
    overlap = 0
    if run is not None:
        trained = {os.path.realpath(p) for p in run["train"].paths}
        overlap = sum(os.path.realpath(p) in trained for p in files.paths)
    folder = files.paths[0].parent.parent if files.paths else Path(data)
    clip_probs: list = []
    labelled, probs, extra = score_files(ckpt, files, folder, device, clip_probs if out is not None else None)
    report = classification_report(labelled.sets["eval"].labels, probs.argmax(1), ckpt.classes)
    result = {"data": str(folder), "model": str(ckpt.path), "kind": kind, "split": scored, "split_name": name, "overlap_with_training": overlap, **report, **extra,
              "skipped": labelled.skipped, "errors": labelled.errors}
    if out is not None:
        result["mistakes"] = write_report(result, labelled, probs, Path(out), ckpt, device, clip_probs)
    return result


def score_files(ckpt, files, folder: Path, device: str = "auto", clips_out: list | None = None) -> tuple[TrainingData, torch.Tensor, dict]:
    """Decode labelled ``files`` (a ``Split``) as the model's training read them and score them:
    the data (its ``eval`` set), probabilities ``(N, K)`` and extra figures (videos: clips per video;
    ``clips_out`` as ``score_split``)."""
    clip_len, stride, clips = clip_settings(ckpt.meta)
    cfg = TrainConfig(clip_len=clip_len, frame_stride=stride, val_clips=clips)
    c = ckpt.config
    labelled = TrainingData(folder, ckpt.kind, ckpt.classes, {"eval": files}, c.in_channels, c.img_size, c.img_size, c.motion, c.fit, "memory")  # the model's input, as in training
    labelled.load(cfg)
    labelled.mean, labelled.std = ckpt.mean, ckpt.std
    probs, extra = score_split(ckpt.model, labelled, "eval", cfg, resolve_device(device), clips_out)
    if ckpt.kind == "video":
        extra["clips_per_video"] = cfg.val_clips
    return labelled, probs, extra


def scored_split(data: str | Path, split: str | None) -> str:
    """Which files of ``data`` ``labelled_folder`` scores, in words."""
    root = Path(data)
    if split is None and (root / "train").is_dir():
        split = "test" if (root / "test").is_dir() else "val"
    return f"{split}/ of {root}" if split else f"every file under {root}"


def same_folder(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def run_splits(checkpoint: Path, kind: str) -> dict | None:
    """The train and val files of the run ``checkpoint`` belongs to, as that run split them (its data
    root, ``--val-split`` and seed, from its ``config.json``), with ``root``; None when the checkpoint is
    not in a run folder, or its data is gone."""
    from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, split_folder

    try:
        config = json.loads((Path(checkpoint).parent / "config.json").read_text(encoding="utf-8"))
        train = config["train"]
        splits = split_folder(config["data"], train.get("val_split", TrainConfig.val_split), train.get("seed", 0), VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS)
    except (OSError, ValueError, KeyError, TypeError, LstmimgError):
        return None
    return {"root": config["data"], "train": splits["train"], "val": splits["val"]}


REPORT_FILES = ("report.json", "confusion_matrix.png", "mistakes.png", "index.html")


def check_report_folder(out: Path) -> None:
    """Refuse a folder that holds one of the report's files already, or is a file."""
    if out.exists() and not out.is_dir():
        raise LstmimgError(f"{out}: exists and is not a folder; choose another --out")
    for name in REPORT_FILES:
        if (out / name).exists():
            raise LstmimgError(f"{out / name}: exists; choose another --out (nothing was replaced)")


def write_report(report: dict, labelled: TrainingData, probs: torch.Tensor, out: Path, ckpt=None, device: str = "cpu", clip_probs: Sequence[torch.Tensor] = ()) -> int:
    """``report.json``, ``confusion_matrix.png``, ``mistakes.png`` and the report page (``index.html``,
    engine/review/report.py) of an evaluation in folder ``out`` (made if needed); returns how many samples were
    wrong. A folder that holds one of them already is refused: nothing there is replaced."""
    from lstmimg.engine.review.mistakes import write_mistakes
    from lstmimg.engine.review.plots import plot_confusion
    from lstmimg.files import write_json

    check_report_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise LstmimgError(f"{out}: cannot create the folder ({err.strerror})") from None
    held = labelled.sets["eval"]
    what = report.get("split_name", "eval")  # the pictures say what was scored
    wrong = write_mistakes(labelled.kind, held.paths, held.labels, probs, report["classes"], out / "mistakes.png", what)
    plot_confusion(report["confusion_matrix"], report["classes"], out / "confusion_matrix.png", what)
    from lstmimg.engine.review.report import held_pictures, labelled_report

    page = labelled_report(out, labelled.kind, report["classes"], held.paths, held.labels, probs, held_pictures(held, labelled.kind),
                           f"lstmimg eval: {Path(report['model']).parent.name}/{Path(report['model']).name} on {report['data']}", f"Scored: {report['split']}",
                           list(zip(map(str, labelled.skipped), labelled.errors)), ckpt, device=device, clip_probs=clip_probs)
    write_json(out / "report.json", {**report, "mistakes": wrong, "page": {k: page[k] for k in ("index", "bytes")}})
    return wrong


def score_split(net: torch.nn.Module, data: TrainingData, split: str, cfg: TrainConfig, device: torch.device, clips_out: list | None = None) -> tuple[torch.Tensor, dict]:
    """Class probabilities ``(N, K)`` of ``net`` for every sample of ``data``'s ``split``, through the one
    inference path, and extra metrics. Videos: probabilities from ``val_clips`` evenly spaced clips per
    video, and the clip accuracy; ``clips_out`` (a list) receives each video's clip probabilities ``(n, K)``."""
    predictor = Predictor(net, data.mean, data.std, device, data.features)
    held = data.sets[split]
    if data.kind == "image":
        return image_probs(predictor, held.images, 256), {}
    shuffler = torch.Generator().manual_seed(cfg.seed) if cfg.shuffle_frames else None
    probs, per_video = video_probs(predictor, held.videos, cfg.clip_len, cfg.frame_stride, cfg.val_clips, 64, shuffler)
    if clips_out is not None:
        clips_out[:] = per_video
    hits = sum(int((p.argmax(1) == label).sum()) for p, label in zip(per_video, held.labels.tolist()))
    return probs, {"clip_accuracy": hits / max(1, sum(len(p) for p in per_video))}


def run_report(run: str | Path, overwrite: bool = False, device: str = "auto") -> dict:
    """(Re)build a run folder's ``report/``: its best checkpoint on the val files the run held out."""
    from lstmimg.engine.review.report import held_pictures, labelled_report

    ckpt = load_checkpoint(resolve_model(run, None)[0])
    splits = run_splits(ckpt.path, ckpt.kind)
    if splits is None:
        raise LstmimgError(f"{run}: not a run folder whose data is still there (its config.json names the data folder)")
    val = splits["val"]
    clip_probs: list = []
    labelled, probs, _ = score_files(ckpt, val, Path(splits["root"]), device, clip_probs)
    held = labelled.sets["eval"]
    scored = f"Scored: the val split of {splits['root']} ({len(held.paths)} files), by {ckpt.path.name}"
    return labelled_report(ckpt.path.parent / "report", ckpt.kind, ckpt.classes, held.paths, held.labels, probs, held_pictures(held, ckpt.kind),
                           f"lstmimg run {ckpt.path.parent.name}", scored, list(zip(map(str, labelled.skipped), labelled.errors)), ckpt, overwrite=overwrite, device=device,
                           clip_probs=clip_probs)
