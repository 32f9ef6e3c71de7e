
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lstmimg.data.augment import _warp, random_affine
from lstmimg.data.folders import expand_image_paths, split_folder
from lstmimg.data.images import channel_stats, decode_split, infer_image_format, load_image, normalize, open_image
from lstmimg.errors import LstmimgError


def test_split_folder_with_train_and_val(bars):
    splits = split_folder(bars)
    assert set(splits) == {"train", "val"}
    assert splits["train"].classes == ["diagonal", "horizontal", "vertical"]
    assert len(splits["train"].paths) == 72 and len(splits["val"].paths) == 24
    assert splits["val"].labels.count(2) == 8


def test_class_folders_only_get_a_deterministic_stratified_split(flat_bars):
    a = split_folder(flat_bars, val_split=0.25, seed=5)
    b = split_folder(flat_bars, val_split=0.25, seed=5)
    c = split_folder(flat_bars, val_split=0.25, seed=6)
    assert a["val"].paths == b["val"].paths != c["val"].paths
    assert sorted(a["val"].labels) == [0] * 5 + [1] * 5 + [2] * 5
    assert not set(a["val"].paths) & set(a["train"].paths)
    assert len(a["train"].paths) + len(a["val"].paths) == 60


def test_test_split_is_found_and_uses_train_classes(bars):
    (bars / "test" / "vertical").mkdir(parents=True)
    Image.new("L", (12, 12)).save(bars / "test" / "vertical" / "x.png")
    splits = split_folder(bars)
    assert splits["test"].labels == [2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: None, "no such folder"),
        (lambda root: root.mkdir(), "no class folders"),
        (lambda root: [(root / c).mkdir(parents=True) for c in "ab"], "class folder has no images"),
    ],
)
def test_bad_folders(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(LstmimgError, match=message) as info:
        split_folder(root)
    assert str(root) in str(info.value)


def test_val_class_missing_from_train(bars):
    (bars / "val" / "circle").mkdir()
    with pytest.raises(LstmimgError, match="classes not in .*train: circle"):
        split_folder(bars)


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "1", "LA", "I;16", "I", "F"])
def test_every_common_pillow_mode_converts(tmp_path, mode):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (10, 14, 3), dtype=np.uint8), "RGB")
    img = rgb.convert("L").convert(mode) if mode in ("I;16", "I", "F", "1", "LA") else rgb.convert(mode)
    ext = ".tiff" if mode in ("I", "F", "CMYK", "I;16") else ".png"
    path = save(img, tmp_path / f"img{ext}")
    gray = load_image(path, 1, (7, 5))
    color = load_image(path, 3, (7, 5))
    assert gray.shape == (1, 7, 5) and color.shape == (3, 7, 5)
    assert gray.dtype == color.dtype == np.uint8


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    path = save(Image.fromarray(arr), tmp_path / "deep.png")
    out = load_image(path, 1, (4, 4))
    assert out[0, 1, 1] == 255 and out[0, 0, 0] == 0


def test_first_frame_of_gif_and_tiff(tmp_path):
    frames = [Image.new("L", (6, 6), v) for v in (200, 10, 90)]
    for ext in (".gif", ".tiff"):
        path = tmp_path / f"anim{ext}"
        frames[0].save(path, save_all=True, append_images=frames[1:])
        assert abs(int(load_image(path, 1, (6, 6))[0, 3, 3]) - 200) <= 2


def test_transparent_pixels_become_white(tmp_path):
    path = save(Image.new("RGBA", (4, 4), (0, 0, 0, 0)), tmp_path / "clear.png")
    assert (load_image(path, 3, (4, 4)) == 255).all()


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), (b"", "empty file"), (b"hello, not an image", "not an image Pillow can read")],
)
def test_bad_image_files(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LstmimgError, match=f"{path}: {message}"):
        load_image(path, 1, (8, 8))


def test_truncated_image(tmp_path):
    rng = np.random.default_rng(0)
    full = save(Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)), tmp_path / "full.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:600])
    with pytest.raises(LstmimgError, match="cut.png: cannot decode image"):
        load_image(cut, 1, (8, 8))


def test_decode_split_skips_and_lists_unreadable_files(bars):
    bad = bars / "train" / "vertical" / "broken.png"
    bad.write_bytes(b"\x89PNG broken")
    split = split_folder(bars)["train"]
    images = decode_split(split, 1, (12, 12))
    assert images.images.shape == (72, 1, 12, 12) and images.images.dtype == torch.uint8
    assert images.skipped == [bad]
    assert images.labels.tolist().count(2) == 24


def test_infer_format_takes_grey_and_the_common_size(tmp_path):
    for i in range(3):
        Image.new("L", (20, 10)).save(tmp_path / f"{i}.png")
    Image.new("L", (8, 8)).save(tmp_path / "odd.png")
    assert infer_image_format(sorted(tmp_path.iterdir())) == (1, (10, 20))
    Image.new("RGB", (20, 10)).save(tmp_path / "color.png")
    assert infer_image_format(sorted(tmp_path.iterdir()))[0] == 3


