"""Imbalanced classes (issue 32): plain cross-entropy against a class-weighted loss and a balanced
sampler, macro-F1 on a balanced val split of real photos.

    pip install '.[benchmarks]' && python benchmarks/imbalance.py [--seeds 0 1 2] [--json FILE]

Crops (40x40) of 6 of scikit-image's photographs, one class each (user_sets.photo_crops), train counts
from 200 down to 10 (1:20), val 20 a class from parts of the photos never trained on. `fit` with the
defaults (plain cross-entropy), with ``class_weights="auto"`` (inverse frequency) and with
``sampler="balanced"`` (every class drawn equally often), over ``--seeds``:
val accuracy, balanced accuracy and macro-F1 of each run's best checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import photo_crops

PHOTOS = ("astronaut", "brick", "camera", "coffee", "grass", "rocket")
COUNTS = (200, 110, 60, 35, 20, 10)


def main() -> None:
    from lstmimg import ModelConfig, TrainConfig, fit

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-imbalance-"))
    for name, count in zip(PHOTOS, COUNTS):
        photo_crops(work / "tmp" / name, count, 20, seed=3, photos=(name,))
        for split in ("train", "val"):
            (work / "data" / split).mkdir(parents=True, exist_ok=True)
            shutil.move(work / "tmp" / name / split / name, work / "data" / split / name)
    variants = {"cross_entropy": {}, "class_weighted": {"class_weights": "auto"}, "balanced_sampler": {"sampler": "balanced"}}
    runs: dict = {name: [] for name in variants}
    for seed in args.seeds:
        for name, options in variants.items():
            s = fit(work / "data", ModelConfig(), TrainConfig(seed=seed, report=False, tensorboard=False, **options), out=work / f"{name}{seed}")
            runs[name].append({"val_accuracy": s["val_accuracy"], "val_balanced_accuracy": s["val_balanced_accuracy"], "val_macro_f1": s["val_macro_f1"]})
            print(name, seed, runs[name][-1], flush=True)
    results = {"counts": dict(zip(PHOTOS, COUNTS)), "runs": runs,
               "mean_macro_f1": {k: round(statistics.mean(r["val_macro_f1"] for r in v), 4) for k, v in runs.items()}}
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
