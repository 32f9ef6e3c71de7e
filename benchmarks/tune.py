"""`lstmimg tune` against its budget, and against random search and full-training search.

    pip install '.[benchmarks,tune]' && python benchmarks/tune.py --sets digits,clips --time 10m [--search tpe,random,full]
        [--workers N] [--work DIR] [--json FILE]

Each run is `lstmimg tune DATA --time T --search S` in a fresh process, timed from outside (the bar: the
wall time within 10% of T). Per run: trials finished and pruned, the defaults' and the best's test score
per seed, which was kept, and the wall time. Sets: the bundled digits and clips, and those of
benchmarks/stopping.py (made there from scikit-image's photographs or drawn).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from stopping import make_set

from lstmimg.engine.tune import seconds


def run(data: Path, budget: str, search: str, out: Path, seed: int, workers: int = 1) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lstmimg", "tune", str(data), "--time", budget, "--search", search, "--out", str(out), "--seed", str(seed), "--json",
                           "--workers", str(workers)],
                          capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"tune failed ({proc.returncode}): {proc.stderr[-2000:]}")
    s = json.loads(proc.stdout)
    return {"wall_s": round(wall, 1), "budget_s": seconds(budget), "wall_over_budget": round(wall / seconds(budget), 3), "trials": s["trials"], "pruned": s["pruned"],
            "best_val": s["best_val"], "chosen": s["chosen"], "changed": s["changed"], "verdict": s["verdict"], "seeds": s["seeds"],
            "test": {k: v["test"] for k, v in s["final"].items()}, "test_mean": {k: round(100 * v["mean"], 2) for k, v in s["final"].items()},
            "test_spread": {k: round(100 * v["spread"], 2) for k, v in s["final"].items()}, "command": s["command"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="digits,clips")
    parser.add_argument("--time", default="10m")
    parser.add_argument("--search", default="tpe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-tune-bench"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tune.json"))
    args = parser.parse_args()
    results = json.loads(args.json.read_text()) if args.json.exists() else {"machine": f"{os.cpu_count()} cores", "runs": []}
    for name in args.sets.split(","):
        data = make_set(name, args.work)
        for search in args.search.split(","):
            out = args.work / "tunes" / f"{name}-{search}-{args.time}-{args.seed}-w{args.workers}"
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            record = {"set": name, "search": search, "seed": args.seed, "workers": args.workers, **run(data, args.time, search, out, args.seed, args.workers)}
            results["runs"].append(record)
            print(f"{name:<9} {search:<6} wall {record['wall_s']:.0f} s / {record['budget_s']:.0f} s ({record['wall_over_budget']:.3f})  trials {record['trials']} "
                  f"(pruned {record['pruned']})  test " + "  ".join(f"{k} {v:.2f} ± {record['test_spread'][k]:.2f}" for k, v in record["test_mean"].items())
                  + f"  kept {record['chosen']}", flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
