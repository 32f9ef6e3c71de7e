"""Whole commands as a user runs them, timed on each device side by side: the pace a GPU gives end to end.

    python benchmarks/gpu_pace.py [--devices cpu,cuda] [--rounds 2] [--work /tmp/lstmimg-pace] [--json FILE]

- train: the default `lstmimg train` on the bundled digits, and on the bundled clips; wall time of the whole
  command, the median epoch's samples/s (metrics.csv), epochs run and validation accuracy (summary.json).
- predict: `predict --jsonl` of the bundled digits model over 20,000 28x28 JPEGs (the bundled digits, shifted:
  `user_sets.digit_jpegs`), default workers; against decode-only: the same files opened and decoded by
  Pillow on as many processes as predict's decoding workers (one per core, up to 4), no model.
- video: `lstmimg video --json` of the bundled clips model on the 1280x720 300-frame clip `lstmimg bench` uses;
  against decode-only: OpenCV reading every frame of it.

Commands alternate between devices round by round; medians are reported. `scripts/gpu_check.sh` runs it with
``--devices cpu,cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streams import timed
from user_sets import digit_jpegs

LSTMIMG = [sys.executable, "-m", "lstmimg"]


def train_run(data: Path | None, device: str, out: Path) -> dict:
    """One default `lstmimg train` (on ``data``, or the bundled digits), with what its run folder says."""
    seconds = timed([*LSTMIMG, "train", *([data] if data else []), "--device", device, "--out", out, "--exist-ok"])
    summary = json.loads((out / "summary.json").read_text())
    rates = sorted(float(r["samples_per_s"]) for r in csv.DictReader(open(out / "metrics.csv")))
    return {"wall_s": round(seconds, 2), "median_epoch_samples_per_s": round(rates[len(rates) // 2], 1), "epochs": summary["epochs"],
            "val_accuracy": summary["val_accuracy"]}


def decode_one(path: str) -> int:
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("L").size[0]


def decode_images(paths: list[str], workers: int) -> float:
    started = time.perf_counter()
    with Pool(workers) as pool:
        for _ in pool.imap_unordered(decode_one, paths, chunksize=256):
            pass
    return time.perf_counter() - started


def decode_video(path: Path) -> tuple[int, float]:
    import cv2

    started = time.perf_counter()
    cap, frames = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    return frames, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sections", default="train,predict,video")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lstmimg-pace"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    from lstmimg.bench.io import default_clip
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    devices, sections = args.devices.split(","), args.sections.split(",")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}"
                    + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""), "devices": devices}
    if "train" in sections:
        result["train"] = {}
        for name, data in (("digits", None), ("clips", sample_data_dir() / "clips")):
            runs = {d: [train_run(data, d, work / f"train-{name}-{d}-{r}") for r in range(args.rounds)] for d in devices}
            result["train"][name] = {d: {"runs": rs, "median_wall_s": round(statistics.median(r["wall_s"] for r in rs), 2),
                                         "median_samples_per_s": round(statistics.median(r["median_epoch_samples_per_s"] for r in rs), 1)} for d, rs in runs.items()}
            print(name, json.dumps(result["train"][name]), flush=True)
    if "predict" in sections:
        images = work / "images20k"
        if not images.is_dir():
            digit_jpegs(images, 20000)
        paths = sorted(str(p) for p in images.rglob("*.jpg"))
        workers = min(4, os.cpu_count() or 1)
        walls: dict[str, list[float]] = {d: [] for d in ["decode-only", *devices]}
        for _ in range(args.rounds):
            walls["decode-only"].append(decode_images(paths, workers))
            for d in devices:
                walls[d].append(timed([*LSTMIMG, "predict", images, "--model", BUNDLED_MODELS["image"], "--jsonl", work / f"predict-{d}.jsonl",
                                       "--overwrite", "--device", d]))
        result["predict"] = {"images": len(paths), "decode_workers": workers,
                             **{d: {"wall_s": [round(s, 2) for s in w], "images_per_s": round(len(paths) / statistics.median(w), 1)} for d, w in walls.items()}}
        print("predict", json.dumps(result["predict"]), flush=True)
    if "video" in sections:
        clip = default_clip(work)
        walls = {d: [] for d in ["decode-only", *devices]}
        frames = 0
        for _ in range(args.rounds):
            frames, seconds = decode_video(clip)
            walls["decode-only"].append(seconds)
            for d in devices:
                walls[d].append(timed([*LSTMIMG, "video", clip, "--model", BUNDLED_MODELS["video"], "--json", "--device", d]))
        result["video"] = {"clip": "1280x720, 300 frames", "frames": frames,
                           **{d: {"wall_s": [round(s, 2) for s in w], "frames_per_s": round(frames / statistics.median(w), 1)} for d, w in walls.items()}}
        print("video", json.dumps(result["video"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
