"""Shared fixtures: tiny, real image folders built in tmp_path with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SIZE = 12


def pattern(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 12x12 grey image of a bar whose orientation is the class, at a random offset, with noise."""
    img = rng.integers(0, 40, (SIZE, SIZE)).astype(np.uint8)
    k = int(rng.integers(2, SIZE - 2))
    if kind == "horizontal":
        img[k - 1 : k + 1, 1:-1] = 230
    elif kind == "vertical":
        img[1:-1, k - 1 : k + 1] = 230
    else:
        for i in range(1, SIZE - 1):
            img[i, i] = img[i, min(SIZE - 1, i + 1)] = 230
    return img


def write_class_folders(root: Path, per_class: int, seed: int, classes=("diagonal", "horizontal", "vertical")) -> Path:
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern(name, rng), mode="L").save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def bars(tmp_path: Path) -> Path:
    """A data root with train/ (24 per class) and val/ (8 per class) of three bar orientations."""
    root = tmp_path / "bars"
    write_class_folders(root / "train", 24, seed=1)
    write_class_folders(root / "val", 8, seed=2)
    return root


@pytest.fixture
def flat_bars(tmp_path: Path) -> Path:
    """Class folders only (no train/val): 20 images per class."""
    return write_class_folders(tmp_path / "flat", 20, seed=3)


TINY_MODEL = {"hidden": 16, "cnn_channels": (8, 16), "embed": 16}
TINY_TRAIN = {"epochs": 2, "batch_size": 16}


@pytest.fixture
def trained_run(bars: Path, tmp_path: Path) -> Path:
    """A run folder of a tiny cnn_lstm trained for 2 epochs on ``bars``."""
    from lstmimg import ModelConfig, TrainConfig, fit

    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), out=tmp_path / "run")
    return Path(summary["run_dir"])
