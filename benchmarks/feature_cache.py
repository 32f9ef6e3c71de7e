"""What caching a frozen backbone's features saves: frozen resnet18 at 112 px on a video set.

    pip install '.[benchmarks]' && python benchmarks/feature_cache.py [--epochs 6] [--json FILE]

The order-only video set of ``user_sets.py`` (160 train / 40 val videos, 16 frames), trained at
112x112 by ``lstmimg train --backbone resnet18 --pretrained --freeze-backbone`` with the feature cache
(the default) and with ``--no-feature-cache``, each in a fresh process; the mean epoch time after the
first (from ``metrics.csv``) and the val accuracy. The weights file placed in a temporary torch hub cache
holds resnet18 with its initial (random) weights: this machine cannot download ImageNet's, and the
timing does not depend on the values.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import order_videos


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch
    import torchvision

    from lstmimg.models.backbones import weights_for

    work = Path(tempfile.mkdtemp(prefix="lstmimg-feature-cache-"))
    order_videos(work / "order" / "train", 40, seed=1)
    order_videos(work / "order" / "val", 10, seed=2)
    env = {**os.environ, "TORCH_HOME": str(work / "torch"), "LSTMIMG_OFFLINE": "1"}
    weights = work / "torch" / "hub" / "checkpoints" / weights_for("resnet18").url.rsplit("/", 1)[1]
    weights.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    results = {}
    for name, extra in (("feature_cache", []), ("no_feature_cache", ["--no-feature-cache"])):
        out = work / "runs" / name
        cmd = [sys.executable, "-m", "lstmimg", "train", str(work / "order"), "--backbone", "resnet18", "--pretrained", "--freeze-backbone", "--motion", "none",
               "--img-size", "112", "--epochs", str(args.epochs), "--out", str(out), *extra]
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        with open(out / "metrics.csv") as f:
            seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
        summary = json.loads((out / "summary.json").read_text())
        results[name] = {"epoch_seconds": seconds, "mean_after_first": round(statistics.mean(seconds[1:]), 3), "val_accuracy": summary["val_accuracy"], "wall_s": round(wall, 1)}
    results["ratio"] = round(results["feature_cache"]["mean_after_first"] / results["no_feature_cache"]["mean_after_first"], 4)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
