"""TensorBoard: a run's event files in its run folder, when the ``tensorboard`` package is installed.

``tensorboard --logdir runs`` then shows every run: the training loss and learning rate of every step,
the epoch's train and val loss and accuracy, its time and samples/s, the hyper-parameters with the final
figures (the HParams view), and the confusion matrix and the mistakes gallery as images. Without the
package nothing is imported and nothing is written. It listens to the same events as the progress
display (``fit``'s callback), on rank 0 only; every scalar is logged at the global step (epochs at the
step they ended on), so a resumed run purges what the killed process logged after its checkpoint and no
step appears twice.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def available() -> bool:
    """Whether the tensorboard package is installed (found, not imported)."""
    try:
        return importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # an import hook that hides it, or a stub without a spec
        return False


class BoardLog:
    """A ``fit`` callback that writes TensorBoard event files into the run folder."""

    def __init__(self):
        self.writer = None
        self.steps = 1  # optimizer steps an epoch

    def __call__(self, event: str, info: dict) -> None:
        if event == "start":
            from torch.utils.tensorboard import SummaryWriter

            self.steps = max(1, info["steps"])
            resumed = info.get("resumed_at")
            purge = self.global_step(*resumed) + 1 if resumed else None  # what the killed process logged after last.pt goes
            self.writer = SummaryWriter(log_dir=info["run_dir"], purge_step=purge)
        elif self.writer is None:
            return
        elif event == "step":
            step = self.global_step(info["epoch"], info["step"])
            self.writer.add_scalar("train/step_loss", info["step_loss"], step)
            self.writer.add_scalar("train/lr", info["lr"], step)
        elif event == "epoch":
            step = self.global_step(info["epoch"], self.steps)
            for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples_per_s", "val_clip_accuracy"):
                if key in info:
                    group = "time" if key in ("seconds", "samples_per_s") else "epoch"
                    self.writer.add_scalar(f"{group}/{key}", float(info[key]), step)
            self.writer.flush()
        elif event == "end":
            self.finish(info)

    def global_step(self, epoch: int, step: int) -> int:
        return (epoch - 1) * self.steps + step

    def finish(self, summary: dict) -> None:
        """The hyper-parameters with the final figures, the confusion matrix and the mistakes gallery."""
        import json

        import numpy as np
        from PIL import Image

        run = Path(summary["run_dir"])
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
        hparams = {f"{group}.{k}": v if isinstance(v, (int, float, str, bool)) else str(v)
                   for group in ("model", "train") for k, v in config.get(group, {}).items() if v is not None}
        metrics = {"hparam/val_accuracy": summary["val_accuracy"], "hparam/best_epoch": summary["best_epoch"], "hparam/train_seconds": summary["train_seconds"]}
        self.writer.add_hparams(hparams, metrics, run_name=".")
        for name in ("confusion_matrix", "mistakes"):
            picture = run / f"{name}.png"
            if picture.is_file():
                with Image.open(picture) as img:
                    self.writer.add_image(name, np.asarray(img.convert("RGB")), 0, dataformats="HWC")
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
