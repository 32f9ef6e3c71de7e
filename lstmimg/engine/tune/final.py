"""The end of `lstmimg tune`: the defaults and the best settings trained again and scored on the test
split, and the picture of the search."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstmimg.engine.tune.space import configs

MARGIN = 0.97  # of a final run's share of time: what its time limit is (loading and scoring take the rest)


def score_on_test(run_summary: dict, test_files: list[str], data: Path, metric: str, device: str) -> float:
    """The metric of a run's best checkpoint on the test files."""
    from lstmimg.data.folders import Split
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.review.evaluation import score_files
    from lstmimg.engine.review.metrics import classification_report

    ckpt = load_checkpoint(run_summary["best_checkpoint"])
    classes = list(ckpt.classes)
    labels = [classes.index(Path(f).parent.name) for f in test_files]
    labelled, probs, _ = score_files(ckpt, Split([Path(f) for f in test_files], labels, classes), data, device)
    truth, pred = labelled.sets["eval"].labels.long().cpu(), probs.argmax(1).cpu()
    if metric == "accuracy":
        return float((pred == truth).float().mean())  # not rounded: differences of one file are compared with spreads
    return float(classification_report(truth, pred, classes)[metric])


def spread(values: list[float]) -> float:
    """Half the range of ``values`` (0 for one)."""
    return (max(values) - min(values)) / 2 if values else 0.0


def final_runs(out: Path, settings: dict, candidates: dict[str, dict], seeds: int, limit: float | None, device: str,
               progress: Callable[[dict], None] | None = None, overhead: float = 0.0, more: int = 0) -> dict:
    """Each candidate's settings trained again ``seeds`` times (the first as a run folder under
    runs/train, listed by `lstmimg runs`; the others under ``out/final``) and scored on the test split;
    ``limit``: the seconds all of them share; ``overhead``: a run's seconds outside its epochs (loading
    the data, then scoring the test split); ``more``: rounds of seeds added when the planned ones leave
    time for another (runs that stop early leave time the estimate could not know of)."""
    from lstmimg.engine.train.training import fit
    from lstmimg.runs import RUNS_DIR, new_run_dir

    kind, data = settings["kind"], Path(settings["data"])
    results: dict[str, dict] = {name: {"settings": p, "test": [], "runs": []} for name, p in candidates.items()}
    started, rounds = time.time(), []
    for s in range(seeds + more):
        left = None if limit is None else limit - (time.time() - started)
        if s >= seeds and (left is None or left < 1.05 * max(rounds)):
            break
        planned = max(seeds, s + 1)
        t_round = time.time()
        for k, (name, p) in enumerate(candidates.items()):
            runs_left = (planned - s) * len(candidates) - k
            share = None if limit is None else max(1.0, (limit - (time.time() - started)) / runs_left * MARGIN - overhead)
            model_cfg, train_cfg = configs(p, kind)
            train_cfg = train_cfg.replace(exclude=tuple(settings["test_files"]), time_limit=share, seed=settings["seed"] + s, device=device, tensorboard=False, report=False)
            where = new_run_dir(None, base=RUNS_DIR, name=f"tune-{out.name}-{name}") if s == 0 else out / "final" / f"{name}-seed{settings['seed'] + s}"
            if progress:
                progress({"final": name, "seed": settings["seed"] + s, "count": s * len(candidates) + k, "total": planned * len(candidates)})
            summary = fit(data, model_cfg, train_cfg, out=where, exist_ok=s > 0)
            results[name]["test"].append(score_on_test(summary, settings["test_files"], data, settings["metric"], device))
            results[name]["runs"].append(summary["run_dir"])
        rounds.append(time.time() - t_round)
    for r in results.values():
        r["mean"], r["spread"] = float(np.mean(r["test"])), spread(r["test"])
    return results


def picture(out: Path, metric: str) -> Path:
    """``search.png`` from ``trials.jsonl`` (``plots.plot_search``). A budget too short for any trial to
    start leaves no ``trials.jsonl``: the chart is then empty, and says so."""
    from lstmimg.engine.review.plots import plot_search

    rows = out / "trials.jsonl"
    ends = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()] if rows.exists() else []
    plot_search(ends, metric, out / "search.png")
    return out / "search.png"
