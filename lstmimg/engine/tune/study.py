"""`lstmimg tune`: the best settings for the user's data within a time budget, and a score no choice saw.

The search is Optuna's (``pip install 'lstmimg[tune]'``): a TPE sampler, which learns from the finished
trials where to look next, and successive halving over epochs (ASHA's rungs at epochs 1, 3, 9, ...: a
trial among the worse at a rung stops there), so bad settings cost an epoch or three, not a run. The
first trial is always the defaults. A trial is a plain ``fit`` of the data less the test files, scored on
val each epoch.

The honest score: a test split that no trial sees and nothing is chosen on: the data's ``test/`` folder,
else a stratified share of the training files set aside once (seeded, listed in ``tune.json``). After the
search, the defaults and the best settings are each trained again (several seeds where the budget allows)
and scored on it, side by side; the best is kept only when it beats the defaults beyond their spread.

A tune folder (``runs/tune/expN``): ``tune.json`` (data, kind, metric, budget, seed, test files, time
spent), ``study.journal`` (Optuna's journal: ``--resume`` goes on from it, ``--workers`` processes share
it), ``trials.jsonl`` (one row per trial and epoch, and one when the trial ends), ``trials/NNNN`` (each
trial's run), ``search.png``, ``final/`` (the side-by-side runs) and ``best.json``.

What is searched lives in ``tune_space``, the final runs and the picture in ``tune_final``; this module
holds the study: the test split, the trials, the budget, resuming and the helper processes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, detect_kind, split_folder, stratified_split
from lstmimg.engine.tune.final import MARGIN, final_runs, picture
from lstmimg.engine.tune.space import configs, defaults, suggest, train_command
from lstmimg.errors import Interrupted, LstmimgError, Terminated
from lstmimg.files import atomic_write_text

TUNE_DIR = Path("runs") / "tune"
SEARCH_SHARE = 0.6  # of --time: the search; the rest trains the defaults and the best again and scores them
TEST_SHARE = 0.2  # of the training files, set aside as the test split when the data has no test/ folder
MAX_SEEDS = 3  # final runs per setting planned, where the budget allows
MAX_ROUNDS = 6  # ... and at most this many where runs end sooner than their trials said and leave time for more
METRICS = ("accuracy", "macro_f1")


class TuneInterrupted(Interrupted):
    """Ctrl-C or SIGTERM during the search: the running trial ended, the study is kept."""


class TrialFailed(Exception):
    """A trial whose settings do not work on this data (the error line is in trials.jsonl): the search goes on."""


def _optuna():
    try:
        import optuna
    except ImportError:
        raise LstmimgError("lstmimg tune needs Optuna: pip install 'lstmimg[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is a line in trials.jsonl, not a traceback on screen
    return optuna


# --- the study ---------------------------------------------------------------------------------------

def _settings(out: Path) -> dict:
    path = out / "tune.json"
    if not path.is_file():
        raise LstmimgError(f"{out}: not a tune folder (no tune.json)")
    return json.loads(path.read_text())


def _save_settings(out: Path, settings: dict) -> None:
    atomic_write_text(out / "tune.json", json.dumps(settings, indent=1) + "\n")


def _test_split(data: Path, kind: str, seed: int) -> tuple[list[str], list[str]]:
    """The test files and why they are the test split: the data's test/ folder, else a stratified share
    of the training files, set aside once."""
    splits = split_folder(data, 0.1, seed, VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS)
    if "test" in splits:
        return [str(p) for p in splits["test"].paths], f"{data / 'test'}"
    _, test = stratified_split(splits["train"], TEST_SHARE, seed + 1)
    return [str(p) for p in test.paths], f"{TEST_SHARE:.0%} of the training files of each class, set aside (seed {seed + 1})"


def open_study(out: Path, settings: dict, storage: str | None = None):
    """The study in ``out`` (Optuna's journal file), or in ``storage`` (an RDB URL shared by several
    machines), created on first use."""
    optuna = _optuna()
    if storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(str((out / "study.journal").resolve())))  # absolute: the lock is a symlink to it, read from its own folder
    sampler = optuna.samplers.RandomSampler(seed=settings["seed"]) if settings["search"] == "random" else optuna.samplers.TPESampler(seed=settings["seed"])
    pruner = optuna.pruners.NopPruner() if settings["search"] in ("random", "full") else optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.create_study(study_name="lstmimg", storage=storage, sampler=sampler, pruner=pruner, direction="maximize", load_if_exists=True)


def _log(out: Path, row: dict) -> None:
    with open(out / "trials.jsonl", "a", encoding="utf-8") as f:  # one short line per write: processes sharing the file do not interleave
        f.write(json.dumps(row) + "\n")


def _finished(study) -> list:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def _running(study, this) -> int:
    """Trials other than ``this`` running now (in any process)."""
    from optuna.trial import TrialState

    return sum(t.state == TrialState.RUNNING and t.number != this.number for t in study.get_trials(deepcopy=False))


def best_trial(study):
    """The complete trial with the highest score, a tie going to the smaller model, then the earlier
    trial; None before any completes."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE and t.value is not None]
    return max(done, key=lambda t: (round(t.value, 6), -t.user_attrs.get("params", 0), -t.number)) if done else None


