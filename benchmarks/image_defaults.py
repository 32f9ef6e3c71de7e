"""Image defaults on small sets unlike the bundled digits, against a plain CNN+BiLSTM.

    pip install '.[benchmarks]' && python benchmarks/image_defaults.py [--runs default,no_augment] [--json FILE]

Sets (all from real data that scikit-image ships; none was used to tune the defaults):

- ``crops7``, ``crops8``, ``crops9``: 840 crops (40x40 RGB) of 14 real photographs, one class each,
  val crops from parts of each photo never trained on (``user_sets.photo_crops``), three data seeds;
- ``crops24``: the same at 24x24 from another choice of 8 photographs (fewer classes, smaller images);
- ``faces``: scikit-image's ``lfw_subset``, 100 faces and 100 non-faces (25x25 grey), 150 train / 50 val.

Runs: ``lstmimg train`` with its defaults and with each variant of ``VARIANTS`` named in ``--runs``;
``plain``: a plain CNN+BiLSTM written in a few dozen lines (``user_sets.PLAIN_BILSTM``: batch 32, 30
epochs, its best epoch's val accuracy, as lstmimg reports its best epoch). Every run is a fresh
process timed from outside; the mean over the sets is printed last.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from user_sets import PLAIN_BILSTM, lstmimg_train, photo_crops, timed

VARIANTS = {
    "default": [],
    "no_augment": ["--no-augment"],
    "batch32": ["--batch-size", "32"],
    "lr1e-3": ["--lr", "1e-3"],
    "wd0.05": ["--weight-decay", "0.05"],
}
OTHER_PHOTOS = ("chelsea", "coffee", "clock", "text", "cell", "colorwheel", "camera", "moon")  # shipped with scikit-image (no download)


def faces(root: Path, seed: int) -> None:
    """scikit-image's lfw_subset (200 grey 25x25 images: 100 faces, then 100 non-faces), split 150/50."""
    import skimage.data
    from PIL import Image

    images = (skimage.data.lfw_subset() * 255).round().astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    for rank, i in enumerate(order):
        folder = root / ("val" if rank < 50 else "train") / ("face" if i < 100 else "other")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"{i:03d}.png")


def make_sets(work: Path) -> dict[str, Path]:
    sets = {}
    for seed in (7, 8, 9):
        photo_crops(work / f"crops{seed}", 48, 12, seed=seed)
        sets[f"crops{seed}"] = work / f"crops{seed}"
    photo_crops(work / "crops24", 48, 12, seed=10, side=24, photos=OTHER_PHOTOS)
    sets["crops24"] = work / "crops24"
    faces(work / "faces", seed=11)
    sets["faces"] = work / "faces"
    return sets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="default,plain", help=f"comma-separated: plain, {', '.join(VARIANTS)}")
    parser.add_argument("--sets", help="comma-separated subset of the sets")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run (the sets stay the same)")
    parser.add_argument("--json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lstmimg-image-defaults-"))
    sets = make_sets(work)
    if args.sets:
        sets = {k: v for k, v in sets.items() if k in args.sets.split(",")}
    script = work / "plain_bilstm.py"
    script.write_text(PLAIN_BILSTM)
    results: dict = {}
    for name, data in sets.items():
        for run in args.runs.split(","):
            if run == "plain":
                wall, _, text = timed([sys.executable, str(script), str(data), str(args.seed)])
                out = {"val_accuracy": float(text.split("PLAIN")[1].split()[0]), "wall_s": round(wall, 1)}
            else:
                out = lstmimg_train(data, work / "runs" / f"{name}-{run}", *VARIANTS[run], "--seed", str(args.seed))
            results.setdefault(name, {})[run] = out
            print(f"{name:8s} {run:12s} {out['val_accuracy']:.4f} {out['wall_s']:6.1f} s", flush=True)
    means = {run: {"val_accuracy": round(float(np.mean([r[run]["val_accuracy"] for r in results.values()])), 4),
                   "wall_s": round(float(np.mean([r[run]["wall_s"] for r in results.values()])), 1)} for run in args.runs.split(",")}
    results["mean"] = means
    print(json.dumps(means, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"data and runs in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
