"""Whether mixed precision pays on a GPU, by model size: lstmimg's training step with bf16 autocast
against full precision (fp32, and fp32 with TF32 matmuls), timed side by side.

    python benchmarks/amp.py --device cuda [--json FILE]

The sizes: the default models as the bundled data builds them, the same at larger inputs and batches,
and an lrcn over a resnet18 backbone (random weights: the cost is the same as pretrained ones).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from lstmimg.bench.compute import sample_input
from lstmimg.bench.timing import measure_pair
from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.engine.train.optim import make_optimizer, make_schedule
from lstmimg.engine.train.steps import Recipe, train_one_epoch
from lstmimg.engine.train.trainstate import TrainState
from lstmimg.models.registry import build_model

CASES = [  # name, model config, batch
    ("digits cnn_lstm 28px b64 (bundled)", ModelConfig(name="cnn_lstm", in_channels=1, img_size=(28, 28), num_classes=10), 64),
    ("cnn_lstm 28px b512", ModelConfig(name="cnn_lstm", in_channels=1, img_size=(28, 28), num_classes=10), 512),
    ("cnn_lstm 128px RGB b64", ModelConfig(name="cnn_lstm", in_channels=3, img_size=(128, 128), num_classes=10), 64),
    ("cnn_lstm 128px RGB hidden 512 b256", ModelConfig(name="cnn_lstm", in_channels=3, img_size=(128, 128), num_classes=10, hidden=512), 256),
    ("clips lrcn 64px b32 (bundled)", ModelConfig(name="lrcn", in_channels=3, img_size=(64, 64), num_classes=4), 32),
    ("lrcn 112px b64", ModelConfig(name="lrcn", in_channels=3, img_size=(112, 112), num_classes=4), 64),
    ("lrcn resnet18 112px b32", ModelConfig(name="lrcn", in_channels=3, img_size=(112, 112), num_classes=4, backbone="resnet18"), 32),
]


def step_runner(cfg: ModelConfig, batch: int, device: torch.device, amp: torch.dtype | None, steps: int = 10):
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    x, y = sample_input(cfg, batch), torch.randint(0, cfg.num_classes, (batch,))
    train_cfg = TrainConfig()
    optimizer = make_optimizer(model, train_cfg)
    state = TrainState(model, optimizer, make_schedule(optimizer, train_cfg, 10_000), torch.Generator().manual_seed(0))
    recipe = Recipe(model, nn.CrossEntropyLoss(), [0.5] * cfg.in_channels, [0.25] * cfg.in_channels, device, True, 1.0, amp)

    def run():
        state.step = 0
        train_one_epoch(state, ((x, y) for _ in range(steps)), recipe)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for name, cfg, batch in CASES:
        fp32 = step_runner(cfg, batch, device, None)
        bf16 = step_runner(cfg, batch, device, torch.bfloat16)
        t32, t16 = measure_pair(fp32, bf16, args.repeats, device)
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = measure_pair(fp32, bf16, 3, device)[0]
        torch.backends.cuda.matmul.allow_tf32 = False
        row = {"case": name, "batch": batch, "fp32_step_ms": round(t32.median * 100, 3), "tf32_step_ms": round(tf32.median * 100, 3),
               "bf16_step_ms": round(t16.median * 100, 3), "bf16_speedup": round(t32.median / t16.median, 3)}
        rows.append(row)
        print(f"{name:<38} fp32 {row['fp32_step_ms']:8.3f} ms  tf32 {row['tf32_step_ms']:8.3f} ms  bf16 {row['bf16_step_ms']:8.3f} ms  bf16 speed-up {row['bf16_speedup']:.2f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "torch": torch.__version__, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
