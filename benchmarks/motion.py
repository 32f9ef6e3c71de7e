"""Motion input (``--motion none|diff|flow``, ``--fusion early|two-stream``) on sets where motion,
appearance, or both decide; and what the flow costs.

    pip install '.[benchmarks]' && python benchmarks/motion.py [--only camera,order,clips,appearance] [--json FILE]

- ``camera``: a virtual camera moving over real photographs (scikit-image's): pan left, pan right, zoom
  in, zoom out; 12 frames at 64x64; 104 clips per class from 12 photos for training, 24 per class from
  4 photos never trained on for validation. A pan left played backwards is a pan right: only the
  motion tells the class.
- ``order``: ``user_sets.order_videos`` (a bar turning one way or the other, a disc growing or
  shrinking): order and motion decide, any one frame could be of either class of its pair.
- ``clips``: the bundled ``sample_data/clips``.
- ``appearance``: which of 4 photographs the camera looks at, while it pans and zooms at random (the
  motion says nothing of the class); val clips from parts of each photo never trained on.

Every run is ``lstmimg train DATA --motion M [--fusion F]`` with the defaults otherwise, in a fresh
process: val video accuracy and wall time. ``--cost`` also times DIS flow per frame (each preset, at
64 and 112 px) against decoding a frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import order_videos

TRAIN_PHOTOS = ("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page")
VAL_PHOTOS = ("retina", "rocket", "chelsea", "text")
CAMERA = ("pan_left", "pan_right", "zoom_in", "zoom_out")


def _photo(name: str) -> np.ndarray:
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)


def _render(photo: np.ndarray, cx: float, cy: float, half: float, side: int) -> np.ndarray:
    """The square window of ``photo`` centred at (cx, cy), ``2 * half`` wide, as ``side`` x ``side`` (BGR)."""
    import cv2

    scale = side / (2 * half)
    m = np.array([[scale, 0, side / 2 - scale * cx], [0, scale, side / 2 - scale * cy]], dtype=np.float32)
    return cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def camera_videos(root: Path, photos: tuple[str, ...], per_class: int, seed: int, frames: int | tuple[int, int] = 12, side: int = 64,
                  classes: tuple[str, ...] = CAMERA, region: tuple[float, float] = (0.0, 1.0)) -> None:
    """Clips of a camera panning or zooming over ``photos``; with ``classes`` = the photo names, the
    class is the photo and the motion is random (the appearance-only set). ``region``: the part of
    each photo's width the camera's start may lie in. ``frames``: a count, or a (low, high) range
    each video's count is drawn from (the camera then moves at a third of the speed, so a long video
    stays on its photograph; the motion is in any few frames, not only in the whole video's course)."""
    import cv2

    lengths = (frames, frames) if isinstance(frames, int) else frames
    pace = 1.0 if isinstance(frames, int) else 1 / 3

    rng = np.random.default_rng(seed)
    images = {name: _photo(name) for name in photos}
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            frames = lengths[0] if lengths[0] == lengths[1] else int(rng.integers(lengths[0], lengths[1] + 1))
            photo_name = name if name in images else photos[(i + c) % len(photos)]
            photo = images[photo_name]
            h, w = photo.shape[:2]
            motion = name if name in CAMERA else CAMERA[int(rng.integers(4))]
            half = rng.uniform(0.18, 0.3) * min(h, w)
            speed = pace * rng.uniform(1.5, 3.0) * 2 * half / side  # 1.5 to 3 output pixels a frame
            zoom = pace * rng.uniform(0.025, 0.045)  # window size change a frame
            lo, hi = region
            low = max(half + frames * speed, lo * w + half)
            cx = rng.uniform(low, max(low + 1, hi * w - half - frames * speed))
            cy = rng.uniform(half, h - half)
            writer = cv2.VideoWriter(str(folder / f"{i:03d}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 12, (side, side))
            for t in range(frames):
                dx = {"pan_left": -speed * t, "pan_right": speed * t}.get(motion, 0.0)
                size = half * {"zoom_in": (1 - zoom) ** t, "zoom_out": (1 + zoom) ** t}.get(motion, 1.0)
                writer.write(_render(photo, cx + dx, cy, size, side))
            writer.release()


def make_set(name: str, root: Path) -> Path:
    if name == "camera":
        camera_videos(root / "train", TRAIN_PHOTOS, 104, seed=21)
        camera_videos(root / "val", VAL_PHOTOS, 24, seed=22)
    elif name == "order":
        order_videos(root / "train", 40, seed=1)
        order_videos(root / "val", 10, seed=2)
    elif name == "appearance":
        photos = ("astronaut", "coffee", "rocket", "chelsea")
        camera_videos(root / "train", photos, 40, seed=23, classes=photos, region=(0.0, 0.6))
        camera_videos(root / "val", photos, 10, seed=24, classes=photos, region=(0.6, 1.0))
    elif name == "clips":
        from lstmimg.sample import sample_data_dir

        return sample_data_dir() / "clips"
    return root


def train(data: Path, out: Path, *extra: str) -> dict:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lstmimg", "train", str(data), "--out", str(out), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    summary = json.loads((out / "summary.json").read_text())
    return {"val_accuracy": summary["val_accuracy"], "wall_s": round(wall, 1), "epochs": summary["epochs"], "args": list(extra)}


def flow_cost(repeats: int = 200) -> dict:
    """Milliseconds per frame: DIS flow at each preset and size, against decoding a 64x64 MJPG frame."""
    import cv2

    from lstmimg.data import motion as M

    rng = np.random.default_rng(0)
    photo = _photo("astronaut")
    out = {}
    for side in (64, 112):
        a = cv2.cvtColor(_render(photo, 256, 256, 100, side), cv2.COLOR_BGR2GRAY)
        b = cv2.cvtColor(_render(photo, 258, 256, 100, side), cv2.COLOR_BGR2GRAY)
        for preset in ("ultrafast", "fast", "medium"):
            M.PRESET = preset
            engine = M._flow_engine()
            for _ in range(10):  # warm-up: OpenCV's thread pool, the engine's buffers
                engine.calc(a, b, None)
            rounds = []
            for _ in range(5):
                t0 = time.perf_counter()
                for _ in range(repeats // 5):
                    engine.calc(a, b, None)
                rounds.append((time.perf_counter() - t0) / (repeats // 5) * 1000)
            out[f"dis_{preset}_{side}px_ms"] = round(sorted(rounds)[2], 3)  # median of 5
    M.PRESET = "ultrafast"
    ok, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    t0 = time.perf_counter()
    for _ in range(repeats):
        cv2.imdecode(jpg, cv2.IMREAD_COLOR)
    out["jpeg_decode_64px_ms"] = round((time.perf_counter() - t0) / repeats * 1000, 3)
    return out


RUNS = {"none": ["--motion", "none"], "diff": ["--motion", "diff"], "flow_early": ["--motion", "flow", "--fusion", "early"],
        "flow_two_stream": ["--motion", "flow", "--fusion", "two-stream"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="camera,order,clips,appearance")
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-motion-"))
    results: dict = {"flow_cost": flow_cost()} if args.cost else {}
    for name in args.only.split(","):
        data = make_set(name, work / name)
        results[name] = {}
        for run in args.runs.split(","):
            results[name][run] = train(data, work / "runs" / f"{name}_{run}", *RUNS[run])
            print(name, run, results[name][run], file=sys.stderr, flush=True)
            if args.json:  # after every run: a long benchmark that stops keeps what it measured
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
