"""Clips of every 2nd frame against segment sampling, on videos of varying length: what `train` should choose.

    pip install '.[benchmarks]' && python benchmarks/clip_plan.py [--sets variable,longorder,longvar,slowpans] [--seeds 0,1,2]
        [--tree DIR] [--work DIR] [--json FILE]

Per set: the frame counts of its training videos, what the plan chooses from their headers
(``engine.train.plan.plan_clips``), and ``lstmimg train`` with ``--frame-stride 2`` (8-frame clips of every
2nd frame) and ``--frame-stride 0`` (8 frames spread over each whole video), each seed a fresh process
timed from outside (val accuracy, wall seconds, best epoch); and a plain PyTorch CNN+LSTM reading 16
frames spread over each video (benchmarks/stopping.py's). Sets (benchmarks/stopping.py ``make_set``):
``variable`` and ``longorder`` (order-only motion over 10-30 and 20-40 frames, 40 val videos), ``longvar``
(30-90 frames, 60 val), ``slowpans`` (a camera panning or zooming slowly over photographs, 24-72 frames:
the class shows in any few frames, 60 val). ``--tree``: the lstmimg checkout to run (a git worktree).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from stopping import make_set, plain_run, train_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="variable,longorder,longvar,slowpans")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strides", default="2,0")
    parser.add_argument("--plain", action="store_true", help="also the plain CNN+LSTM (seed 0)")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-clip-plan"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/clip_plan.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree))
    from lstmimg.config import TrainConfig
    from lstmimg.data import clips as V
    from lstmimg.data.dataset import describe
    from lstmimg.engine.train.plan import plan_clips

    results = json.loads(args.json.read_text()) if args.json.exists() else {"machine": f"{os.cpu_count()} cores", "sets": {}}
    for name in args.sets.split(","):
        data = make_set(name, args.work)
        described = describe(data, TrainConfig())
        counts = V.frame_counts(described.splits["train"].paths, samples=10**6)
        chosen, note = plan_clips(TrainConfig(), described)
        entry = results["sets"].setdefault(name, {"runs": []})
        entry.update(frames={"min": min(counts), "median": statistics.median(counts), "max": max(counts)}, plan_stride=chosen, plan_note=note)
        print(f"{name}: {min(counts)}-{max(counts)} frames (median {statistics.median(counts)}), the plan chooses --frame-stride {chosen}", flush=True)
        for stride in args.strides.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                run = train_run(data, args.work / "runs" / f"{name}-s{stride}-{seed}", seed, args.tree, ["--frame-stride", stride, "--no-report"])
                record = {"stride": int(stride), "seed": seed, **{k: run[k] for k in ("val_accuracy", "wall_s", "train_seconds", "epochs", "best_epoch", "stop_reason")}}
                entry["runs"] = [r for r in entry["runs"] if (r.get("stride"), r["seed"]) != (record["stride"], seed)] + [record]
                print(f"  --frame-stride {stride} seed {seed}: val {100 * run['val_accuracy']:.2f}%  wall {run['wall_s']:.1f} s  epochs {run['epochs']} (best {run['best_epoch']})", flush=True)
                args.json.write_text(json.dumps(results, indent=1) + "\n")
        if args.plain:
            entry["plain"] = plain_run(data, "video", 0, args.work)
            print(f"  plain CNN+LSTM, 16 frames spread: val {100 * entry['plain']['val_accuracy']:.2f}% (best epoch {100 * entry['plain']['best_epoch_accuracy']:.2f}%) "
                  f"wall {entry['plain']['wall_s']:.1f} s", flush=True)
        for stride in args.strides.split(","):
            accs = [r["val_accuracy"] for r in entry["runs"] if r["stride"] == int(stride)]
            walls = [r["wall_s"] for r in entry["runs"] if r["stride"] == int(stride)]
            if accs:
                print(f"  stride {stride}: mean val {100 * statistics.mean(accs):.2f}% over {len(accs)} seeds (min {100 * min(accs):.2f}), median wall {statistics.median(walls):.1f} s", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
