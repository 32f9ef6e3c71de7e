"""Letterbox against squash on folders of mixed-size real photos (issue 30, item 6).

    pip install '.[benchmarks]' && python benchmarks/fit.py [--seeds 0 1 2] [--json FILE]

Two folders made from scikit-image's real photographs, images in several sizes and aspects as users'
folders have them (each file a crop of the photo at its own aspect, so nothing in a file is stretched):

- ``mixed14``: 14 photos, one class each, 30 crops a class (24 train from the left 70% of the photo, 6
  val from the rest, never seen in training) at 300x200, 240x320, 96x96, 224x224 and 120x160 (W x H) in
  the proportions a user's folder had (87:80:78:70:56).
- ``mixed6grey``: another kind and size mix: 6 other photos read grey, 40 crops a class (32 train / 8
  val, split as above), at 160x90, 90x160, 128x128 and 200x150.

Each is trained by ``lstmimg train`` with its defaults and ``--fit squash`` or ``--fit letterbox``, over
``--seeds``, and by a plain PyTorch CNN+BiLSTM (user_sets.PLAIN_BILSTM: images squashed to the size
lstmimg chose, batch 32, 30 epochs, its best epoch on val) with the same seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import PLAIN_BILSTM, lstmimg_train, timed

SETS = {
    "mixed14": dict(photos=("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket"),
                    sizes=((300, 200), (240, 320), (96, 96), (224, 224), (120, 160)), weights=(87, 80, 78, 70, 56), train=24, val=6, grey=False),
    "mixed6grey": dict(photos=("chelsea", "coffee", "astronaut", "rocket", "clock", "cell"),
                       sizes=((160, 90), (90, 160), (128, 128), (200, 150)), weights=(1, 1, 1, 1), train=32, val=8, grey=True),
}


def make_set(root: Path, photos, sizes, weights, train, val, grey, seed: int = 11) -> None:
    """Crops of each photo at sizes (W, H) drawn with ``weights``: train from the left 70%, val from the rest."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    p = np.array(weights, dtype=float) / sum(weights)
    for name in photos:
        photo = Image.fromarray(getattr(skimage.data, name)())
        photo = photo.convert("L" if grey else "RGB")
        w, h = photo.size
        for split, count, (lo, hi) in (("train", train, (0.0, 0.7)), ("val", val, (0.7, 1.0))):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                ow, oh = sizes[rng.choice(len(sizes), p=p)]
                # the largest crop of the file's aspect that fits the photo's region, scaled by 0.4..0.8
                region_w = (hi - lo) * w
                s = rng.uniform(0.4, 0.8) * min(region_w / ow, h / oh)
                cw, ch = max(8, int(ow * s)), max(8, int(oh * s))
                x0 = int(rng.uniform(lo * w, max(lo * w, hi * w - cw)))
                y0 = int(rng.integers(0, h - ch + 1))
                photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((ow, oh), Image.Resampling.BILINEAR).save(folder / f"{i:03d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=list(SETS))
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-fit-"))
    results: dict = {}
    for name, spec in SETS.items():
        if args.only and name != args.only:
            continue
        make_set(work / name, **spec)
        runs: dict = {"squash": [], "letterbox": [], "plain_squash": []}
        for seed in args.seeds:
            for fit in ("squash", "letterbox"):
                runs[fit].append(lstmimg_train(work / name, work / "runs" / f"{name}_{fit}_{seed}", "--fit", fit, "--seed", str(seed)))
                print(name, fit, seed, runs[fit][-1]["val_accuracy"], runs[fit][-1]["wall_s"], flush=True)
            h, w = runs["squash"][-1]["img_size"]
            script = work / "plain_bilstm.py"
            script.write_text(PLAIN_BILSTM)
            wall, _, text = timed([sys.executable, str(script), str(work / name), str(seed), f"{h}x{w}"])
            runs["plain_squash"].append({"val_accuracy": float(text.split("PLAIN")[1].split()[0]), "wall_s": round(wall, 1)})
            print(name, "plain", seed, runs["plain_squash"][-1], flush=True)
        results[name] = {
            "runs": runs,
            "median_val_accuracy": {k: statistics.median(r["val_accuracy"] for r in v) for k, v in runs.items()},
            "mean_val_accuracy": {k: round(statistics.mean(r["val_accuracy"] for r in v), 4) for k, v in runs.items()},
            "first_lines": runs["squash"][0]["first_lines"],
        }
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
