"""What `lstmimg explain` costs against `lstmimg predict` (one image) and `lstmimg video` (a 20-frame
clip), with the bundled models: process wall time, fresh processes, alternating order, medians of 5.

    python benchmarks/explain_cost.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import cv2

from lstmimg.sample import sample_data_dir


def clip20() -> Path:
    """A 20-frame clip: a bundled clip's frames, looped."""
    cap, frames = cv2.VideoCapture(str(sorted((sample_data_dir() / "clips" / "val" / "up").iterdir())[0])), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    path = Path(tempfile.mkdtemp()) / "clip20.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, frames[0].shape[1::-1])
    for i in range(20):
        writer.write(frames[i % len(frames)])
    writer.release()
    return path


def wall(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["lstmimg", *args], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    image, clip = str(sorted((sample_data_dir() / "digits" / "val" / "7").iterdir())[0]), str(clip20())
    results = {}
    for name, (base, explained) in {"image": (["predict", image], ["explain", image]), "video": (["video", clip], ["explain", clip])}.items():
        times: dict[int, list[float]] = {0: [], 1: []}
        for r in range(5):
            for key in ((0, 1) if r % 2 == 0 else (1, 0)):
                times[key].append(wall(*(base, explained)[key]))
        a, b = statistics.median(times[0]), statistics.median(times[1])
        results[name] = {"base_median_s": round(a, 3), "explain_median_s": round(b, 3), "ratio": round(b / a, 3)}
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
