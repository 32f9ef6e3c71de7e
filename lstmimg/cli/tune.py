"""`lstmimg tune`: search settings within a time budget and score the best and the defaults on a test split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lstmimg.cli.base import app, check_min, err, out, run_guarded


@app.command()
def tune(
    data: Annotated[Path | None, typer.Argument(help="A folder `lstmimg train` accepts (its test/ folder, if any, is the test split). Not with --resume.")] = None,
    time: Annotated[str | None, typer.Option("--time", help="The whole command's budget, the final runs included: 600, 90s, 30m, 1.5h.")] = None,
    trials: Annotated[int | None, typer.Option(help="Stop the search after N finished trials (complete or pruned).")] = None,
    metric: Annotated[str, typer.Option(help="accuracy, or macro_f1 for imbalanced data.")] = "accuracy",
    workers: Annotated[int, typer.Option(help="Trials at once on this machine, each its share of the cores.")] = 1,
    storage: Annotated[str | None, typer.Option(help="An Optuna RDB URL (e.g. postgresql://...) that machines share: each runs this command on one study.")] = None,
    resume: Annotated[Path | None, typer.Option(help="Go on with the study in this tune folder: finished trials are not run again.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="The tune folder. Default: runs/tune/exp, exp2, ...")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler, the trials and the test split.")] = 0,
    seeds: Annotated[int | None, typer.Option(help="Final runs per setting (defaults and best), scored on test. Default: as many as the budget allows, at most 3.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    search: Annotated[str, typer.Option(help="tpe (learns from finished trials, stops bad ones early), random, or full (random, every trial all its epochs): the last two for comparisons.")] = "tpe",
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
):
    """Find the best settings for the data within a time budget, with a test score no trial saw."""

    def work():
        import json

        from lstmimg.config import check_device
        from lstmimg.engine.tune.study import seconds
        from lstmimg.engine.tune.study import tune as run_tune
        from lstmimg.errors import LstmimgError

        check_device(device)
        check_min("--workers", workers, 1)
        if trials is not None:
            check_min("--trials", trials, 1)
        if search not in ("tpe", "random", "full"):
            raise LstmimgError(f"--search {search!r} is not one of: tpe, random, full")
        if resume is not None and data is not None:
            raise LstmimgError("--resume DIR takes the data from the tune folder: give one or the other")
        budget = seconds(time) if time is not None else None
        status = err.status("starting", spinner="dots") if err.is_terminal else None

        def progress(info: dict) -> None:
            if "final" in info:
                line = f"final runs: {info['final']}, seed {info['seed']} ({info['count'] + 1} of {info['total']})"
            else:
                best = f"{info['best']:.4f}" if info["best"] is not None else "-"
                left = f", {info['left'] / 60:.1f} min of search left" if info["left"] is not None else ""
                line = f"trials: {info['done']} done, {info['pruned']} pruned, best val {metric} {best}{left}"
            if status is not None:
                status.update(line)
            else:
                err.print(line, highlight=False, markup=False)

        if status is not None:
            status.start()
        try:
            summary = run_tune(data, budget, trials, out_dir, resume, workers, metric, seed, storage, device, search, progress, seeds)
        finally:
            if status is not None:
                status.stop()
        if json_out:
            sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        else:
            say(summary)

    run_guarded(work)


def say(s: dict) -> None:
    """Defaults against the best on test, what changed, the time used."""
    p = lambda text: out.print(text, markup=False, highlight=False)  # noqa: E731
    name = s["metric"].replace("_", "-")
    p(f"tuned {s['data']} ({s['kind']}s): {s['trials']} trials ({s['pruned']} pruned) in {s['seconds'] / 60:.1f} min"
      + (f" of {s['budget'] / 60:.1f}" if s["budget"] else "") + f"; test split: {s['test_files']} files ({s['test_from']})")
    for label, r in s["final"].items():
        runs = len(r["test"])
        p(f"  {label:<9} test {name} {100 * r['mean']:.2f}%" + (f" ± {100 * r['spread']:.2f} ({runs} seeds)" if runs > 1 else " (1 seed)")
          + ("" if label == "defaults" else f"   val {s['best_val']:.4f} in the search (trial {s['best_trial']})"))
    p(f"  {s['verdict']}")
    if s["changed"]:
        p("  changed: " + ", ".join(f"{k} {v}" for k, v in s["changed"].items()))
    p(f"  run: {s['run']}")
    p(f"  reproduce: {s['command']}")
    p(f"  trials: {Path(s['tune_dir']) / 'trials.jsonl'}, picture: {Path(s['tune_dir']) / 'search.png'}, settings: {Path(s['tune_dir']) / 'best.json'}")
