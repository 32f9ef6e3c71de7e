"""Train model variants on the bundled digits, one after another, and record val accuracy and time.

    python benchmarks/train_variants.py [--seeds 0 1 2] [--only NAME ...] [--out FILE]

This is how lstmimg's defaults were chosen (and how --fuse-global was judged): every variant trains on
the same split with the same seed, in the same process, so the figures compare side by side.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.engine.train.training import fit
from lstmimg.sample import sample_data_dir

VARIANTS = {
    "default (cnn_lstm)": ({}, {}),
    "cnn_lstm --fuse-global": ({"fuse_global": True}, {}),
    "cnn_lstm --pool last": ({"pool": "last"}, {}),
    "cnn_lstm --no-augment": ({}, {"augment": False}),
    "cnn_lstm --rnn gru": ({"rnn": "gru"}, {}),
    "cnn_lstm --epochs 20": ({}, {"epochs": 20}),
    "region_lstm --scan rows": ({"name": "region_lstm"}, {}),
    "region_lstm --scan rows --fuse-global": ({"name": "region_lstm", "fuse_global": True}, {}),
    "region_lstm --scan rows --pool last": ({"name": "region_lstm", "pool": "last"}, {}),
    "region_lstm --scan snake --patch 4": ({"name": "region_lstm", "scan": "snake"}, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_variants.json")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="seeds to run each variant with")
    args = parser.parse_args()
    data = sample_data_dir() / "digits"
    results = []
    for name, (model_kw, train_kw) in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                summary = fit(data, ModelConfig(**model_kw), TrainConfig(**train_kw, seed=seed), out=Path(tmp) / "run")
                wall = time.perf_counter() - t0
            row = {"variant": name, "seed": seed, "val_accuracy": summary["val_accuracy"], "best_epoch": summary["best_epoch"], "train_seconds": summary["train_seconds"], "wall_seconds": round(wall, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
    means = {}
    for row in results:
        means.setdefault(row["variant"], []).append(row["val_accuracy"])
    summary_rows = [{"variant": k, "seeds": len(v), "mean_val_accuracy": round(sum(v) / len(v), 4), "min": min(v), "max": max(v)} for k, v in means.items()]
    for row in summary_rows:
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads", "torch": torch.__version__, "seeds": args.seeds, "results": results, "summary": summary_rows}
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
