"""Peak memory of `predict` on a 30-minute video against a 30-second one, and of the mistakes gallery's
strip of a truncated 720p video (issue 29, items 22 and 23), in fresh processes.

    python benchmarks/video_memory.py [--tree DIR] [--json FILE]

- predict: two synthetic 32x32 videos at 30 fps (a square drifting over noise), 30 s and 30 min,
  classified with `lstmimg.predict` and the bundled clips model, one per fresh process; its peak RSS
  (``ru_maxrss``). The bar: the 30-minute figure within a few MB of the 30-second one (it was 285 MB more).
- gallery: a 16-second 1280x720 MJPG video cut in half (its header still claims every frame, so the
  strip cannot be placed by the count), drawn as the gallery draws it (``mistakes.thumbnail``); peak RSS.
``--tree DIR`` runs the same with another checkout of lstmimg (say, the commit before the fix).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PREDICT = """
import resource, sys, time
from lstmimg import predict
t0 = time.perf_counter()
results, errors = predict([sys.argv[1]], sys.argv[2], workers=0, device="cpu")
assert results and not errors, errors
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t0)
"""

GALLERY = """
import resource, sys, time
from pathlib import Path
from lstmimg.engine.review.mistakes import thumbnail
t0 = time.perf_counter()
strip = thumbnail("video", Path(sys.argv[1]))
assert strip is not None
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t0, list(strip.shape))
"""


def write_video(path: Path, seconds: float, side: int, fps: int = 30, codec: str = "mp4v") -> int:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (side if side != 720 else 1280, side))
    frames = int(seconds * fps)
    h, w = side, side if side != 720 else 1280
    noise = rng.integers(0, 60, (8, h, w, 3)).astype(np.uint8)
    for t in range(frames):
        img = noise[t % 8].copy()
        x = (t * 2) % (w - 8)
        img[h // 3 : h // 3 + 8, x : x + 8] = 230
        writer.write(img)
    writer.release()
    return frames


def run(code: str, args: list[str], tree: Path) -> list:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return [json.loads(v) if v.startswith("[") else float(v) for v in out.stdout.split(maxsplit=2)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-vmem-"))
    model = str(args.tree / "lstmimg" / "assets" / "clips.pt")
    result = {"tree": str(args.tree)}
    for name, seconds in (("30s", 30), ("30min", 1800)):
        path = work / f"{name}.mp4"
        frames = write_video(path, seconds, 32)
        peak, took = run(PREDICT, [str(path), model], args.tree)
        result[f"predict_{name}"] = {"frames": frames, "peak_mb": round(peak, 1), "seconds": round(took, 2)}
    result["predict_growth_mb"] = round(result["predict_30min"]["peak_mb"] - result["predict_30s"]["peak_mb"], 1)
    whole = work / "hd.avi"
    write_video(whole, 16, 720, codec="MJPG")
    cut = work / "hd_cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    peak, took, shape = run(GALLERY, [str(cut)], args.tree)
    result["gallery_truncated_720p"] = {"peak_mb": round(peak, 1), "seconds": round(took, 2), "strip_shape": shape}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
