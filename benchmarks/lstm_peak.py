"""What fraction of the machine's peak the fused LSTM reaches.

    python benchmarks/lstm_peak.py [--device cuda] [--json FILE]

The peak is measured, not taken from a spec sheet: the best of large square matrix products (the
same library the LSTM's gate products run on) in fp32 and, on CUDA, bf16. The LSTM is one ``nn.LSTM``
layer (cuDNN on GPU, oneDNN on CPU) at a few sizes, timed forward and forward+backward. FLOPs: each
step of each sequence does two products per gate, ``2 * 4H * (I + H)`` multiply-adds forward, and
backward about twice that.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from lstmimg.bench.timing import measure


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()`` after two warm-up calls."""
    return measure(fn, repeats, warmup=2, device=device).median


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, repeats)


def lstm_rate(device: torch.device, hidden: int, batch: int, steps: int, dtype: torch.dtype, backward: bool, repeats: int) -> float:
    lstm = nn.LSTM(hidden, hidden, batch_first=True).to(device)
    x = torch.randn(batch, steps, hidden, device=device, requires_grad=backward)
    macs = 4 * hidden * (hidden + hidden) * batch * steps

    def run():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out, _ = lstm(x)
        if backward:
            out.float().sum().backward()

    flops = 2 * macs * (3 if backward else 1)
    return flops / timed(run, device, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: TF32 would raise the matmul peak, not the LSTM's
    torch.backends.cudnn.allow_tf32 = False
    dtypes = [torch.float32] + ([torch.bfloat16] if gpu else [])
    n, repeats = (8192, 20) if gpu else (2048, 5)
    sizes = [(512, 256, 64), (1024, 256, 64), (1024, 1024, 32)] if gpu else [(256, 64, 32), (512, 64, 32)]
    result = {"device": torch.cuda.get_device_name(0) if gpu else "cpu", "torch": torch.__version__, "rows": []}
    for dtype in dtypes:
        peak = matmul_peak(device, dtype, n, repeats)
        name = str(dtype).replace("torch.", "")
        result[f"matmul_peak_tflops_{name}"] = round(peak / 1e12, 3)
        for hidden, batch, steps in sizes:
            for backward in (False, True):
                rate = lstm_rate(device, hidden, batch, steps, dtype, backward, repeats)
                row = {"dtype": name, "hidden": hidden, "batch": batch, "steps": steps, "pass": "fwd+bwd" if backward else "fwd",
                       "tflops": round(rate / 1e12, 3), "fraction_of_peak": round(rate / peak, 3)}
                result["rows"].append(row)
                print(f"{name:<9} H={hidden:<5} B={batch:<5} T={steps:<3} {row['pass']:<8} {row['tflops']:>8.3f} TFLOP/s  {row['fraction_of_peak']:.1%} of {peak / 1e12:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
