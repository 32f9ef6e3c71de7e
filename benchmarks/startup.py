"""Start-up times of the CLI against `python -c "import torch"`, measured side by side.

    python benchmarks/startup.py [--runs 9] [--model RUN_OR_CHECKPOINT] [--also-with DIR]

Each command runs --runs times, interleaved round-robin so that machine noise hits all alike; the
median and spread (min..max) of wall seconds are printed, the ratio of medians to `import torch`, and
the median of the per-round ratios (each command against the `import torch` run just before it).
``--also-with DIR`` adds `lstmimg predict one.png` with DIR first on PYTHONPATH (say, typer 0.29
installed there with `pip install --target DIR`), measured in the same rounds.

Run it on an installed lstmimg, or after `python -m compileall lstmimg` in a checkout: with
PYTHONDONTWRITEBYTECODE set and an editable install, every start compiles lstmimg's modules again.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

from lstmimg.sample import sample_data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--model", help="run folder or checkpoint for predict (default: the bundled model)")
    parser.add_argument("--also-with", help="also predict with this folder first on PYTHONPATH")
    args = parser.parse_args()
    image = sorted((sample_data_dir() / "digits" / "val" / "7").iterdir())[0]
    lstmimg = shutil.which("lstmimg") or "lstmimg"
    predict = [lstmimg, "predict", str(image)] + (["--model", args.model] if args.model else [])
    commands = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "lstmimg --help": [lstmimg, "--help"],
        "lstmimg predict one.png": predict,
    }
    envs = {name: None for name in commands}
    if args.also_with:
        commands[f"predict one.png, {os.path.basename(args.also_with.rstrip('/'))} first"] = predict
        envs[list(commands)[-1]] = {**os.environ, "PYTHONPATH": args.also_with}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs + 1):  # the first round warms the file cache and is dropped
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=envs[name])
            times[name].append(time.perf_counter() - t0)
    torch_times = times['python -c "import torch"'][1:]
    base = statistics.median(torch_times)
    print(f"{'command':<36} {'median s':>9} {'min..max s':>14} {'x import torch':>15} {'pairs: median x':>16} {'pairs min..max':>15}")
    for name, values in times.items():
        v = values[1:]
        pairs = [a / b for a, b in zip(v, torch_times)]
        print(f"{name:<36} {statistics.median(v):9.3f} {min(v):6.3f}..{max(v):6.3f} {statistics.median(v) / base:15.3f} {statistics.median(pairs):16.3f} {min(pairs):7.2f}..{max(pairs):.2f}")


if __name__ == "__main__":
    main()
