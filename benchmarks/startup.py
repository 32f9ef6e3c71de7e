"""Start-up times of the CLI against `python -c "import torch"`, measured side by side.

    python benchmarks/startup.py [--runs 9] [--model RUN_OR_CHECKPOINT]

Each command runs --runs times, interleaved round-robin so that machine noise hits all alike; the
median and spread (min..max) of wall seconds are printed, and the ratio of medians to `import torch`.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    image = sorted((sample_data_dir() / "digits" / "val" / "7").iterdir())[0]
    lstmimg = shutil.which("lstmimg") or "lstmimg"
    predict = [lstmimg, "predict", str(image)] + (["--model", args.model] if args.model else [])
    commands = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "lstmimg --help": [lstmimg, "--help"],
        "lstmimg predict one.png": predict,
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs + 1):  # the first round warms the file cache and is dropped
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - t0)
    base = statistics.median(times['python -c "import torch"'][1:])
    print(f"{'command':<28} {'median s':>9} {'min..max s':>14} {'x import torch':>15}")
    for name, values in times.items():
        v = values[1:]
        print(f"{name:<28} {statistics.median(v):9.3f} {min(v):6.3f}..{max(v):6.3f} {statistics.median(v) / base:15.2f}")


if __name__ == "__main__":
    main()