def search(out: Path, deadline: float | None, max_trials: int | None, storage: str | None = None, device: str = "auto",
           progress: Callable[[dict], None] | None = None) -> None:
    """Run trials of the study in ``out`` until ``deadline`` (``time.time()``) or ``max_trials`` finished
    (complete or pruned, every process counted); several processes may run this on one study."""
    optuna = _optuna()
    from lstmimg.engine.train.training import fit

    settings = _settings(out)
    kind, data, metric = settings["kind"], Path(settings["data"]), settings["metric"]
    study = open_study(out, settings, storage)
    epoch_key = "val_acc" if metric == "accuracy" else "val_macro_f1"
    first_epochs: list[float] = []  # seconds from a trial's start to its first epoch's end

    def objective(trial):
        if max_trials is not None and len(_finished(study)) + _running(study, trial) >= max_trials:  # the others' trials will make up the number
            study.stop()
            raise TrialFailed("enough trials")
        p = suggest(trial, kind, settings["backbones"])
        left = None if deadline is None else deadline - time.time()
        if left is not None and left < (float(np.median(first_epochs)) if first_epochs else 0.0):  # not even one epoch would end in time
            study.stop()
            raise TrialFailed("no time left for a trial")  # not a trial: failed ones are not counted
        model_cfg, train_cfg = configs(p, kind)
        train_cfg = train_cfg.replace(exclude=tuple(settings["test_files"]), time_limit=left, seed=settings["seed"], device=device, report=False, tensorboard=False)
        if settings["search"] == "full":
            train_cfg = train_cfg.replace(patience=0)  # each trial a whole training, as a genetic search does
        started, run = time.time(), out / "trials" / f"{trial.number:04d}"
        facts = {}

        def on_event(event: str, info: dict) -> None:
            if event == "start":
                facts["params"], facts["load_s"] = info.get("params", 0), time.time() - started
            if event != "epoch":
                return
            value = float(info.get(epoch_key, info["val_acc"]))
            if info["epoch"] == 1:
                first_epochs.append(time.time() - started)
            trial.report(value, info["epoch"])
            _log(out, {"trial": trial.number, "epoch": info["epoch"], "value": value, "val_acc": info["val_acc"], "settings": p, "seed": settings["seed"], "pid": os.getpid(),
                       "seconds": round(time.time() - started, 2), "at": round(time.time() - settings["started"], 1), "state": "running"})
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {info['epoch']}")

        end = {"trial": trial.number, "settings": p, "seed": settings["seed"]}
        try:
            summary = fit(data, model_cfg, train_cfg, out=run, callback=on_event, exist_ok=True)
        except optuna.TrialPruned:
            for f in run.glob("*.pt"):
                f.unlink()  # a pruned trial keeps its metrics, not its weights
            _log(out, {**end, "state": "pruned", "seconds": round(time.time() - started, 2), "at": round(time.time() - settings["started"], 1)})
            raise
        except Interrupted:
            study.enqueue_trial(p, skip_if_exists=False)  # not finished: --resume runs it again
            raise
        except LstmimgError as err:
            _log(out, {**end, "state": "failed", "error": str(err), "seconds": round(time.time() - started, 2), "at": round(time.time() - settings["started"], 1)})
            raise TrialFailed(str(err)) from None
        value = summary["val_accuracy"] if metric == "accuracy" else _best_epoch_value(run, summary["best_epoch"], epoch_key)
        trial.set_user_attr("params", facts.get("params", 0))
        trial.set_user_attr("run", str(run))
        trial.set_user_attr("seconds", round(time.time() - started, 2))
        trial.set_user_attr("load_s", round(facts.get("load_s", 0.0), 2))
        _log(out, {**end, "state": "complete", "value": value, "epochs": summary["epochs"], "seconds": round(time.time() - started, 2),
                   "at": round(time.time() - settings["started"], 1)})
        return value

    def after_trial(study, trial) -> None:
        if progress:
            done = _finished(study)
            best = best_trial(study)
            progress({"done": len(done), "pruned": sum(t.state.name == "PRUNED" for t in done), "best": best.value if best else None,
                      "left": None if deadline is None else max(0.0, deadline - time.time())})
        if max_trials is not None and len(_finished(study)) >= max_trials:
            study.stop()

    if max_trials is not None and len(_finished(study)) >= max_trials:
        return
    study.optimize(objective, timeout=None if deadline is None else max(0.0, deadline - time.time()), callbacks=[after_trial], catch=(TrialFailed,),
                   gc_after_trial=True)


