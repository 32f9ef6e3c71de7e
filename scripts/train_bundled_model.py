"""Train the models that ship with lstmimg (lstmimg/assets/), reproducibly.

    python scripts/train_bundled_model.py [digits] [clips]

Each is the default model trained with the default settings and seed on bundled sample data, exactly
what `lstmimg train` (digits) and `lstmimg train sample_data/clips` (clips) do; the best checkpoint is
stored without machine-specific metadata. `lstmimg predict` / `lstmimg video` use them when no run
folder and no --model is given.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lstmimg.checkpoint import save_checkpoint
from lstmimg.config import TrainConfig
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.engine.train.training import fit
from lstmimg.runs import BUNDLED_MODELS
from lstmimg.sample import sample_data_dir

MODELS = {"digits": "image", "clips": "video"}  # sample data folder -> kind


def train_bundled(name: str) -> None:
    kind = MODELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        summary = fit(sample_data_dir() / name, None, TrainConfig(), out=Path(tmp) / "run")
        best = load_checkpoint(summary["best_checkpoint"])
    keep = {k: v for k, v in best.meta.items() if k in ("clip_len", "frame_stride")}
    meta = {"trained_on": f"bundled {name} (sample_data/{name})", "val_accuracy": summary["val_accuracy"], "seed": TrainConfig().seed, **keep}
    BUNDLED_MODELS[kind].parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(BUNDLED_MODELS[kind], best.model, best.config, best.classes, best.mean, best.std, kind, meta)
    print(f"wrote {BUNDLED_MODELS[kind]} (val accuracy {summary['val_accuracy']:.4f})")


if __name__ == "__main__":
    for name in sys.argv[1:] or list(MODELS):
        train_bundled(name)
