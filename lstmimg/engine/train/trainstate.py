"""What a training run is at any moment: ``TrainState``, everything ``last.pt`` restores; reading a
run folder back for ``--resume``; and the stop signals that end a run cleanly.

``last.pt`` carries, besides the weights, ``TrainState.state_dict()``: plain data and tensors (it still
loads with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import platform
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from lstmimg.checkpoint import read_payload
from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.errors import LstmimgError


@dataclass
class EpochTotals:
    """Running totals of the epoch in progress."""

    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0
    data_seconds: float = 0.0  # of those, waiting for the next batch (decoding, cutting clips)

    @property
    def loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    @property
    def acc(self) -> float:
        return self.correct / max(1, self.seen)

    @property
    def samples_per_s(self) -> float:
        return self.seen / self.seconds if self.seconds else 0.0


@dataclass
class TrainState:
    """Everything ``last.pt`` restores, so a resumed run ends as the uninterrupted one would have.

    ``epoch`` is the epoch to run (or in progress), ``step`` its batches already trained, and
    ``epoch_rng`` the data generator's state at that epoch's start: an interrupted epoch replays its
    draws from there. Ending an epoch moves all three on together (``end_epoch``), so a checkpoint
    written at an epoch boundary resumes with the next epoch's draws, never the last one's again.
    """

    model: nn.Module  # the plain module (not the DDP wrapper): what checkpoints hold
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # shuffling, clip starts, augmentation
    scaler: torch.amp.GradScaler | None = None  # fp16 on CUDA only
    epoch: int = 1
    step: int = 0
    epoch_rng: torch.Tensor | None = None
    totals: EpochTotals = field(default_factory=EpochTotals)
    rows: list[dict] = field(default_factory=list)  # metrics.csv so far
    best_acc: float = -1.0
    best_loss: float = float("inf")  # breaks ties of val accuracy (ties are the rule on small val sets)
    best_epoch: int = 0
    best_extra: dict = field(default_factory=dict)
    stopped_early: bool = False  # the stopping rule ended the run before its planned epochs
    stop: str = ""  # why (stopping.stop_reason)
    elapsed: float = 0.0  # training seconds before this process took over

    def start_epoch(self) -> None:
        """At a fresh epoch, remember where its draws start; within one, go back there to replay them."""
        if self.step == 0:
            self.epoch_rng = self.generator.get_state()
        else:
            self.generator.set_state(self.epoch_rng)

    def end_epoch(self, row: dict, val_acc: float, extra: dict) -> bool:
        """Record a finished epoch and move on to the next; returns whether it is the best so far: a
        higher val accuracy, or the same at a lower val loss (a 6-video val set kept epoch 1 at train
        accuracy 0.70 over epoch 2 with the same val accuracy and a lower val loss)."""
        self.rows.append(row)
        improved = val_acc > self.best_acc or (val_acc == self.best_acc and row["val_loss"] < self.best_loss)
        if improved:
            self.best_acc, self.best_loss, self.best_epoch, self.best_extra = val_acc, row["val_loss"], self.epoch, dict(extra)
        self.epoch, self.step, self.totals = self.epoch + 1, 0, EpochTotals()
        self.epoch_rng = self.generator.get_state()  # the next epoch's draws start here
        return improved

    def state_dict(self) -> dict:
        """The resumable state as plain data and tensors."""
        return {
            "epoch": self.epoch, "step": self.step, "epoch_rng": self.epoch_rng, "totals": asdict(self.totals),
            "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rows": self.rows, "best": {"acc": self.best_acc, "loss": self.best_loss, "epoch": self.best_epoch, "extra": self.best_extra},
            "stopped_early": self.stopped_early, "stop": self.stop, "elapsed": self.elapsed,
        }

    def load_state_dict(self, saved: dict) -> None:
        """Put model, optimizer, schedule, scaler, RNGs and progress back as ``state_dict`` left them."""
        self.model.load_state_dict(saved["state_dict"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["torch_rng"])
        if saved["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.epoch, self.step, self.epoch_rng = saved["epoch"], saved["step"], saved["epoch_rng"]
        self.generator.set_state(self.epoch_rng)
        self.totals = EpochTotals(**saved["totals"])
        self.rows = list(saved["rows"])
        best = saved["best"]
        self.best_acc, self.best_epoch, self.best_extra = best["acc"], best["epoch"], dict(best["extra"])
        self.best_loss = best.get("loss", float("inf"))  # a checkpoint from before the tie-break: the next tie wins
        self.stopped_early, self.stop, self.elapsed = saved["stopped_early"], saved.get("stop", ""), saved["elapsed"]


@dataclass
class SavedRun:
    """A run folder read back for ``--resume``: its data, configs and saved state, or its summary when
    it has finished."""

    run: Path
    data: str
    model: ModelConfig
    train: TrainConfig
    state: dict | None = None  # TrainState.state_dict() plus "state_dict" (the weights)
    summary: dict | None = None  # set when the run is finished: nothing to resume


def read_run(run: str | Path) -> SavedRun:
    """The run in folder ``run``, to resume. A run with ``summary.json`` is finished (its epochs done, or
    stopped by ``--patience``): it comes back with its summary and no state."""
    run = Path(run)
    if not run.is_dir():
        raise LstmimgError(f"{run}: no such run folder")
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        data, model, train = config["data"], ModelConfig.from_dict(config["model"]), TrainConfig.from_dict(config["train"])
    except (OSError, ValueError, KeyError, TypeError):
        raise LstmimgError(f"{run / 'config.json'}: missing or unreadable; cannot resume this run") from None
    if (run / "summary.json").is_file():
        try:
            return SavedRun(run, data, model, train, summary=json.loads((run / "summary.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass  # a damaged summary: the run is finished again from last.pt
    payload = read_payload(run / "last.pt")
    state = payload.get("train_state")
    if not isinstance(state, dict) or "epoch_rng" not in state or "stopped_early" not in state:
        raise LstmimgError(f"{run / 'last.pt'}: holds no training state this lstmimg can resume from")
    return SavedRun(run, data, model, train, state={**state, "state_dict": payload["state_dict"]})


def split_fingerprint(data) -> dict:
    """How many files each split holds and a hash of which, recorded in config.json: a resumed run must
    split its data the same way, or files it trained on could move into val."""
    import hashlib

    out = {}
    for name, split in data.splits.items():
        names = sorted(str(Path(p).resolve()) for p in split.paths)
        out[name] = {"files": len(names), "sha1": hashlib.sha1("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()}
    return out


def check_same_split(run: Path, data) -> None:
    """Refuse to resume ``run`` when its data now splits differently (files added, removed or renamed)."""
    try:
        recorded = json.loads((run / "config.json").read_text(encoding="utf-8")).get("split")
    except (OSError, ValueError):
        return
    if not isinstance(recorded, dict):
        return  # a run from before splits were recorded
    now = split_fingerprint(data)
    changed = [name for name in recorded if recorded[name] != now.get(name)]
    if changed:
        then, later = recorded[changed[0]].get("files"), now.get(changed[0], {}).get("files")
        raise LstmimgError(f"{run}: its data changed since the run began ({changed[0]} held {then} files then, {later} now); resuming would mix "
                           f"files it trained on into val: start a new run (lstmimg train DATA)")


class StopSignals:
    """While active (main thread only), SIGINT and SIGTERM ask training to stop after the current step;
    a second SIGINT stops at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict = {}

    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def versions() -> dict:
    """Library versions recorded in every run folder."""
    import numpy
    import PIL

    from lstmimg import __version__

    return {"lstmimg": __version__, "torch": torch.__version__, "numpy": numpy.__version__, "pillow": PIL.__version__, "python": platform.python_version()}
