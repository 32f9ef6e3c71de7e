"""What a torchvision backbone costs at each input size, on this machine: the measurement behind the
input size lstmimg picks with ``--pretrained``.

    python benchmarks/backbone_size.py [--sizes 64,112,160,224] [--backbones resnet18,mobilenet_v3_small] [--json FILE]

For each backbone and square input side: milliseconds per image of a frozen forward pass (eval mode, no
gradients, batch 32: what the feature cache pays once per image or frame) and of a training step
(forward and backward, batch 16: what every epoch pays when the backbone trains), medians of
``--repeats`` timings after a warm-up, side by side in one process. Random weights: the cost does not
depend on the values.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import torch


def per_image_ms(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up: oneDNN picks its kernels on the first call
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) / batch * 1000, 3)


def frozen(net: torch.nn.Module, x: torch.Tensor) -> None:
    net.eval()
    with torch.no_grad():
        net(x)


def step(net: torch.nn.Module, x: torch.Tensor) -> None:
    net.train()
    net.zero_grad()
    net(x).mean().backward()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,112,160,224")
    parser.add_argument("--backbones", default="resnet18,mobilenet_v3_small")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    from lstmimg.models.backbones import build_backbone

    results: dict = {"threads": torch.get_num_threads()}
    for name in args.backbones.split(","):
        net = build_backbone(name)
        for side in map(int, args.sizes.split(",")):
            frozen_x, train_x = torch.rand(32, 3, side, side), torch.rand(16, 3, side, side)
            row = {"frozen_ms_per_image": per_image_ms(partial(frozen, net, frozen_x), 32, args.repeats), "train_ms_per_image": per_image_ms(partial(step, net, train_x), 16, args.repeats)}
            results.setdefault(name, {})[str(side)] = row
            print(f"{name:20s} {side:4d} px  frozen {row['frozen_ms_per_image']:8.3f} ms/image  train {row['train_ms_per_image']:8.3f} ms/image", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
