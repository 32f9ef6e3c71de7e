"""Random and mutated bytes fed to every loader: each outcome is a result or LstmimgError, never a crash
or a hang. 1,000 inputs per loader (derandomized, so CI sees the same inputs every run)."""

import io

import numpy as np
import pytest
import torch
from conftest import write_clip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lstmimg.checkpoint import save_checkpoint
from lstmimg.config import ModelConfig
from lstmimg.data.images import load_image
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.errors import LstmimgError
from lstmimg.models.registry import build_model

FUZZ = settings(max_examples=1000, deadline=5000, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def image_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    seeds = []
    for fmt, mode in (("PNG", "RGB"), ("PNG", "L"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"), ("WEBP", "RGB")):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).convert(mode).save(buffer, fmt)
        seeds.append(buffer.getvalue())
    return seeds


def mutated(seeds: list[bytes]):
    """A seed file with some bytes changed, a piece cut out or the end cut off; or random bytes."""

    @st.composite
    def strategy(draw):
        if draw(st.integers(0, 9)) == 0:
            return draw(st.binary(max_size=2000))
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 8))):
            kind = draw(st.integers(0, 2))
            at = draw(st.integers(0, max(0, len(data) - 1)))
            if kind == 0 and data:
                data[at] = draw(st.integers(0, 255))
            elif kind == 1:
                del data[at : at + draw(st.integers(1, 64))]
            else:
                data = data[:at]
        return bytes(data)

    return strategy()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=mutated(image_seeds()), ext=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]))
def test_fuzz_image_loader(scratch, data, ext):
    path = scratch / f"x{ext}"
    path.write_bytes(data)
    try:
        out = load_image(path, 3, (8, 8))
    except LstmimgError:
        return
    assert out.shape == (3, 8, 8) and out.dtype == np.uint8


def video_seeds(folder) -> list[bytes]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (16, 16), dtype=np.uint8) for _ in range(4)]
    return [write_clip(folder / f"seed{ext}", frames).read_bytes() for ext in (".avi", ".mp4")]


@pytest.fixture(scope="module")
def video_seed_bytes(tmp_path_factory):
    return video_seeds(tmp_path_factory.mktemp("seeds"))


@FUZZ
@given(data=st.data())
def test_fuzz_video_loader(scratch, video_seed_bytes, data):
    from lstmimg.data.video_io import read_video

    raw = data.draw(mutated(video_seed_bytes))
    path = scratch / ("v" + data.draw(st.sampled_from([".avi", ".mp4"])))
    path.write_bytes(raw)
    try:
        frames, _ = read_video(path, size=(8, 8))
    except LstmimgError:
        return
    assert frames.ndim == 4 and frames.shape[1:] == (8, 8, 3)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    cfg = ModelConfig(name="region_lstm", img_size=(4, 4), num_classes=2, hidden=2, embed=2)
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    save_checkpoint(path, build_model(cfg), cfg, ["a", "b"], [0.5], [0.5])
    return [path.read_bytes()]


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_loader(scratch, checkpoint_bytes, data):
    path = scratch / "c.pt"
    path.write_bytes(data.draw(mutated(checkpoint_bytes)))
    try:
        ckpt = load_checkpoint(path)
    except LstmimgError:
        return
    assert ckpt.model(torch.zeros(1, 1, 4, 4)).shape == (1, 2)
