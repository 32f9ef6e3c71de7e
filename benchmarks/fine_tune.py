"""Freezing, then fine-tuning a pretrained backbone: which ``--backbone-lr-scale`` to default to.

    pip install '.[benchmarks]' && python benchmarks/fine_tune.py [--json FILE]

This machine cannot download ImageNet weights, so the "pretrained" backbone is made here: a plain
torchvision resnet18 trained on 48x48 crops of 7 of scikit-image's real photographs (the source task).
The target task is crops of the 7 other photographs (``user_sets.photo_crops``: val crops from parts
of each photo never trained on). On the target, ``lstmimg train --model cnn_lstm --backbone resnet18
--backbone-weights SOURCE`` is run frozen throughout (with its cached features, so without augmentation,
and with ``--no-feature-cache``, augmented), frozen for 10 epochs and then fine-tuned with
``--unfreeze-after 10`` at several ``--backbone-lr-scale``, and from scratch (random backbone), each in
a fresh process: val accuracy and wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import PHOTOS, photo_crops

SOURCE, TARGET = PHOTOS[::2], PHOTOS[1::2]


def pretrain(data: Path, out: Path, epochs: int = 12) -> float:
    """A plain resnet18 (its own 1000-way head, labels 0..6) trained on the source crops; its state
    dict fits ``--backbone-weights``. Returns the source val accuracy."""
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    def load(split):
        xs, ys = [], []
        for label, name in enumerate(SOURCE):
            for f in sorted((data / split / name).iterdir()):
                xs.append(np.asarray(Image.open(f).convert("RGB")))
                ys.append(label)
        return torch.tensor(np.stack(xs)).permute(0, 3, 1, 2).float().div(255), torch.tensor(ys)

    torch.manual_seed(0)
    (xt, yt), (xv, yv) = load("train"), load("val")
    net = torchvision.models.resnet18(weights=None)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(xt)).split(32):
            x = xt[idx]
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
            loss = torch.nn.functional.cross_entropy(net(x), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xv).argmax(1) == yv).float().mean().item()
    torch.save(net.state_dict(), out)
    return acc


def train(data: Path, out: Path, *extra: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lstmimg", "train", str(data), "--out", str(out), "--model", "cnn_lstm", "--backbone", "resnet18", *extra],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    summary = json.loads((out / "summary.json").read_text())
    return {"val_accuracy": summary["val_accuracy"], "wall_s": round(time.perf_counter() - t0, 1), "epochs": summary["epochs"], "args": list(extra)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--scales", default="0.01,0.1,1", help="comma-separated --backbone-lr-scale values; empty: none")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of the frozen runs")
    parser.add_argument("--no-scratch", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-fine-tune-"))
    photo_crops(work / "source", 64, 16, seed=11, side=48, photos=SOURCE)
    photo_crops(work / "target", 48, 12, seed=12, side=48, photos=TARGET)
    weights = work / "source_resnet18.pt"
    results: dict = {"source_val_accuracy": round(pretrain(work / "source", weights), 4)}
    w = ["--backbone-weights", str(weights)]
    if not args.no_scratch:
        results["scratch"] = train(work / "target", work / "runs" / "scratch")
    for seed in args.seeds.split(","):
        tag = "" if seed == "0" else f"_seed{seed}"
        results[f"frozen{tag}"] = train(work / "target", work / "runs" / f"frozen{seed}", *w, "--freeze-backbone", "--seed", seed)
        # augmentation needs the images, so the backbone runs every epoch: what cached (un-augmented) features give up
        results[f"frozen_no_feature_cache{tag}"] = train(work / "target", work / "runs" / f"frozen_aug{seed}", *w, "--freeze-backbone", "--no-feature-cache", "--seed", seed)
    for scale in filter(None, args.scales.split(",")):
        results[f"unfreeze_after_10_scale_{scale}"] = train(work / "target", work / "runs" / f"s{scale}", *w, "--freeze-backbone", "--unfreeze-after", "10", "--backbone-lr-scale", scale)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
