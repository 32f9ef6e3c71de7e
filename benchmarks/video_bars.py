"""The video quality bars, measured side by side on this machine.

    pip install '.[benchmarks]' && python benchmarks/video_bars.py [--skip-train] [--skip-speed] [--skip-memory] [--runs 5]

1. `fit` on the bundled clips with defaults: video accuracy, clip accuracy, seconds; and the same with
   frames shuffled in time (a model blind to order).
2. `classify_video` (what `lstmimg video` runs) on a 1280x720 H.264 clip against a plain
   `cv2.VideoCapture.read()` loop over the same file, interleaved runs, medians; plus the CLI end to
   end (a fresh process, start-up included) on that clip and on a 5-minute one.
3. What sparse sampling saves (grab-only frames are still decoded by FFmpeg).
4. Peak memory (max RSS) of `lstmimg video` on a 10-minute and a 30-second H.264 video.

Test clips are written with PyAV (libx264), since OpenCV's wheels cannot encode H.264; they are made
once under --work (default /tmp/lstmimg-bench).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_h264(path: Path, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """A clip of a textured scene panning sideways with a little sensor noise, H.264 (yuv420p)."""
    if path.exists():
        return path
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0 : width * 2]
    scene = (127 + 60 * np.sin(x / 37.0) * np.cos(y / 23.0) + rng.normal(0, 20, (height, width * 2))).clip(0, 255).astype(np.uint8)
    scene = np.stack([scene, np.roll(scene, 40, 1), np.roll(scene, 80, 0)], axis=2)
    out = av.open(str(path), "w")
    stream = out.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "23"}
    for i in range(int(seconds * fps)):
        shift = (i * 3) % width
        frame = scene[:, shift : shift + width].copy()
        frame[::7] = np.clip(frame[::7].astype(np.int16) + rng.integers(-12, 12, frame[::7].shape), 0, 255).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def plain_read(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def train_bars() -> dict:
    from lstmimg.config import TrainConfig
    from lstmimg.engine.train.training import fit
    from lstmimg.sample import sample_data_dir

    data = sample_data_dir() / "clips"
    out = {}
    for name, shuffle in (("ordered", False), ("shuffled_frames", True)):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            s = fit(data, None, TrainConfig(shuffle_frames=shuffle), out=Path(tmp) / "run")
            out[name] = {"val_accuracy": s["val_accuracy"], "val_clip_accuracy": s["val_clip_accuracy"], "train_seconds": s["train_seconds"], "wall_seconds": round(time.perf_counter() - t0, 1)}
        print(name, out[name], flush=True)
    return out


def speed_bars(work: Path, runs: int) -> dict:
    from lstmimg.engine.infer.timeline import classify_video

    clip = make_h264(work / "720p_20s.mp4", 20, 1280, 720)
    frames = plain_read(clip)
    classify_video(clip)  # warm-up: model load, caches
    base, ours = [], []
    for _ in range(runs):
        base.append(timed(plain_read, clip))
        ours.append(timed(classify_video, clip))
    cli = shutil.which("lstmimg")
    run_cli = lambda path: timed(subprocess.run, [cli, "video", str(path), "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # noqa: E731
    cli_times = [run_cli(clip) for _ in range(3)]
    # the CLI pays a fixed start-up (importing torch); on a longer clip it is amortised
    long_clip = make_h264(work / "720p_5min.mp4", 300, 1280, 720)
    long_base, long_cli = [], []
    for _ in range(3):
        long_base.append(timed(plain_read, long_clip))
        long_cli.append(run_cli(long_clip))
    result = {
        "clip": "1280x720 H.264, 30 fps, 20 s", "frames": frames,
        "plain_read_s": statistics.median(base), "classify_video_s": statistics.median(ours),
        "ratio": round(statistics.median(ours) / statistics.median(base), 3),
        "cli_end_to_end_s": statistics.median(cli_times), "cli_ratio": round(statistics.median(cli_times) / statistics.median(base), 3),
        "plain_read": spread(base), "classify_video": spread(ours), "cli": spread(cli_times),
        "long_clip": "1280x720 H.264, 30 fps, 5 min", "long_plain_read": spread(long_base), "long_cli": spread(long_cli),
        "long_cli_ratio": round(statistics.median(long_cli) / statistics.median(long_base), 3),
    }
    print(json.dumps(result, indent=2), flush=True)
    return result


def sampling_bars(work: Path, runs: int) -> dict:
    """What sparse sampling saves: grab() still decodes every frame; only retrieve() is skipped."""
    import cv2

    from lstmimg.data.video_io import FrameReader

    clip = make_h264(work / "720p_20s.mp4", 20, 1280, 720)

    def grab_only() -> None:
        cap = cv2.VideoCapture(str(clip))
        while cap.grab():
            pass

    def reader(stride: int) -> None:
        with FrameReader(clip, size=(32, 32), stride=stride) as frames:
            for _ in frames:
                pass

    cases = {"read() every frame": lambda: plain_read(clip), "grab() every frame": grab_only}
    cases.update({f"FrameReader stride {k} (32x32 out)": (lambda k=k: reader(k)) for k in (1, 2, 4, 8)})
    times = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    result = {name: round(statistics.median(v), 3) for name, v in times.items()}
    print(json.dumps(result, indent=2), flush=True)
    return result


def peak_rss_kb(cmd: list[str]) -> int:
    """Max RSS of one child process, via wait4's rusage."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = __import__("os").wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd} failed with status {status}")
    return usage.ru_maxrss


def memory_bars(work: Path) -> dict:
    cli = shutil.which("lstmimg")
    short = make_h264(work / "360p_30s.mp4", 30, 640, 360)
    long = make_h264(work / "360p_10min.mp4", 600, 640, 360)
    result = {}
    for name, clip in (("30s", short), ("10min", long)):
        t0 = time.perf_counter()
        result[f"{name}_max_rss_mb"] = round(peak_rss_kb([cli, "video", str(clip), "--json"]) / 1024, 1)
        result[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
    result["ratio"] = round(result["10min_max_rss_mb"] / result["30s_max_rss_mb"], 3)
    print(json.dumps(result, indent=2), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lstmimg-bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "video_bars.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    record = {"date": time.strftime("%Y-%m-%d"), "python": sys.version.split()[0]}
    if not args.skip_train:
        record["train"] = train_bars()
    if not args.skip_speed:
        record["speed"] = speed_bars(args.work, args.runs)
    record["sampling"] = sampling_bars(args.work, args.runs)
    if not args.skip_memory:
        record["memory"] = memory_bars(args.work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
