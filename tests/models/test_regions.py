import pytest
import torch

from lstmimg.errors import LstmimgError
from lstmimg.models.regions import sequence_shape, slice_regions


@pytest.fixture
def image():
    # (B=2, C=2, H=4, W=6) with every value distinct, so orders are checkable
    return torch.arange(2 * 2 * 4 * 6, dtype=torch.float32).view(2, 2, 4, 6)


def test_rows_are_pixel_rows_top_to_bottom(image):
    seq = slice_regions(image, "rows")
    assert seq.shape == (2, 4, 12)
    assert torch.equal(seq[1, 2], torch.cat([image[1, 0, 2], image[1, 1, 2]]))


def test_cols_are_columns_left_to_right(image):
    seq = slice_regions(image, "cols")
    assert seq.shape == (2, 6, 8)
    assert torch.equal(seq[0, 5], torch.cat([image[0, 0, :, 5], image[0, 1, :, 5]]))


def test_patches_in_raster_order(image):
    seq = slice_regions(image, "patches", 2)  # grid 2 x 3
    assert seq.shape == (2, 6, 2 * 2 * 2)
    # step 4 = grid row 1, grid col 1 -> pixels rows 2..3, cols 2..3
    assert torch.equal(seq[0, 4], image[0, :, 2:4, 2:4].reshape(-1))


def test_snake_reverses_every_other_patch_row(image):
    raster = slice_regions(image, "patches", 2)
    snake = slice_regions(image, "snake", 2)
    assert torch.equal(snake[:, :3], raster[:, :3])
    assert torch.equal(snake[:, 3:], raster[:, [5, 4, 3]])


@pytest.mark.parametrize("scan, patch", [("rows", 1), ("cols", 1), ("patches", 2), ("snake", 2)])
def test_sequence_shape_matches_slicing(image, scan, patch):
    assert slice_regions(image, scan, patch).shape[1:] == sequence_shape(scan, patch, 2, 4, 6)


def test_patch_must_divide_the_image(image):
    with pytest.raises(LstmimgError, match="--patch 4 does not divide the image size 4x6; allowed: 1, 2"):
        slice_regions(image, "patches", 4)


def test_unknown_scan(image):
    with pytest.raises(LstmimgError, match="not one of"):
        slice_regions(image, "zigzag")
