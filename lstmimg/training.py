"""What makes a training run resumable and interruptible: its progress, the state saved in ``last.pt``,
and the handling of SIGINT / SIGTERM.

``last.pt`` carries, besides the weights, a ``train_state`` of plain data and tensors (it still loads
with ``torch.load(weights_only=True)``): optimizer and LR-schedule state, the epoch and step to go on
from, the data generator's state at that epoch's start (to replay its draws), the global RNG state,
the metrics so far and the best result.
"""

from __future__ import annotations

import json
import platform
import signal
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.errors import LstmimgError, TrainingInterrupted  # noqa: F401 - raised by engine.fit


@dataclass
class EpochProgress:
    """Running totals of one epoch (``step`` batches done)."""

    step: int = 0
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
class TrainProgress:
    """Where a run stands: the next epoch and how many of its steps are done, and the results so far."""

    next_epoch: int = 1
    skip_steps: int = 0
    partial: EpochProgress = field(default_factory=EpochProgress)
    epoch_rng: torch.Tensor | None = None
    rows: list = field(default_factory=list)
    best_acc: float = -1.0
    best_epoch: int = 0
    best_extra: dict = field(default_factory=dict)
    stale: int = 0
    elapsed: float = 0.0


class NonFiniteLoss(Exception):
    def __init__(self, value: float, step: int):
        super().__init__(value, step)
        self.value, self.step = value, step


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


def capture_state(progress: TrainProgress, optimizer, schedule, scaler=None) -> dict:
    """The resumable state, as plain data and tensors."""
    return {
        "next_epoch": progress.next_epoch,
        "skip_steps": progress.skip_steps,
        "partial": asdict(progress.partial),
        "epoch_rng": progress.epoch_rng,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rows": progress.rows,
        "best": {"acc": progress.best_acc, "epoch": progress.best_epoch, "extra": progress.best_extra, "stale": progress.stale},
        "elapsed": progress.elapsed,
    }


def read_resume(run: str | Path) -> tuple[str, ModelConfig, TrainConfig, dict]:
    """Data path, configs and saved state of a run folder to resume."""
    from lstmimg.checkpoint import read_payload

    run = Path(run)
    if not run.is_dir():
        raise LstmimgError(f"{run}: no such run folder")
    try:
        config = json.loads((run / "config.json").read_text())
    except (OSError, ValueError):
        raise LstmimgError(f"{run / 'config.json'}: missing or unreadable; cannot resume this run") from None
    payload = read_payload(run / "last.pt")
    state = payload.get("train_state")
    if not isinstance(state, dict):
        raise LstmimgError(f"{run / 'last.pt'}: holds no training state to resume from")
    if state["next_epoch"] > config["train"]["epochs"] and (run / "summary.json").is_file():
        raise LstmimgError(f"{run}: already finished ({config['train']['epochs']} epochs)")
    return config["data"], ModelConfig.from_dict(config["model"]), TrainConfig.from_dict(config["train"]), {**state, "state_dict": payload["state_dict"]}


def restore_state(state: dict, net, optimizer, schedule, generator: torch.Generator) -> TrainProgress:
    """Put model, optimizer, schedule and RNGs back as they were; returns the run's progress."""
    net.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    generator.set_state(state["epoch_rng"])
    best = state["best"]
    return TrainProgress(
        next_epoch=state["next_epoch"], skip_steps=state["skip_steps"], partial=EpochProgress(**state["partial"]),
        epoch_rng=state["epoch_rng"], rows=list(state["rows"]), best_acc=best["acc"], best_epoch=best["epoch"],
        best_extra=dict(best["extra"]), stale=best["stale"], elapsed=state["elapsed"],
    )
