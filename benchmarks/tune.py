"""`lstmimg tune` against its budget, and against random search and full-training search.

    pip install '.[benchmarks,tune]' && python benchmarks/tune.py --sets digits,clips --time 10m [--search tpe,random,full]
        [--workers N] [--work DIR] [--json FILE]
    python benchmarks/tune.py --sets digits --resume-check 12   # kill -9 after half of 12 trials, --resume, compare

Each run is `lstmimg tune DATA --time T --search S` in a fresh process, timed from outside (the bar: the
wall time within 10% of T). ``--resume-check N``: the same study of N trials (one final seed each) run
whole, and run again killed with SIGKILL once half its trials have finished, then `--resume`d: which
trials ran twice, and the two studies' trials, best val score and test scores side by side. Per run: trials finished and pruned, the defaults' and the best's test score
per seed, which was kept, and the wall time. Sets: the bundled digits and clips, and those of
benchmarks/stopping.py (made there from scikit-image's photographs or drawn).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from stopping import make_set

from lstmimg.engine.tune.study import seconds


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


def finished_rows(out: Path) -> list[dict]:
    """The finished trials of a tune folder's trials.jsonl, in the order they finished."""
    rows = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("state") in ("complete", "pruned")]


def resume_check(data: Path, trials: int, work: Path, seed: int) -> dict:
    """The study of ``trials`` trials run whole, and killed (SIGKILL to its process group) after half,
    then resumed: what each reached, and which trials the resumed one ran again."""
    base = [sys.executable, "-m", "lstmimg", "tune", str(data), "--trials", str(trials), "--seed", str(seed), "--seeds", "1", "--json"]
    whole, killed = work / "whole", work / "killed"
    for out in (whole, killed):
        subprocess.run(["rm", "-rf", str(out)], check=True)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    a = subprocess.run([*base, "--out", str(whole)], capture_output=True, text=True, cwd=work)
    wall_whole = time.perf_counter() - t0
    if a.returncode:
        raise SystemExit(f"tune failed ({a.returncode}): {a.stderr[-2000:]}")
    t0 = time.perf_counter()
    proc = subprocess.Popen([*base, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work, start_new_session=True)
    while proc.poll() is None and not ((killed / "trials.jsonl").exists() and len(finished_rows(killed)) >= trials // 2):
        time.sleep(0.2)
    time.sleep(3.0)  # into the next trial: the kill lands mid-trial
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_rows(killed)
    b = subprocess.run([sys.executable, "-m", "lstmimg", "tune", "--resume", str(killed), "--json"], capture_output=True, text=True, cwd=work)
    wall_killed = time.perf_counter() - t0
    if b.returncode:
        raise SystemExit(f"tune --resume failed ({b.returncode}): {b.stderr[-2000:]}")
    sa, sb = json.loads(a.stdout), json.loads(b.stdout)
    after = finished_rows(killed)
    numbers = [r["trial"] for r in after]

    def table(rows):
        return [(r["trial"], r["state"], r.get("value"), json.dumps(r.get("settings"), sort_keys=True)) for r in rows]

    return {"trials": trials, "killed_after": len(before), "finished_after_resume": len(after), "run_twice": len(numbers) - len(set(numbers)),
            "redone_after_kill": sb["redone_after_kill"], "same_trials": table(finished_rows(whole)) == table(after),
            "same_settings_in_order": [t[3] for t in table(finished_rows(whole))] == [t[3] for t in table(after)],
            "best_val": {"whole": sa["best_val"], "resumed": sb["best_val"]}, "chosen": {"whole": sa["chosen"], "resumed": sb["chosen"]},
            "test": {"whole": {k: v["test"] for k, v in sa["final"].items()}, "resumed": {k: v["test"] for k, v in sb["final"].items()}},
            "settings": {"whole": sa["settings"], "resumed": sb["settings"]}, "wall_s": {"whole": round(wall_whole, 1), "killed_and_resumed": round(wall_killed, 1)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="digits,clips")
    parser.add_argument("--time", default="10m")
    parser.add_argument("--search", default="tpe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-tune-bench"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tune.json"))
    parser.add_argument("--resume-check", type=int, metavar="N", help="kill -9 a study of N trials half way, resume it, compare with it run whole")
    args = parser.parse_args()
    results = json.loads(args.json.read_text()) if args.json.exists() else {"machine": f"{os.cpu_count()} cores", "runs": []}
    if args.resume_check:
        for name in args.sets.split(","):
            record = {"set": name, "seed": args.seed, **resume_check(make_set(name, args.work), args.resume_check, args.work / "resume" / name, args.seed)}
            results.setdefault("resume", []).append(record)
            print(json.dumps(record, indent=1), flush=True)
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return
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
