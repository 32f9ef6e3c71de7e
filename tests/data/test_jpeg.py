"""data/jpeg.py: a JPEG's header read from its bytes and its grey picture decoded by OpenCV give `check`
the same facts as Pillow; anything odd is left to Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lstmimg.data import jpeg
from lstmimg.engine.health.scan import _facts_or_why, _image_facts


def picture(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("size", [(64, 64), (31, 40), (100, 80), (127, 300), (128, 128), (513, 257), (1000, 700)])
@pytest.mark.parametrize("kind", ["baseline", "progressive", "grey"])
def test_fast_facts_equal_pillows(tmp_path, size, kind):
    path = tmp_path / "a.jpg"
    img = picture(*size)
    (img.convert("L") if kind == "grey" else img).save(path, quality=80, progressive=kind == "progressive")
    assert jpeg.header(path.read_bytes()) == (size[1], size[0], 1 if kind == "grey" else 3)
    fast, slow = _image_facts(path, fast=True), _image_facts(path, fast=False)
    assert fast["size"] == slow["size"] == (size[1], size[0]) and fast["mode"] == slow["mode"] and fast["sha"] == slow["sha"]
    assert np.array_equal(fast["small"], slow["small"])  # the same pixels: check's thresholds hold for both


@pytest.mark.parametrize("size", [(100, 80), (200, 160), (300, 700), (1000, 700)])
def test_fast_verify_pictures_equal_pillows(tmp_path, size):
    from lstmimg.engine.health.copies import _grey_for_verify

    path = tmp_path / "a.jpg"
    picture(*size).save(path, quality=85)
    fast, slow = _grey_for_verify(path, fast=True), _grey_for_verify(path, fast=False)
    assert fast.size == slow.size and np.array_equal(np.asarray(fast), np.asarray(slow))  # the near pairs confirmed are the same either way


def test_odd_files_are_left_to_pillow(tmp_path):
    buf = io.BytesIO()
    picture(64, 64).save(buf, "JPEG")
    whole = buf.getvalue()
    assert jpeg.header(whole) == (64, 64, 3)
    assert jpeg.header(whole[: len(whole) // 2]) is None  # truncated: no end marker
    assert jpeg.header(whole + b"trailing") is None
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: Pillow reads the orientation
    buf = io.BytesIO()
    picture(64, 48).save(buf, "JPEG", exif=exif.tobytes())
    assert jpeg.header(buf.getvalue()) is None
    buf = io.BytesIO()
    picture(64, 64).convert("CMYK").save(buf, "JPEG")
    assert jpeg.header(buf.getvalue()) is None
    buf = io.BytesIO()
    picture(64, 64).save(buf, "PNG")
    assert jpeg.header(buf.getvalue()) is None
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    why = _facts_or_why("image", truncated, fast=True)
    assert why == _facts_or_why("image", truncated) and why.startswith(f"{truncated}: cannot decode image (OSError: image file is truncated")


def test_draft_scale_is_pillows():
    for w, h in [(64, 64), (31, 40), (127, 300), (128, 128), (513, 257), (4000, 3000)]:
        at_least = 64 if min(w, h) >= 128 else 32
        img = Image.open(io.BytesIO(_jpeg_bytes(w, h)))
        img.draft("L", (at_least, at_least))
        s = jpeg.draft_scale(h, w, at_least)
        assert img.size == (-(-w // s), -(-h // s))


def _jpeg_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    picture(min(w, 256), min(h, 256)).resize((w, h)).save(buf, "JPEG")
    return buf.getvalue()
