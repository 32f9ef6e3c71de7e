"""Peak memory of `explain` and of export verification on a 10-minute video against a 30-second one.

    python benchmarks/long_video_memory.py [--side 160] [--fps 30] [--json FILE]

Two synthetic videos (a bright square drifting over noise, ``--side`` pixels square, ``--fps``) of 30 s
and 10 min are written with OpenCV. The model is an lrcn at the default video input (112x112, flow
input, clips of 8), random weights (what is measured is the reading), saved as a checkpoint whose run
data is the folder holding the video. Each measurement runs in a fresh process and reports that
process's peak RSS (``ru_maxrss``): ``explain`` of the video, and export verification
(``largest_difference``, PyTorch against itself). ``--tree DIR`` runs the measurements with another
checkout of lstmimg (say, the commit before a fix). The bar (issue 24): the 10-minute figures within
300 MB of the 30-second ones.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

EXPLAIN = """
import resource, sys, time
from lstmimg import explain
t0 = time.perf_counter()
explain([sys.argv[1]], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t0)
"""

VERIFY = """
import resource, sys, time
from lstmimg import load_checkpoint
try:
    from lstmimg.engine.infer.export import largest_difference
except ImportError:  # a checkout from before the package was arranged by stage
    from lstmimg.export import largest_difference
t0 = time.perf_counter()
largest_difference(load_checkpoint(sys.argv[2]), load_checkpoint(sys.argv[2]))  # PyTorch against itself: the reading is what is measured
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t0)
"""


def make_checkpoint(path: Path, data: Path) -> Path:
    """A random lrcn at 112x112 with flow input, whose run data is ``data``."""
    import torch

    from lstmimg.checkpoint import save_checkpoint
    from lstmimg.config import ModelConfig
    from lstmimg.models.registry import build_model, get_model_spec

    torch.manual_seed(0)
    cfg = get_model_spec("lrcn").complete(ModelConfig(name="lrcn", motion="flow", in_channels=5, img_size=(112, 112), num_classes=2))
    meta = {"data": str(data), "clip_len": 8, "frame_stride": 1, "val_clips": 2, "motion": {"method": "flow"}}
    save_checkpoint(path, build_model(cfg), cfg, ["moving", "still"], [0.3] * 5, [0.2] * 5, "video", meta)
    return path


def write_video(path: Path, seconds: int, fps: int, side: int) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 40, (side, side, 3), dtype=np.uint8) for _ in range(16)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (side, side))
    for i in range(seconds * fps):
        frame = noise[i % 16].copy()
        x = (i * 2) % (side - 16)
        frame[side // 2 - 8 : side // 2 + 8, x : x + 16] = 230
        writer.write(frame)
    writer.release()
    return path


def measure(code: str, video: Path, model: Path, tree: Path | None) -> tuple[float | None, float | str]:
    """Peak RSS (MB) and seconds of ``code`` in a fresh process; None and the error's last line if it failed."""
    tree = tree or Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(tree)}  # and run in it: `python -c` puts the working folder first on sys.path
    done = subprocess.run([sys.executable, "-c", code, str(video), str(model)], capture_output=True, text=True, env=env, cwd=tree)
    if done.returncode:  # say how it failed (an older checkout runs out of memory on the long video)
        return None, done.stderr.strip().splitlines()[-1][:200]
    rss, seconds = done.stdout.split()
    return round(float(rss), 1), round(float(seconds), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=160)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--tree", type=Path, help="another checkout of lstmimg to measure")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-long-video-"))
    results: dict = {"side": args.side, "fps": args.fps, "tree": str(args.tree or Path(__file__).resolve().parents[1])}
    for name, seconds in (("30s", 30), ("10min", 600)):
        folder = work / name / "moving"
        folder.mkdir(parents=True)
        video = write_video(folder / f"{name}.avi", seconds, args.fps, args.side)
        model = make_checkpoint(work / name / "model.pt", work / name)
        explain_rss, explain_s = measure(EXPLAIN, video, model, args.tree)
        verify_rss, verify_s = measure(VERIFY, video, model, args.tree)
        results[name] = {"frames": seconds * args.fps, "bytes": video.stat().st_size, "explain_peak_mb": explain_rss, "explain_s": explain_s,
                         "verify_peak_mb": verify_rss, "verify_s": verify_s}
        print(name, results[name], flush=True)
    for what in ("explain", "verify"):
        long, short = results["10min"][f"{what}_peak_mb"], results["30s"][f"{what}_peak_mb"]
        results[f"{what}_growth_mb"] = round(long - short, 1) if long is not None and short is not None else None
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
