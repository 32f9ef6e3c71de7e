"""Training and inference speed of two checkouts of lstmimg, side by side: the working tree against another
(say, the commit before a refactor), through the public API only, so both trees run the same calls.

    git worktree add /tmp/before HEAD~5
    python benchmarks/tree_speed.py --other /tmp/before [--rounds 5] [--out benchmarks/results/tree_speed.json]

Each round runs one worker process per tree, in alternating order, so that machine noise hits both alike.
A worker times, in one process: `fit` on the bundled digits (2 epochs, fixed batch: decoding, batching,
training, validation), `predict` on the 5,000 digit images, and `classify_video` on 105 bundled clips. The
medians of each figure and the ratio of medians (this tree / the other) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

WORKER = """
import json, sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[1]))
from lstmimg import ModelConfig, TrainConfig, classify_video, fit, predict
from lstmimg.sample import sample_data_dir
data = sample_data_dir()
out = {}
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    summary = fit(data / "digits", ModelConfig(name="cnn_lstm"), TrainConfig(epochs=2, batch_size=64, seed=0), out=Path(tmp) / "run")
    out["fit_s"] = time.perf_counter() - t0
    out["val_accuracy"] = summary["val_accuracy"]
images = sorted((data / "digits").rglob("*.png"))
t0 = time.perf_counter()
results, _ = predict(images, batch_size=64)
out["predict_s"] = time.perf_counter() - t0
clips = sorted((data / "clips").rglob("*.mp4"))[::4]
t0 = time.perf_counter()
for clip in clips:
    classify_video(clip)
out["video_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""


def run(tree: Path, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", WORKER, str(threads)], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, type=Path, help="the other checkout (its root folder)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    trees = {"this": HERE, "other": args.other.resolve()}
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for name in order:
            runs[name].append(run(trees[name], args.threads))
            print(f"round {r + 1} {name}: {runs[name][-1]}", flush=True)
    report = {"rounds": args.rounds, "threads": args.threads, "trees": {k: str(v) for k, v in trees.items()}, "median": {}, "ratio_this_over_other": {}}
    for key in ("fit_s", "predict_s", "video_s"):
        medians = {name: statistics.median(r[key] for r in rows) for name, rows in runs.items()}
        report["median"][key] = {name: round(m, 3) for name, m in medians.items()}
        report["ratio_this_over_other"][key] = round(medians["this"] / medians["other"], 4)
    report["val_accuracy"] = {name: sorted({r["val_accuracy"] for r in rows}) for name, rows in runs.items()}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
