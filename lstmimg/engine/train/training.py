"""Training: ``fit`` is a plain loop over epochs; ``Training`` sets a run up, validates, saves and
finishes it; ``train_one_epoch`` makes the optimisation steps.

The library never prints: progress goes to an optional ``callback(event, info)`` with events
``"load"``, ``"start"``, ``"step"``, ``"epoch"`` and ``"end"``, so the CLI can draw bars and a notebook
can ignore them; TensorBoard's event files (``board.py``) are written from the same events. Under torchrun every process runs ``fit``; they make every decision together (stop
signals, a non-finite loss, early stopping), and only rank 0 reports and writes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import closing, contextmanager
from pathlib import Path

import torch
from torch import nn

from lstmimg.checkpoint import save_checkpoint
from lstmimg.config import DEFAULT_MODELS, ModelConfig, TrainConfig
from lstmimg.data.dataset import describe
from lstmimg.data.folders import missing_classes
from lstmimg.data.loaders import DiskSet
from lstmimg.engine.infer.loading import load_checkpoint, resolve_device
from lstmimg.engine.review.evaluation import score_split
from lstmimg.engine.review.metrics import classification_report
from lstmimg.engine.train import board
from lstmimg.engine.train import distributed as dist
from lstmimg.engine.train.batches import epoch_steps, train_batches
from lstmimg.engine.train.optim import amp_settings, make_optimizer, make_schedule
from lstmimg.engine.train.plan import check_fits, clip_meta, plan_clips, plan_input, plan_training, smallest_side
from lstmimg.engine.train.run_files import write_metrics, write_pictures, write_review
from lstmimg.engine.train.steps import NonFiniteLoss, Recipe, train_one_epoch
from lstmimg.engine.train.stopping import cooldown_of, lr_drops, out_of_time, rule_of, stop_reason
from lstmimg.engine.train.trainstate import SavedRun, StopSignals, TrainState, check_same_split, read_run, split_fingerprint, versions
from lstmimg.errors import LstmimgError, TrainingInterrupted, article
from lstmimg.files import WriteError, write_json
from lstmimg.models.registry import build_model, get_model_spec
from lstmimg.runs import new_run_dir, set_aside_earlier_run

Callback = Callable[[str, dict], None]


def fit(
    data: str | Path | None = None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    out: str | Path | None = None,
    callback: Callback | None = None,
    resume: str | Path | None = None,
    exist_ok: bool = False,
) -> dict:
    """Train a model on an image or video folder and write a run folder; returns the run's summary.

    ``data`` is a class-folder root (``train/`` + ``val/``, or class folders only) of images or of
    videos. ``model_config`` defaults to the default model for that kind of data (``DEFAULT_MODELS``),
    ``train_config`` to ``TrainConfig()``; the model's channels, image size and class count come from
    the data. ``out`` is the run folder (default: the next free ``runs/train/exp*``; an existing
    non-empty one only with ``exist_ok``). The summary is also written to ``summary.json``, last.

    ``resume`` continues the run in that folder with its own data and settings, from its ``last.pt``,
    so it ends as it would have without the interruption (same device and seed). A finished run (it
    has ``summary.json``) is not trained again: its summary comes back with ``already_finished``.
    SIGINT / SIGTERM stop training after the current step, save ``last.pt`` and raise
    ``TrainingInterrupted``.
    """
    saved = read_run(resume) if resume is not None else None
    if saved is not None and saved.summary is not None:
        return {**saved.summary, "run_dir": str(saved.run), "already_finished": True}
    run = Training(data, model_config, train_config, out, exist_ok, callback, saved)
    state, cfg = run.state, run.cfg
    with StopSignals() as stop, closing(run), run.explain_write_errors():
        while state.epoch <= cfg.epochs and not state.stopped_early:
            t0 = time.perf_counter() - state.totals.seconds
            run.unfreeze_if_due()
            state.start_epoch()
            if run.train_one_epoch(stop.requested):  # a stop signal reached some process
                run.save_last(epoch_done=state.epoch - 1)
                raise TrainingInterrupted(run.dir, stop.signal or signal.SIGTERM, state.epoch, state.step)
            run.add_up_epoch()
            t_val = time.perf_counter()
            val_acc, val_loss, extra = run.validate()
            val_seconds = time.perf_counter() - t_val
            row = {
                "epoch": state.epoch, "train_loss": round(state.totals.loss, 5), "train_acc": round(state.totals.acc, 5),
                "val_loss": round(val_loss, 5), "val_acc": round(val_acc, 5), **{f"val_{k}": round(v, 5) for k, v in extra.items()},
                "lr": state.optimizer.param_groups[0]["lr"], "seconds": round(time.perf_counter() - t0, 3),
                "data_seconds": round(state.totals.data_seconds, 3), "val_seconds": round(val_seconds, 3), "samples_per_s": round(state.totals.samples_per_s, 1),
            }
            improved = state.end_epoch(row, val_acc, extra)
            run.decide_stop()
            run.log_epoch({**row, "best": improved})  # TensorBoard before the checkpoint: a kill in between redoes the epoch, and the resumed log purges what came after last.pt
            run.save_epoch(row, improved)
            run.emit("epoch", {**row, "best": improved})
        return run.finish()


VAL_TIMEOUT_S = 24 * 3600  # process 0 validates alone while the others wait in a broadcast: a large val set may take far longer than torch's 30-minute default


class Training:
    """One run being trained: its data (``TrainingData``), model, processes, run folder and ``TrainState``.
    ``fit`` drives it epoch by epoch; setting up happens here, in order, so a bad option or folder
    fails before any decoding."""

    def __init__(self, data, model_cfg: ModelConfig | None, cfg: TrainConfig | None, out, exist_ok: bool, callback: Callback | None, saved: SavedRun | None):
        if saved is not None:  # the run's own data and settings
            data, model_cfg, cfg, out, exist_ok = saved.data, saved.model, saved.train, saved.run, True
        if data is None:
            raise LstmimgError("no DATA folder given")
        self.cfg = cfg = cfg or TrainConfig()
        if cfg.unfreeze_after is not None and not (model_cfg is not None and model_cfg.freeze_backbone):
            raise LstmimgError("--unfreeze-after needs --freeze-backbone (the backbone is trained from the start otherwise)")
        self.data = data = describe(data, cfg)
        if saved is not None:
            check_same_split(saved.run, data)
        model_cfg = model_cfg or ModelConfig(name=DEFAULT_MODELS[data.kind])
        spec = get_model_spec(model_cfg.name)
        if spec.kind != data.kind:
            raise LstmimgError(f"{data.root}: holds {data.kind}s, but model {model_cfg.name!r} is {article(spec.kind)} {spec.kind} model (try --model {DEFAULT_MODELS[data.kind]})")
        model_cfg, self.notes = plan_input(data, model_cfg, cfg)
        stride, note = plan_clips(cfg, data)
        cfg = cfg.replace(frame_stride=stride)
        self.notes += [note] if note else []
        torch.manual_seed(cfg.seed)
        self.d, self.device = dist.setup(resolve_device(cfg.device), timeout_s=VAL_TIMEOUT_S)
        given = cfg
        plan = plan_training(cfg, data.kind, len(data.splits["train"].paths), self.d.world)
        self.cfg = cfg = plan.apply(cfg)  # resolved: config.json records it, --resume reuses it
        self.rule = rule_of(cfg.patience, cfg.min_epochs, cfg.cooldown, cfg.stop_annealed or 0.0)
        self.emit = (callback or (lambda event, info: None)) if self.d.main else (lambda event, info: None)
        self.board = None
        if self.d.main and cfg.tensorboard and board.available():  # event files beside the run's other files
            self.board, shown = board.BoardLog(), self.emit
            self.emit = lambda event, info: (shown(event, info), self.board(event, info) if event != "epoch" else None)  # epochs: log_epoch
        self.model_cfg = spec.complete(model_cfg.replace(in_channels=data.channels, img_size=data.size, num_classes=len(data.classes)))
        check_fits(self.model_cfg, data.kind)
        try:
            model = build_model(self.model_cfg)  # before decoding: a model that cannot be built fails at once (building probes the CNN)
        except RuntimeError:
            model = self._grow_input(cfg)
        model = model.to(self.device)
        self.dir = self._run_folder(out, exist_ok, fresh=saved is None)
        self._load_data()
        readable = data.size_of("train")
        if saved is None and readable != len(data.splits["train"].paths):  # unreadable files: planned again on what decoded, so the counts agree
            plan = plan_training(given, data.kind, readable, self.d.world)
            self.cfg = cfg = plan.apply(given)
            self.rule = rule_of(cfg.patience, cfg.min_epochs, cfg.cooldown, cfg.stop_annealed or 0.0)
        if self.model_cfg.pretrained:  # normalised as the weights expect, not with the data's statistics
            from lstmimg.models.backbones import normalization

            mean, std = normalization(self.model_cfg.backbone, self.model_cfg.weights)
            data.mean, data.std = mean + data.mean[3:], std + data.std[3:]  # motion channels keep their fixed scaling
        unfrozen = saved is not None and cfg.unfreeze_after is not None and saved.state["epoch"] > cfg.unfreeze_after
        if self.model_cfg.freeze_backbone and cfg.feature_cache and not unfrozen:
            if data.motion != "none":
                self.notes.append("backbone frozen, but with motion input its features are not cached (the motion stream trains on the frames)")
            else:
                self._cache_features(model)
        if saved is None and self.d.main:
            write_json(self.dir / "config.json", {"data": str(data.root.resolve()), "kind": data.kind, "model": self.model_cfg.to_dict(), "train": cfg.to_dict(),
                                                  "split": split_fingerprint(data), "versions": versions()})
        self.meta = {"data": str(data.root.resolve()), "seed": cfg.seed}
        if data.kind == "video":  # how clips were cut and scored: inference and eval do the same
            self.meta.update(clip_meta(cfg, data))

        optimizer = make_optimizer(model, cfg)
        amp_on, amp_dtype = amp_settings(cfg, self.device)
        self.state = TrainState(model, optimizer, make_schedule(optimizer, cfg, cfg.epochs * epoch_steps(data, cfg, self.d), self._lr_drops, self._cooldown), torch.Generator().manual_seed(cfg.seed),
                                torch.amp.GradScaler("cuda") if amp_on and amp_dtype == torch.float16 else None)
        if saved is not None:
            self.state.load_state_dict(saved.state)
        self.started = time.perf_counter() - self.state.elapsed
        self.recipe = Recipe(self._prepared(model), self._criterion(), data.mean, data.std, self.device, cfg.augment and not data.features, cfg.clip_grad,
                             amp_dtype if amp_on else None, self.d, data.features, data.motion)
        if unfrozen:
            self.unfreeze_if_due()
        self.emit("start", {
            "run_dir": str(self.dir), "device": str(self.device), "epochs": cfg.epochs, "steps": epoch_steps(data, cfg, self.d), "classes": data.classes,
            "train_size": data.size_of("train"), "val_size": data.size_of("val"), "skipped": data.skipped, "errors": data.errors, "kind": data.kind,
            "loading": data.loading, "params": sum(p.numel() for p in model.parameters()), "img_size": data.size, "channels": data.channels,
            "resumed_at": (self.state.epoch, self.state.step) if saved is not None else None, "notes": self.notes + plan.reasons,
            "warnings": [f"{name}/ has no samples of: {', '.join(missing_classes(split))} (training goes on; those classes are not scored)"
                         for name, split in data.splits.items() if name != "train" and missing_classes(split)],
        })

    @contextmanager
    def explain_write_errors(self):
        """A file of the run that cannot be written (a full disk) ends training with one line, and the
        command that goes on once there is room, when ``last.pt`` holds a finished epoch to go on from."""
        try:
            yield
        except WriteError as err:
            last = self.dir / "last.pt"
            if last.is_file() and err.path != last:
                raise LstmimgError(f"{err}; once there is room, resume with: lstmimg train --resume {self.dir}") from None
            if last.is_file():
                raise LstmimgError(f"{err}; {last} holds an earlier epoch: once there is room, resume with: lstmimg train --resume {self.dir}") from None
            raise

    def _grow_input(self, cfg: TrainConfig) -> nn.Module:
        """The model, for inputs the CNN's pooling would leave nothing of: grown to the smallest size it
        reads (said on the first lines); an ``--img-size`` below it is refused."""
        data = self.data
        side = smallest_side(self.model_cfg, data.kind)
        if side is None:
            raise  # not a matter of size: the build's own error
        (h, w), grown = data.size, (max(data.size[0], side), max(data.size[1], side))
        if cfg.img_size:
            raise LstmimgError(f"--img-size {h}x{w}: the model takes at least {side}x{side} pixels")
        data.size = grown
        self.model_cfg = self.model_cfg.replace(img_size=grown)
        self.notes.append(f"{data.kind}s are {h}x{w}, smaller than the {side}x{side} the model takes: trained at {grown[0]}x{grown[1]}")
        return build_model(self.model_cfg)

    def _run_folder(self, out, exist_ok: bool, fresh: bool) -> Path:
        """The run folder (rank 0 makes it); a new run in a folder an earlier run used moves that run's
        files aside first (``runs.set_aside_earlier_run``), so nothing of it is mistaken for this one's."""
        run = new_run_dir(out, exist_ok=exist_ok) if self.d.main else None
        if fresh and exist_ok and run is not None:
            aside = set_aside_earlier_run(run)
            if aside is not None:
                self.notes.append(f"{run} held an earlier run: its files moved to {aside}")
        if self.d.active:  # every process learns rank 0's run folder
            shared = [str(run)]
            torch.distributed.broadcast_object_list(shared, src=0)
            run = Path(shared[0])
        return run

    def _load_data(self) -> None:
        try:
            self.data.load(self.cfg, lambda split, done, total: self.emit("load", {"split": split, "done": done, "total": total}))
        except BaseException:
            self._drop_empty_folder()
            raise

    def _drop_empty_folder(self) -> None:
        """Set-up stopped before anything was written: the run folder it made goes, and the group is left."""
        if self.d.main and self.dir.is_dir() and not any(self.dir.iterdir()):
            self.dir.rmdir()
        dist.teardown(self.d)

    def _cache_features(self, model: nn.Module) -> None:
        """A frozen CNN's features of every in-memory split, computed once (``engine.train.features``)."""
        from lstmimg.engine.train.features import cache_features

        if isinstance(self.data.sets["train"], DiskSet):
            self.notes.append("backbone frozen, training set read from disk: features are computed every epoch")
            return
        report = lambda split, done, total, rate: self.emit("features", {"split": split, "done": done, "total": total, "per_s": rate})  # noqa: E731
        try:
            cache_features(self.data, model, self.device, report, self.cfg.cache, keep=self.cfg.unfreeze_after is not None)
        except BaseException:  # Ctrl-C while the features are computed: no empty run folder left behind, as while decoding
            self._drop_empty_folder()
            raise
        where = f" and kept in {Path(self.cfg.cache) / 'features'}" if self.cfg.cache else ""
        self.notes.append(f"backbone frozen: its features were computed once{where} and are reused every epoch (augmentation off; --no-feature-cache to train on images)")

    def unfreeze_if_due(self) -> None:
        """After ``--unfreeze-after`` epochs: the backbone trains too (at ``--backbone-lr-scale`` of the
        learning rate; its optimizer group was there from the start), its batch norm in train mode, and
        the sets hold images again (augmented, if ``--augment``)."""
        model, cfg = self.state.model, self.cfg
        if cfg.unfreeze_after is None or not model.frozen or self.state.epoch <= cfg.unfreeze_after:
            return
        from lstmimg.engine.train.features import restore_images

        model.frozen = False
        model.cnn.requires_grad_(True)
        if self.data.features:
            restore_images(self.data)
        self.recipe.features, self.recipe.augment = False, cfg.augment
        if self.d.active:  # DDP registers the parameters that need gradients when it wraps the model
            self.recipe.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.emit("unfreeze", {"epoch": self.state.epoch, "backbone_lr": cfg.lr * cfg.backbone_lr_scale})

    def _criterion(self) -> nn.Module:
        weight = None
        if self.cfg.class_weights == "auto":
            counts = torch.bincount(self.data.sets["train"].labels, minlength=len(self.data.classes)).float().clamp_min(1)
            weight = (counts.sum() / (len(self.data.classes) * counts)).to(self.device)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=self.cfg.label_smoothing)

    def _prepared(self, model: nn.Module) -> nn.Module:
        """The model as the steps run it: GPU-ready, compiled, wrapped for DDP."""
        if self.device.type == "cuda":
            for m in model.modules():  # keep cuDNN's fused LSTM on one contiguous weight buffer
                if isinstance(m, nn.RNNBase):
                    m.flatten_parameters()
            self.data.pin_memory()
        if self.cfg.compile and hasattr(model, "cnn"):  # in place: the state dict keeps its keys
            model.cnn.compile()
        if self.d.active:
            return torch.nn.parallel.DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return model

    def train_one_epoch(self, stop: Callable[[], bool]) -> bool:
        """One epoch (or the rest of one); True when a stop signal ended it early."""
        state, steps = self.state, epoch_steps(self.data, self.cfg, self.d)
        on_step = lambda info: self.emit("step", {"epoch": state.epoch, "steps": steps, **info})  # noqa: E731
        try:
            return train_one_epoch(state, train_batches(self.data, self.cfg, state.generator, self.d), self.recipe, on_step, stop)
        except RuntimeError as err:  # a tensor that does not fit: torch.cuda.OutOfMemoryError, or the CPU allocator's "can't allocate memory"
            gpu = isinstance(err, torch.cuda.OutOfMemoryError)
            if not gpu and "can't allocate memory" not in str(err):
                raise
            (h, w), batch = self.data.size, self.cfg.batch_size
            raise LstmimgError(f"out of {'GPU ' if gpu else ''}memory at --batch-size {batch} of {h}x{w} inputs: try --batch-size {max(1, batch // 2)} or a smaller --img-size") from None
        except NonFiniteLoss as err:
            last = self.dir / "last.pt"
            where = f"{last} holds the last good epoch" if last.is_file() else "no checkpoint was saved (no epoch had finished)"
            raise LstmimgError(f"loss became {err.value} at epoch {state.epoch}, step {err.step}: training stopped; {where} (try a lower --lr than {self.cfg.lr}, or --clip-grad)") from None

    def add_up_epoch(self) -> None:
        """Every process trained on its own share: sum the epoch's totals."""
        t = self.state.totals
        if self.d.active:
            t.seen, t.loss_sum, t.correct = dist.sum_all([t.seen, t.loss_sum, t.correct], self.d, self.device)

    def validate(self) -> tuple[float, float, dict]:
        """Val accuracy, loss and extra metrics of the model as it is. Rank 0 scores; every process
        takes its accuracy, so all make the same early-stopping decision."""
        acc, loss, extra = 0.0, 0.0, {}
        if self.d.main:
            probs, extra = score_split(self.state.model, self.data, "val", self.cfg, self.device)
            labels = self.data.sets["val"].labels
            loss = nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
            acc = (probs.argmax(1) == labels).float().mean().item()
            extra = {**extra, "macro_f1": classification_report(labels.long().cpu(), probs.argmax(1).cpu(), self.data.classes)["macro_f1"]}  # what `tune --metric macro_f1` ranks by
        return dist.broadcast_float(acc, self.d, self.device), dist.broadcast_float(loss, self.d, self.device), extra  # both decide the best epoch

    def _lr_drops(self) -> int:
        """For ``--schedule plateau``: how many times validation has stalled so far."""
        return lr_drops(self.state.rows, self.rule) if hasattr(self, "state") else 0

    def _cooldown(self) -> tuple[int, int] | None:
        """The learning rate's cool-down after a plateau, in steps: (first step, length), or None."""
        cool = cooldown_of(self.state.rows, self.rule) if hasattr(self, "state") else None
        if cool is None:
            return None
        steps = epoch_steps(self.data, self.cfg, self.d)
        return cool[0] * steps, cool[1] * steps

    def log_epoch(self, info: dict) -> None:
        """The epoch's figures to TensorBoard (rank 0), before its checkpoint is saved."""
        if self.board is not None:
            self.board("epoch", info)

    def decide_stop(self) -> None:
        """Whether the run is done after the epoch just recorded (``stopping.py``): rank 0 decides from
        its rows, every process follows; the reason goes in the epoch's ``stop`` column."""
        s = self.state
        reason = (stop_reason(s.rows, self.rule, self.cfg.epochs) or (out_of_time(s.rows, time.perf_counter() - self.started, self.cfg.time_limit, s.best_epoch) if s.epoch <= self.cfg.epochs else None)) if self.d.main else None
        if dist.broadcast_float(float(reason is not None), self.d, self.device):
            s.stopped_early, s.stop = True, reason or "stopped with rank 0"
        elif s.epoch > self.cfg.epochs:
            s.stop = f"finished the {self.cfg.epochs} planned epochs (best at epoch {s.best_epoch})"
        s.rows[-1]["stop"] = s.stop

    def _save(self, name: str, meta: dict, with_state: bool = False) -> None:
        if self.d.main:
            s, t = self.state, self.data
            save_checkpoint(self.dir / name, s.model, self.model_cfg, t.classes, t.mean, t.std, t.kind, {**self.meta, **meta}, s.state_dict() if with_state else None)

    def save_last(self, epoch_done: int, meta: dict | None = None) -> None:
        self.state.elapsed = time.perf_counter() - self.started
        self._save("last.pt", {"epoch": epoch_done, **(meta or {})}, with_state=True)

    def save_epoch(self, row: dict, improved: bool) -> None:
        """metrics.csv, then best.pt when this epoch is the best, then last.pt (the state to resume)."""
        meta = {"epoch": row["epoch"], "val_accuracy": row["val_acc"]}
        if self.d.main:
            write_metrics(self.dir / "metrics.csv", self.state.rows)
        if improved:
            self._save("best.pt", meta)
        self.save_last(row["epoch"], meta)

    def finish(self) -> dict:
        """Score the best checkpoint, draw the plots and write ``summary.json`` (last: a run with a
        summary is complete)."""
        self.recipe.net = self.state.model  # drop the DDP wrapper: it holds the process group
        dist.finish(self.d)
        s, data = self.state, self.data
        if not self.d.main:
            return {"run_dir": str(self.dir), "rank": self.d.rank}
        best_ckpt = load_checkpoint(self.dir / "best.pt")
        best = best_ckpt.model.to(self.device)
        val_labels = data.sets["val"].labels
        clip_probs: list = []  # videos: each one's clip probabilities, the report's timelines
        val_probs = score_split(best, data, "val", self.cfg, self.device, clip_probs)[0]
        val_report = classification_report(val_labels, val_probs.argmax(1), data.classes)
        use_amp = self.recipe.amp_dtype is not None
        summary = {
            "kind": data.kind, "model": self.model_cfg.name, "val_accuracy": round(s.best_acc, 5),
            **{f"val_{k}": round(v, 5) for k, v in s.best_extra.items()}, "best_epoch": s.best_epoch,
            "val_balanced_accuracy": val_report["balanced_accuracy"], "val_macro_f1": val_report["macro_f1"],
            "epochs": len(s.rows), "planned_epochs": self.cfg.epochs, "stopped_early": s.stopped_early, "stop_reason": s.stop,
            "stop_rule": self.rule.describe() if self.rule else "none (all planned epochs)", "train_seconds": round(time.perf_counter() - self.started, 2), "classes": data.classes,
            "best_checkpoint": str(self.dir / "best.pt"), "last_checkpoint": str(self.dir / "last.pt"),
            "train_samples": data.size_of("train"), "val_samples": data.size_of("val"), "skipped": data.skipped,
            "img_size": list(data.size), "channels": data.channels, "device": str(self.device), "processes": self.d.world, "seed": self.cfg.seed,
            "amp": str(self.recipe.amp_dtype).replace("torch.", "") if use_amp else "off", "versions": versions(),
        }
        if data.kind == "video":
            summary["truncated"] = data.truncated
        if "test" in data.sets:
            summary["test_accuracy"] = classification_report(data.sets["test"].labels, score_split(best, data, "test", self.cfg, self.device)[0].argmax(1), data.classes)["accuracy"]
        write_pictures(self.dir, data, s.rows, val_report["confusion_matrix"], val_labels, val_probs)
        if self.cfg.report and getattr(data.sets["val"], "paths", None):
            write_review(self.dir, data, best_ckpt, s.best_epoch, val_labels, val_probs, clip_probs, self.device)
        write_json(self.dir / "summary.json", summary)
        summary["run_dir"] = str(self.dir)
        self.emit("end", summary)
        return summary

    def close(self) -> None:
        """Stop DataLoader workers; leave the process group (an error on one process must not leave
        the others waiting in a collective)."""
        self.data.close()
        if self.board is not None:
            self.board.close()
        dist.teardown(self.d)

