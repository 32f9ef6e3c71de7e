"""Which epoch is "best" (issue 33): the first epoch at the best val accuracy (the old rule) against the
tie-break by val loss (TrainState now), scored on a held-out test split neither rule sees.

    pip install '.[benchmarks]' && python benchmarks/best_epoch.py [--seeds 0 1 2] [--json FILE]

Small val splits, where ties are the rule: crops of 14 real photos (20 train, 2 val a class; test: 10
crops a class from the parts of the photos never trained on), order-only videos (20 train, 2 val, 10 test a
class, 10 to 30 frames), the bundled digits cut to 40 train and 3 val a class (test: the bundled val, 1,000).
Each run trains once with the defaults; after every epoch its ``last.pt`` is scored on test, so both rules
are read from the same run: the test accuracy at the epoch each would keep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import order_videos, photo_crops


def make_sets(work: Path) -> dict[str, Path]:
    from lstmimg.sample import sample_data_dir

    sets = {}
    photos = work / "photos"
    photo_crops(photos, 20, 2, seed=21)
    photo_crops(work / "photos-test", 0, 10, seed=22)  # val crops of another draw: the held-out parts
    shutil.move(work / "photos-test" / "val", photos / "test")
    sets["photo_crops"] = photos
    videos = work / "videos"
    for split, count, seed in (("train", 20, 31), ("val", 2, 32), ("test", 10, 33)):
        order_videos(videos / split, count, seed, frames=(10, 30))
    sets["order_videos"] = videos
    digits = work / "digits"
    source = sample_data_dir() / "digits"
    for c in sorted(p.name for p in (source / "train").iterdir()):
        files = sorted((source / "train" / c).iterdir())
        for split, part in (("train", files[:40]), ("val", files[40:43])):
            (digits / split / c).mkdir(parents=True)
            for f in part:
                shutil.copy(f, digits / split / c / f.name)
    shutil.copytree(source / "val", digits / "test")
    sets["digits_small_val"] = digits
    return sets


def one_run(data: Path, out: Path, seed: int) -> dict:
    from lstmimg import ModelConfig, TrainConfig, fit
    from lstmimg.engine.review.evaluation import evaluate
    from lstmimg.engine.train.stopping import best_epoch

    tests = []

    def on_event(event: str, info: dict) -> None:
        if event == "epoch":  # last.pt is this epoch's model by now
            tests.append(evaluate(data, out / "last.pt", "test", "cpu")["accuracy"])

    from lstmimg.config import DEFAULT_MODELS
    from lstmimg.data.folders import detect_kind

    summary = fit(data, ModelConfig(name=DEFAULT_MODELS[detect_kind(data)]), TrainConfig(seed=seed, report=False, tensorboard=False), out=out, callback=on_event)
    import csv

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    first = max(range(len(rows)), key=lambda i: (float(rows[i]["val_acc"]), -i)) + 1  # the old rule
    tied = best_epoch(rows)
    assert tied == summary["best_epoch"], (tied, summary["best_epoch"])
    return {"epochs": len(rows), "old_epoch": first, "new_epoch": tied, "test_old": tests[first - 1], "test_new": tests[tied - 1],
            "val_acc": [float(r["val_acc"]) for r in rows], "test_by_epoch": tests}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sets", nargs="+", choices=["photo_crops", "order_videos", "digits_small_val"], help="only these sets")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-best-epoch-"))
    results: dict = {}
    for name, data in make_sets(work).items():
        if args.sets and name not in args.sets:
            continue
        runs = [one_run(data, work / f"{name}{seed}", seed) for seed in args.seeds]
        results[name] = {"runs": runs, "differ": sum(r["old_epoch"] != r["new_epoch"] for r in runs),
                         "mean_test_old": round(statistics.mean(r["test_old"] for r in runs), 4), "mean_test_new": round(statistics.mean(r["test_new"] for r in runs), 4)}
        print(name, {k: v for k, v in results[name].items() if k != "runs"}, flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