def _best_epoch_value(run: Path, epoch: int, column: str) -> float:
    """``column`` of the run's best epoch (its ``metrics.csv`` row)."""
    import csv

    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return float(rows[epoch - 1].get(column) or 0)


def _recover(study, settings: dict) -> int:
    """Trials a killed process left running: failed, and their settings queued again (they were not
    finished, so they are run once more); how many."""
    from optuna.trial import TrialState

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
    return len(stale)


# --- the command ----------------------------------------------------------------------------------------

def tune(data: str | Path | None = None, time_budget: float | None = None, trials: int | None = None, out: str | Path | None = None, resume: str | Path | None = None,
         workers: int = 1, metric: str = "accuracy", seed: int = 0, storage: str | None = None, device: str = "auto", search_kind: str = "tpe",
         progress: Callable[[dict], None] | None = None, seeds: int | None = None) -> dict:
    """Search settings for ``data`` within ``time_budget`` seconds (the final runs included) and/or
    ``trials`` finished trials; returns the summary also written to ``best.json``. ``resume``: go on
    with the study in that tune folder (its data, metric and seed; the budget left, unless
    ``time_budget`` gives a new one). ``workers``: trials at once on this machine, each in its own
    process with its share of the cores. ``storage``: an Optuna RDB URL that processes on several
    machines share. ``search_kind``: tpe (with pruning), random (no sampler model, no pruning) or
    full (random, each trial all its epochs) for comparisons. ``seeds``: the final runs per setting
    (default: as many as the budget allows, at most 3)."""
    t0 = time.time()
    if resume is not None:
        out = Path(resume)
        settings = _settings(out)
        if (out / "best.json").is_file():
            raise LstmimgError(f"{out}: this tune has finished (best.json); nothing to resume")
        if time_budget is None and settings["time_budget"] is not None:
            time_budget = max(0.0, settings["time_budget"] - settings["spent"])
        trials = trials if trials is not None else settings["trials"]
        seeds = seeds if seeds is not None else settings.get("seeds")
        metric = settings["metric"]
    else:
        if data is None:
            raise LstmimgError("lstmimg tune needs a data folder (or --resume DIR)")
        if time_budget is None and trials is None:
            raise LstmimgError("give --time (e.g. 30m) or --trials N: a search needs a bound")
        if metric not in METRICS:
            raise LstmimgError(f"--metric {metric!r} is not one of: {', '.join(METRICS)}")
        if workers < 1:
            raise LstmimgError(f"--workers must be >= 1, got {workers}")
        data = Path(data)
        kind = detect_kind(data)
        _optuna()
        from lstmimg.models.backbones import list_backbones
        from lstmimg.runs import new_run_dir

        test_files, test_from = _test_split(data, kind, seed)
        if not test_files:
            raise LstmimgError(f"{data}: no files for a test split")
        backbones = [b.name for b in list_backbones() if b.cached and b.params <= 12_000_000] if kind == "video" else []
        out = new_run_dir(out, base=TUNE_DIR)
        settings = {"data": str(data.resolve()), "kind": kind, "metric": metric, "seed": seed, "search": search_kind, "time_budget": time_budget, "trials": trials,
                    "test_from": test_from, "test_files": test_files, "backbones": backbones, "seeds": seeds, "spent": 0.0, "started": t0}
        _save_settings(out, settings)
        open_study(out, settings, storage).enqueue_trial(defaults(kind))
    if resume is not None and storage is None:  # a process killed while writing the journal left its lock: nothing else uses this study now
        (out / "study.journal.lock").unlink(missing_ok=True)
    settings["started"] = t0 - settings["spent"]  # trials.jsonl's times run on from the first process
    _save_settings(out, settings)
    study = open_study(out, settings, storage)
    redone = _recover(study, settings) if resume is not None and storage is None else 0
    search_end = None if time_budget is None else t0 + SEARCH_SHARE * time_budget
    try:
        _search_phase(out, search_end, trials, storage, device, workers, progress)
        if time_budget is not None and (trials is None or len(_finished(study)) < trials):
            need = _final_need(study, time_budget, t0 + time_budget - time.time())  # the final runs take less than the budget's rest: search on until they must start
            more = t0 + time_budget - need - time.time()
            if more > max(30.0, 0.05 * time_budget):
                _search_phase(out, time.time() + more, trials, storage, device, workers, progress)
    except (KeyboardInterrupt, Interrupted) as err:
        settings["spent"] = settings["spent"] + time.time() - t0
        _save_settings(out, settings)
        best = best_trial(study)
        so_far = f"best so far: val {metric} {best.value:.4f} (trial {best.number})" if best else "no trial finished"
        e = TuneInterrupted(f"tune stopped after {len(_finished(study))} trials; {so_far}; the study is kept: lstmimg tune --resume {out}")
        e.exit_code = 143 if isinstance(err, Terminated) or getattr(err, "exit_code", 130) == 143 else 130
        raise e from None
    if progress:
        done = _finished(study)
        best = best_trial(study)
        progress({"done": len(done), "pruned": sum(t.state.name == "PRUNED" for t in done), "best": best.value if best else None, "left": 0.0 if time_budget else None})
    settings["spent"] = settings["spent"] + time.time() - t0
    _save_settings(out, settings)
    searched = time.time()
    best = best_trial(study)
    base = defaults(settings["kind"])
    candidates = {"defaults": base}
    if best is not None and _settings_of(best) != base:
        candidates["best"] = _settings_of(best)
    final_limit = None if time_budget is None else max(1.0, time_budget - (searched - t0))
    fixed_seeds = seeds is not None
    if seeds is None and final_limit is None:
        seeds = MAX_SEEDS
    elif seeds is None:
        per_run = [t.user_attrs.get("seconds") for t in study.trials if t.user_attrs.get("seconds") and _settings_of(t) in candidates.values()]
        cost = (float(np.mean(per_run)) if per_run else final_limit / len(candidates)) * len(candidates)
        seeds = int(max(1, min(MAX_SEEDS, final_limit // max(cost, 1e-6))))
    elif seeds < 1:
        raise LstmimgError(f"--seeds must be >= 1, got {seeds}")
    loads = [t.user_attrs["load_s"] for t in study.trials if t.user_attrs.get("load_s")]
    overhead = 2 * float(np.median(loads)) if loads else 0.0  # loading the data, and about as long to score the test split
    more = 0 if fixed_seeds else MAX_ROUNDS - seeds
    results = final_runs(out, settings, candidates, seeds, final_limit, device, progress, overhead, more)
    seeds = len(results["defaults"]["test"])
    d, b = results["defaults"], results.get("best")
    keep_best = b is not None and b["mean"] - d["mean"] > max(d["spread"], b["spread"]) + 1e-9  # as large as the spread is not beyond it
    if b is None:
        verdict = "the best settings found are the defaults"
    elif keep_best:
        verdict = f"the best settings beat the defaults on test by {100 * (b['mean'] - d['mean']):.2f} points, beyond their spread"
    else:
        verdict = f"the best settings are not better than the defaults beyond their spread ({100 * (b['mean'] - d['mean']):+.2f} points): the defaults are kept"
    chosen = "best" if keep_best else "defaults"
    finished = _finished(study)
    summary = {
        "tune_dir": str(out), "data": settings["data"], "kind": settings["kind"], "metric": metric, "test_from": settings["test_from"],
        "test_files": len(settings["test_files"]), "trials": len(finished), "pruned": sum(t.state.name == "PRUNED" for t in finished), "redone_after_kill": redone,
        "best_trial": best.number if best else None, "best_val": best.value if best else None, "chosen": chosen, "verdict": verdict, "seeds": seeds,
        "settings": results[chosen]["settings"], "changed": {k: v for k, v in results[chosen]["settings"].items() if base.get(k) != v},
        "command": train_command(settings["data"], results[chosen]["settings"], settings["kind"]), "run": results[chosen]["runs"][0], "final": results,
        "seconds": round(settings["spent"] + time.time() - searched, 1), "budget": settings["time_budget"],
    }
    picture(out, summary["metric"])
    atomic_write_text(out / "best.json", json.dumps(summary, indent=1) + "\n")
    return summary


def _search_phase(out: Path, end: float | None, trials: int | None, storage: str | None, device: str, workers: int, progress) -> None:
    """``search`` here and in ``workers - 1`` helper processes until ``end``; a stop signal here stops them too."""
    helpers = [_helper(out, end, trials, storage, device, workers) for _ in range(workers - 1)]
    try:
        if workers > 1:
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        search(out, end, trials, storage, device, progress)
    except BaseException:
        for h in helpers:
            h.terminate()
        raise
    finally:
        for h in helpers:
            h.wait()


def _final_need(study, budget: float, rest: float) -> float:
    """Seconds the final runs would take, the defaults and the best each (from their trials' times), at as
    many seeds as fit in ``rest`` seconds (1 to ``MAX_SEEDS``), or the budget's share after the search when
    no trial has completed. Whole seeds only: a rest that fits 2.6 rounds leaves 0.6 of one to the search."""
    best, first = best_trial(study), next((t for t in study.trials if t.number == 0 and t.user_attrs.get("seconds")), None)
    if best is None or first is None:
        return (1 - SEARCH_SHARE) * budget
    costs = [first.user_attrs["seconds"]] + ([best.user_attrs.get("seconds", first.user_attrs["seconds"])] if best.number != 0 else [])
    round_s = sum(costs) / MARGIN
    return max(1, min(MAX_SEEDS, int((rest - 10.0) // round_s))) * round_s + 10.0


def _settings_of(trial) -> dict:
    """A trial's settings as ``suggest`` made them (Optuna keeps the sampled parameters)."""
    return dict(trial.params)


def _helper(out: Path, deadline: float | None, trials: int | None, storage: str | None, device: str, workers: int) -> subprocess.Popen:
    """Another process running trials of the same study, with its share of the cores."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    args = [sys.executable, "-c", "import sys; from lstmimg.engine.tune.study import helper_main; helper_main(sys.argv[1:])", str(os.getpid()), str(out),
            "none" if deadline is None else repr(deadline), "none" if trials is None else str(trials), storage or "", device]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=False)


def helper_main(argv: list[str]) -> None:
    """The entry of a helper process (``_helper``): runs ``search`` until the deadline, dies with its parent."""
    import signal

    from lstmimg.errors import die_with_parent

    parent, out, deadline, trials, storage, device = argv
    die_with_parent(signal.SIGTERM, int(parent))  # the pid the parent gave: one that died before this line is caught too
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    try:
        search(Path(out), None if deadline == "none" else float(deadline), None if trials == "none" else int(trials), storage or None, device)
    except (KeyboardInterrupt, Interrupted):
        pass


def seconds(text: str) -> float:
    """``--time`` as seconds: 90, 90s, 30m, 1.5h."""
    units = {"s": 1, "m": 60, "h": 3600}
    t = str(text).strip().lower()
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise LstmimgError(f"--time {text!r}: give seconds or a number with s, m or h (30m, 1.5h)") from None
    if not math.isfinite(value) or value <= 0:
        raise LstmimgError(f"--time {text!r} must be more than 0")
    return value
