"""fit / evaluate / predict: plain loops over in-memory image tensors.

The library never prints: progress goes to an optional ``callback(event, info)`` with events
``"load"``, ``"start"``, ``"step"``, ``"epoch"`` and ``"end"`` (see ``fit``), so the CLI can draw bars
and a notebook can ignore them.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lstmimg import data as D
from lstmimg.checkpoint import Checkpoint, atomic_write_text, load_checkpoint, new_run_dir, resolve_model, save_checkpoint, write_json
from lstmimg.config import DEFAULT_MODELS, ModelConfig, TrainConfig
from lstmimg.distributed import any_all, sum_all
from lstmimg.distributed import setup as dist_setup
from lstmimg.distributed import teardown as dist_teardown
from lstmimg.errors import LstmimgError, article
from lstmimg.models import build_model, get_model_spec
from lstmimg.tasks import ImageTask, VideoTask, labelled_folder, make_task
from lstmimg.training import (
    EpochProgress,
    NonFiniteLoss,
    StopSignals,
    TrainingInterrupted,
    TrainProgress,
    capture_state,
    read_resume,
    restore_state,
    versions,
)

Callback = Callable[[str, dict], None]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LstmimgError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LstmimgError("--device mps: Apple MPS is not available here (try --device cpu)")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """LR factor per batch step: warm-up over the first ``cfg.warmup`` of the steps, then decay.

    - ``onecycle``: cosine rise from lr/25 to lr, then cosine fall to ~0 (the one-cycle policy);
    - ``cosine``: linear rise from ~0 to lr, then cosine fall to 0;
    - ``none``: linear warm-up, then constant.
    """
    warm = max(1, int(cfg.warmup * total_steps)) if cfg.warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            if cfg.schedule == "onecycle":
                start = 1 / 25
                return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / warm))
            return (step + 1) / warm
        if cfg.schedule == "none":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, mean, std, device, batch_size: int = 256) -> torch.Tensor:
    """Logits ``(N, K)`` for uint8 images ``(N, C, H, W)``, in eval mode, batched."""
    model.eval()
    out = [model(D.normalize(images[i : i + batch_size].to(device), mean, std)).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def classification_report(targets: torch.Tensor, preds: torch.Tensor, classes: Sequence[str]) -> dict:
    """Accuracy, per-class precision / recall / F1 / support and the confusion matrix (rows: truth)."""
    k = len(classes)
    cm = torch.bincount(targets * k + preds, minlength=k * k).view(k, k)
    tp = cm.diag().float()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    per_class = [
        {"class": c, "precision": round(precision[i].item(), 4), "recall": round(recall[i].item(), 4), "f1": round(f1[i].item(), 4), "support": int(cm[i].sum())}
        for i, c in enumerate(classes)
    ]
    accuracy = (tp.sum() / max(1, len(targets))).item()
    return {"accuracy": round(accuracy, 4), "samples": len(targets), "classes": list(classes), "per_class": per_class, "confusion_matrix": cm.tolist()}


def fit(
    data: str | Path | None = None,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    out: str | Path | None = None,
    callback: Callback | None = None,
    resume: str | Path | None = None,
    exist_ok: bool = False,
) -> dict:
    """Train a model on an image or video folder and write a run folder; returns the run's summary.

    ``data`` is a class-folder root (``train/`` + ``val/``, or class folders only) of images or of
    videos. ``model`` defaults to the default model for that kind of data (``DEFAULT_MODELS``), ``train``
    to ``TrainConfig()``; the model's channels, image size and class count are filled in from the data.
    ``out`` is the run folder (default: the next free ``runs/train/exp*``; an existing non-empty one
    only with ``exist_ok``). The summary dict is also written to ``summary.json``.

    ``resume`` continues the run in that folder from its ``last.pt``: data, model and training config
    come from the run's ``config.json``, and model, optimizer, LR schedule, epoch, step and RNG states
    from the checkpoint, so the run ends as it would have without the interruption (CPU, same seed).
    SIGINT / SIGTERM stop training after the current step, save ``last.pt`` and raise
    ``TrainingInterrupted``.
    """
    resumed = None
    if resume is not None:
        data, model, train, resumed = read_resume(resume)
        out, exist_ok = resume, True
    if data is None:
        raise LstmimgError("no DATA folder given")
    cfg = train or TrainConfig()
    emit = callback or (lambda event, info: None)
    task = make_task(data, cfg)
    model_cfg = model or ModelConfig(name=DEFAULT_MODELS[task.kind])
    spec = get_model_spec(model_cfg.name)
    if spec.kind != task.kind:
        raise LstmimgError(f"{data}: holds {task.kind}s, but model {model_cfg.name!r} is {article(spec.kind)} {spec.kind} model (try --model {DEFAULT_MODELS[task.kind]})")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    d, device = dist_setup(resolve_device(cfg.device))
    if not d.main:  # only rank 0 prints and writes
        emit = lambda event, info: None  # noqa: E731
    model_cfg = model_cfg.replace(in_channels=task.channels, img_size=task.size, num_classes=len(task.classes))
    net = build_model(model_cfg).to(device)  # before decoding: a model that cannot be built fails at once
    run = new_run_dir(out, exist_ok=exist_ok) if d.main else None
    if d.active:  # every process learns rank 0's run folder
        shared = [str(run)]
        torch.distributed.broadcast_object_list(shared, src=0)
        run = Path(shared[0])
    try:
        task.load(lambda split, done, total: emit("load", {"split": split, "done": done, "total": total}))
    except BaseException:
        if d.main and not any(run.iterdir()):
            run.rmdir()
        raise
    classes, mean, std = task.classes, task.mean, task.std

    if resumed is None and d.main:
        write_json(run / "config.json", {"data": str(Path(data).resolve()), "kind": task.kind, "model": model_cfg.to_dict(), "train": cfg.to_dict(), "versions": versions()})
    n_train = task.size_of("train")
    n_local = n_train // d.world  # this process's share of every epoch
    steps_per_epoch = max(1, n_local // cfg.batch_size + (n_local % cfg.batch_size > 1))
    optimizer = make_optimizer(net, cfg)
    schedule = make_schedule(optimizer, cfg, cfg.epochs * steps_per_epoch)
    weight = None
    if cfg.class_weights == "auto":
        counts = torch.bincount(task.sets["train"].labels, minlength=len(classes)).float().clamp_min(1)
        weight = (counts.sum() / (len(classes) * counts)).to(device)
    criterion = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    emit("start", {
        "run_dir": str(run), "device": str(device), "epochs": cfg.epochs, "steps": steps_per_epoch, "classes": classes,
        "train_size": n_train, "val_size": task.size_of("val"), "skipped": task.skipped, "kind": task.kind, "loading": task.loading,
        "params": sum(p.numel() for p in net.parameters()), "img_size": task.size, "channels": task.channels,
        "warnings": [f"{name}/ has no samples of: {', '.join(D.missing_classes(split))} (training goes on; those classes are not scored)"
                     for name, split in task.splits.items() if name != "train" and D.missing_classes(split)],
    })

    val_labels = task.sets["val"].labels
    meta_base = {"data": str(Path(data).resolve()), "seed": cfg.seed}
    if task.kind == "video":  # how clips were cut: inference and eval cut them the same way
        meta_base.update(clip_len=cfg.clip_len, frame_stride=cfg.frame_stride)
    progress = TrainProgress()
    if resumed is not None:
        progress = restore_state(resumed, net, optimizer, schedule, generator)
    use_amp, amp_dtype = amp_settings(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    if scaler is not None and resumed is not None and resumed.get("scaler"):
        scaler.load_state_dict(resumed["scaler"])
    if device.type == "cuda":
        for m in net.modules():  # keep cuDNN's fused LSTM on one contiguous weight buffer
            if isinstance(m, nn.RNNBase):
                m.flatten_parameters()
        task.pin_memory()
    if cfg.compile and hasattr(net, "cnn"):  # in place: the state dict keeps its keys
        net.cnn.compile()
    raw = net  # the plain module: what is saved and scored
    if d.active:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    save = save_checkpoint if d.main else (lambda *args, **kwargs: None)
    rows = progress.rows
    started = time.perf_counter() - progress.elapsed
    with StopSignals() as stop, closing(task):  # closing: DataLoader workers stop with training
        for epoch in range(progress.next_epoch, cfg.epochs + 1):
            t0 = time.perf_counter() - progress.partial.seconds
            if progress.skip_steps == 0:
                progress.epoch_rng = generator.get_state()
            on_step = lambda info, epoch=epoch: emit("step", {"epoch": epoch, "steps": steps_per_epoch, **info})  # noqa: E731
            try:
                part = train_one_epoch(net, task.batches(generator, d), optimizer, schedule, criterion, cfg, mean, std, device, generator, on_step, progress.partial, lambda: any_all(stop.requested(), d, device), scaler)
            except torch.cuda.OutOfMemoryError:
                raise LstmimgError(f"out of GPU memory at --batch-size {cfg.batch_size}: try --batch-size {max(1, cfg.batch_size // 2)}") from None
            except NonFiniteLoss as err:
                raise LstmimgError(
                    f"loss became {err.value} at epoch {epoch}, step {err.step}: training stopped; {run / 'last.pt'} holds the last good epoch "
                    f"(try a lower --lr than {cfg.lr}, or --clip-grad)"
                ) from None
            if any_all(stop.requested(), d, device):
                progress.next_epoch, progress.skip_steps, progress.partial = epoch, part.step, part
                progress.partial.seconds = time.perf_counter() - t0
                progress.elapsed = time.perf_counter() - started
                save(run / "last.pt", raw, model_cfg, classes, mean, std, task.kind, {**meta_base, "epoch": epoch - 1}, capture_state(progress, optimizer, schedule, scaler))
                dist_teardown(d)
                raise TrainingInterrupted(run, stop.signal or signal.SIGTERM, epoch, part.step)
            if d.active:  # every process saw its own share: sum the epoch's totals
                part.seen, part.loss_sum, part.correct = sum_all([part.seen, part.loss_sum, part.correct], d, device)
            val_probs, extra = task.score(raw, "val", device)
            val_loss = nn.functional.nll_loss(val_probs.clamp_min(1e-12).log(), val_labels).item()
            val_acc = (val_probs.argmax(1) == val_labels).float().mean().item()
            row = {
                "epoch": epoch, "train_loss": round(part.loss, 5), "train_acc": round(part.acc, 5),
                "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 5), **{f"val_{k}": round(v, 5) for k, v in extra.items()},
                "lr": optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 3), "data_seconds": round(part.data_seconds, 3), "samples_per_s": round(part.samples_per_s, 1),
            }
            rows.append(row)
            if d.main:
                _write_metrics(run / "metrics.csv", rows)
            meta = {**meta_base, "epoch": epoch, "val_accuracy": val_acc}
            improved = val_acc > progress.best_acc
            if improved:
                progress.best_acc, progress.best_epoch, progress.best_extra, progress.stale = val_acc, epoch, extra, 0
                save(run / "best.pt", raw, model_cfg, classes, mean, std, task.kind, meta)
            else:
                progress.stale += 1
            progress.next_epoch, progress.skip_steps, progress.partial = epoch + 1, 0, EpochProgress()
            progress.elapsed = time.perf_counter() - started
            save(run / "last.pt", raw, model_cfg, classes, mean, std, task.kind, meta, capture_state(progress, optimizer, schedule, scaler))
            emit("epoch", {**row, "best": improved})
            if cfg.patience and progress.stale >= cfg.patience:
                break
    train_time = time.perf_counter() - started
    dist_teardown(d)
    if not d.main:
        return {"run_dir": str(run), "rank": d.rank}

    best = load_checkpoint(run / "best.pt")
    best_net = best.model.to(device)
    val_report = classification_report(val_labels, task.score(best_net, "val", device)[0].argmax(1), classes)
    summary = {
        "kind": task.kind, "model": model_cfg.name, "val_accuracy": round(progress.best_acc, 5),
        **{f"val_{k}": round(v, 5) for k, v in progress.best_extra.items()}, "best_epoch": progress.best_epoch,
        "epochs": len(rows), "train_seconds": round(train_time, 2), "classes": classes,
        "best_checkpoint": str(run / "best.pt"), "last_checkpoint": str(run / "last.pt"),
        "train_samples": n_train, "val_samples": task.size_of("val"), "skipped": task.skipped,
        "img_size": list(task.size), "channels": task.channels, "device": str(device), "processes": d.world, "seed": cfg.seed,
        "amp": str(amp_dtype).replace("torch.", "") if use_amp else "off",
        "versions": versions(),
    }
    if task.kind == "video":
        summary["truncated"] = task.truncated
    if "test" in task.sets:
        test_probs = task.score(best_net, "test", device)[0]
        summary["test_accuracy"] = classification_report(task.sets["test"].labels, test_probs.argmax(1), classes)["accuracy"]
    from lstmimg.plots import plot_confusion, plot_curves  # matplotlib: only once training is done

    plot_curves(rows, run / "curves.png")
    plot_confusion(val_report["confusion_matrix"], classes, run / "confusion_matrix.png")
    write_json(run / "summary.json", summary)  # last: a run with a summary is complete
    summary["run_dir"] = str(run)
    emit("end", summary)
    return summary


def amp_settings(cfg: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """Autocast on CUDA when ``cfg.amp``: bf16 where the GPU supports it, else fp16 (needs a scaler)."""
    if not (cfg.amp and device.type == "cuda"):
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def train_one_epoch(net, batches, optimizer, schedule, criterion, cfg: TrainConfig, mean, std, device, generator, on_step, done: EpochProgress | None = None, stop=lambda: False, scaler=None) -> EpochProgress:
    """One pass over ``batches`` of uint8 ``(B, [T,] C, H, W)`` and labels; ``on_step`` gets the running
    figures after every batch. ``done`` continues an interrupted epoch: its first ``done.step`` batches
    are replayed without compute (their random draws only), so the rest is what it would have been.
    Returns after the last batch, or after the current one once ``stop()`` is true."""
    net.train()
    use_amp, amp_dtype = amp_settings(cfg, device)
    part = EpochProgress(**vars(done)) if done else EpochProgress()
    skip, t0 = part.step, time.perf_counter() - part.seconds
    for step, (x, y) in enumerate(_timed(batches, part), 1):
        if step <= skip:  # already trained before the interruption: consume the same random draws
            if cfg.augment:
                D.random_affine_draws(len(y), generator)
            continue
        x = x.to(device, non_blocking=True).float().div_(255)  # 0..1
        if cfg.augment:
            x = D.random_affine(x, generator)
        x = D.normalize(x, mean, std)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = net(x)  # (B, num_classes)
            loss = criterion(logits.float(), y)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(loss.item(), step)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before clipping
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if cfg.clip_grad > 0:
            nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        schedule.step()
        part.step, part.seen = step, part.seen + len(y)
        part.loss_sum += loss.item() * len(y)
        part.correct += (logits.argmax(1) == y).sum().item()
        on_step({"step": step, "loss": part.loss, "acc": part.acc, "samples_per_s": part.seen / (time.perf_counter() - t0)})
        if stop():
            break
    part.seconds = time.perf_counter() - t0
    return part


def _timed(batches, part: EpochProgress):
    """``batches``, adding the time spent waiting for each to ``part.data_seconds``."""
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        part.data_seconds += time.perf_counter() - t0
        yield batch


def _write_metrics(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def evaluate(data: str | Path, model: str | Path | None = None, split: str | None = None, device: str = "auto") -> dict:
    """Accuracy, per-class precision / recall / F1 and the confusion matrix of a model on labelled
    images or videos.

    ``data`` is a folder of class folders, or a root with ``train/ val/ test/`` (then ``split``, by
    default ``test`` if present, else ``val``). ``model`` is a run folder or checkpoint (default: the
    newest run of the data's kind, else the bundled model).
    """
    kind = D.detect_kind(data)
    ckpt = load_checkpoint(resolve_model(model, kind)[0], kind=kind)
    files = labelled_folder(data, kind, ckpt.classes, split)
    meta = ckpt.meta
    cfg = TrainConfig(clip_len=meta.get("clip_len", TrainConfig.clip_len), frame_stride=meta.get("frame_stride", TrainConfig.frame_stride))
    task = (VideoTask if kind == "video" else ImageTask)({"eval": files}, cfg, ckpt.config.in_channels, ckpt.config.img_size)
    task.load()
    task.mean, task.std = ckpt.mean, ckpt.std
    dev = resolve_device(device)
    probs, extra = task.score(ckpt.model.to(dev), "eval", dev)
    report = classification_report(task.sets["eval"].labels, probs.argmax(1), ckpt.classes)
    folder = files.paths[0].parent.parent if files.paths else Path(data)
    return {"data": str(folder), "model": str(ckpt.path), **report, **extra, "skipped": task.skipped}


def predict(
    paths: Sequence[str | Path],
    model: str | Path | Checkpoint | None = None,
    topk: int = 5,
    batch_size: int = 64,
    device: str = "cpu",
) -> tuple[list[dict], list[str]]:
    """Classify image files. Returns ``(results, errors)``: one result per readable image,
    ``{"path", "label", "prob", "top": [{"label", "prob"}, ...]}``, and one message per image that could
    not be read. Decoding of the next batch overlaps the model's work on the current one."""
    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(resolve_model(model, "image")[0], kind="image")
    dev = resolve_device(device)
    net = ckpt.model.to(dev)
    k = max(1, min(topk, len(ckpt.classes)))
    channels, size = ckpt.config.in_channels, ckpt.config.img_size

    def decode(batch: Sequence[Path]):
        arrays, ok, errors = [], [], []
        for path in batch:
            try:
                arrays.append(D.load_image(path, channels, size))
                ok.append(path)
            except LstmimgError as err:
                errors.append(str(err))
        return arrays, ok, errors

    results, errors = [], []
    batches = [list(paths[i : i + batch_size]) for i in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(1) as pool:  # decodes the next batch while the model runs
        for arrays, ok, errs in pool.map(decode, batches):
            errors += errs
            if not arrays:
                continue
            probs = predict_logits(net, torch.from_numpy(np.stack(arrays)), ckpt.mean, ckpt.std, dev, batch_size).softmax(1)
            top_p, top_i = probs.topk(k, dim=1)
            for path, ps, ids in zip(ok, top_p.tolist(), top_i.tolist()):
                top = [{"label": ckpt.classes[i], "prob": round(p, 5)} for p, i in zip(ps, ids)]
                results.append({"path": str(path), "label": top[0]["label"], "prob": top[0]["prob"], "top": top})
    return results, errors
