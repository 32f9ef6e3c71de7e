"""Train the digits model that ships with lstmimg (lstmimg/assets/digits.pt), reproducibly.

    python scripts/train_bundled_model.py

It trains the default model with the default settings and seed on the bundled digits, exactly what
`lstmimg train` does, then stores the best checkpoint without machine-specific metadata.
`lstmimg predict` uses it when no run folder and no --model is given.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from lstmimg.checkpoint import BUNDLED_MODEL, load_checkpoint, save_checkpoint
from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.engine import fit
from lstmimg.sample import sample_data_dir


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        summary = fit(sample_data_dir() / "digits", ModelConfig(), TrainConfig(), out=Path(tmp) / "run")
        best = load_checkpoint(summary["best_checkpoint"])
        meta = {"trained_on": "bundled digits (sample_data/digits)", "val_accuracy": summary["val_accuracy"], "seed": TrainConfig().seed}
        BUNDLED_MODEL.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(BUNDLED_MODEL, best.model, best.config, best.classes, best.mean, best.std, "image", meta)
    print(f"wrote {BUNDLED_MODEL} (val accuracy {summary['val_accuracy']:.4f})")


if __name__ == "__main__":
    main()
