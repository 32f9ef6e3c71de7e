"""`lstmimg video` on 1280x720 H.264 with the bundled clips model as it is, with flow input, and
exported to ONNX, each against a plain `cv2.VideoCapture.read()` loop over the same file (the <= 1.5x
bar): interleaved runs, medians.

    pip install '.[benchmarks]' && python benchmarks/video_inputs.py [--runs 3] [--json FILE]

The flow model is the bundled model's configuration with `--motion flow`, untrained (the timing does
not depend on the weights); the ONNX model is the bundled model exported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from video_bars import make_h264, plain_read, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lstmimg-bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    from lstmimg.bench.io import flow_twin
    from lstmimg.engine.infer.export import export_model
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.infer.timeline import classify_video
    from lstmimg.runs import BUNDLED_MODELS

    args.work.mkdir(parents=True, exist_ok=True)
    clip = make_h264(args.work / "720p_20s.mp4", 20, 1280, 720)
    ckpt = load_checkpoint(BUNDLED_MODELS["video"])
    models = {"bundled": ckpt, "flow": flow_twin(ckpt), "onnx": load_checkpoint(export_model(BUNDLED_MODELS["video"], args.work / "clips.onnx", overwrite=True)["path"])}
    torch.set_num_threads(1)  # as `lstmimg video` runs on CPU
    for m in models.values():
        classify_video(clip, m)  # warm-up
    times: dict[str, list[float]] = {"plain_read": [], **{name: [] for name in models}}
    for _ in range(args.runs):
        times["plain_read"].append(timed(plain_read, clip))
        for name, m in models.items():
            times[name].append(timed(classify_video, clip, m))
    base = statistics.median(times["plain_read"])
    result = {"clip": "1280x720 H.264, 30 fps, 20 s", "frames": plain_read(clip), "plain_read_s": round(base, 3)}
    for name in models:
        result[f"{name}_s"] = round(statistics.median(times[name]), 3)
        result[f"{name}_ratio"] = round(statistics.median(times[name]) / base, 3)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