def test_normalize_and_channel_stats():
    images = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)  # (2, 1, 1, 2)
    mean, std = channel_stats(images)
    assert mean == pytest.approx([0.75])
    x = normalize(images, mean, std)
    assert x.mean().item() == pytest.approx(0.0, abs=1e-6)


def test_random_affine_moves_pixels_but_keeps_shape_and_is_seeded():
    x = torch.zeros(4, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1
    a = random_affine(x, torch.Generator().manual_seed(0))
    b = random_affine(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x)
    assert a.sum(dim=(1, 2, 3)).sub(16).abs().max() < 6  # the blob survives, roughly the same mass


def test_random_affine_fills_the_border_with_the_image_not_black():
    """A zoomed-out or shifted photo shows its own reflection at the edge, never a black band the model
    would only see in training."""
    x = torch.rand(2, 3, 16, 16) * 0.5 + 0.5  # a bright texture: 0.5..1 everywhere
    zoom_out = torch.tensor([[[1.5, 0.0, 0.3], [0.0, 1.5, 0.0]]]).repeat(2, 1, 1)
    out = _warp(x, zoom_out)
    assert out.min() >= 0.5 - 1e-5
    assert out.shape == x.shape


def test_expand_image_paths(tmp_path, bars):
    files = expand_image_paths([str(bars / "val"), str(bars / "train" / "vertical" / "000.png"), str(bars / "train" / "diagonal" / "00*.png")])
    assert len(files) == 24 + 1 + 10
    with pytest.raises(LstmimgError, match="no such file or folder"):
        expand_image_paths([str(tmp_path / "nope.png")])
    with pytest.raises(LstmimgError, match="pattern matches no files"):
        expand_image_paths([str(tmp_path / "*.jpg")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LstmimgError, match="folder has no images"):
        expand_image_paths([str(tmp_path / "empty")])


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(50_000, 50_000))  # 2,500 megapixels in 80 bytes
    with pytest.raises(LstmimgError, match=r"bomb.png: refused: Image size \(2500000000 pixels\) exceeds limit .*decompression-bomb guard"):
        load_image(path, 1, (8, 8))


def test_huge_jpeg_is_shrunk_while_read(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (200, 30, 30)).save(path, quality=80)
    img = open_image(path, draft=("RGB", (40, 30)))
    assert img.size[0] <= 500  # JPEG decoded at 1/8 scale, not at 12 megapixels
    assert load_image(path, 3, (30, 40)).shape == (3, 30, 40)


def test_channel_stats_needs_no_float_copy_of_the_set():
    code = (
        "import resource, torch\nfrom lstmimg.data.images import channel_stats\n"
        "x = torch.randint(0, 256, (6000, 3, 160, 160), dtype=torch.uint8)\n"
        "channel_stats(x[:200])\n"  # the code it runs paged in first: the library's pages count in RSS too (up to ~100 MB, a flaky 1.04 on 3,000 images without this)
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "channel_stats(x)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 / x.numel())\n"
    )
    growth = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert growth < 0.5  # bytes of extra peak memory per uint8 value of the set (a float copy is 4)


def test_channel_stats_values():
    from lstmimg.data.images import channel_stats

    x = torch.randint(0, 256, (50, 3, 9, 7), dtype=torch.uint8)
    mean, std = channel_stats(x)
    f = x.double().div(255).transpose(0, 1).reshape(3, -1)
    assert mean == pytest.approx(f.mean(1).tolist(), abs=1e-6) and std == pytest.approx(f.std(1).tolist(), abs=1e-5)


def test_exif_orientation_is_applied(tmp_path):
    from lstmimg.data.images import infer_image_format, load_image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left of a landscape frame
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert infer_image_format([tmp_path / "phone.jpg"])[1] == (40, 20)
    arr = load_image(tmp_path / "phone.jpg", 3, (40, 20))
    assert arr[:, :10].mean() > 200 and arr[:, -10:].mean() < 50  # the band is on top once upright


def test_letterbox_keeps_the_aspect_with_grey_bars():
    from lstmimg.data.images import to_array

    wide = Image.new("RGB", (300, 200), (255, 0, 0))  # 3:2, into a square
    boxed = to_array(wide, 3, (96, 96), "letterbox")
    red_rows = np.flatnonzero((boxed[0] == 255).all(axis=1))
    assert boxed.shape == (3, 96, 96) and len(red_rows) == 64 and red_rows[0] == 16  # 96x64, centred
    assert (boxed[:, :16] == 128).all() and (boxed[:, 80:] == 128).all()  # grey bars above and below
    assert (to_array(wide, 3, (96, 96), "squash")[0] == 255).all()  # stretched: no bars
    same_aspect = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60)).astype(np.uint8), mode="L")
    assert np.array_equal(to_array(same_aspect, 1, (20, 30), "letterbox"), to_array(same_aspect, 1, (20, 30), "squash"))
