"""Images as sequences: the only place that knows scan orders.

``slice_regions`` turns a batch of images (or CNN feature maps) ``(B, C, H, W)`` into a sequence
``(B, T, D)`` of flattened regions.

Scan orders:
- ``rows``: T = H steps, each a full pixel row (D = C * W), top to bottom.
- ``cols``: T = W steps, each a full column (D = C * H), left to right.
- ``patches``: T = (H/p) * (W/p) square patches of side p in raster order (D = C * p * p).
- ``snake``: the same patches in boustrophedon order: left to right on even patch rows,
  right to left on odd ones, so consecutive steps are always neighbours.
"""

from __future__ import annotations

import torch

from lstmimg.config import SCANS
from lstmimg.errors import LstmimgError


def sequence_shape(scan: str, patch: int, channels: int, height: int, width: int) -> tuple[int, int]:
    """``(T, D)``: number of steps and values per step for an image of this shape."""
    if scan == "rows":
        return height, channels * width
    if scan == "cols":
        return width, channels * height
    if scan in ("patches", "snake"):
        _check_patch(patch, height, width)
        return (height // patch) * (width // patch), channels * patch * patch
    raise LstmimgError(f"scan {scan!r} is not one of: {', '.join(SCANS)}")


def _check_patch(patch: int, height: int, width: int) -> None:
    if patch < 1 or height % patch or width % patch:
        allowed = [p for p in range(1, min(height, width) + 1) if height % p == 0 and width % p == 0]
        raise LstmimgError(f"--patch {patch} does not divide the image size {height}x{width}; allowed: {', '.join(map(str, allowed))}")


def _snake_order(grid_h: int, grid_w: int, device=None) -> torch.Tensor:
    """Raster indices of the patch grid visited in boustrophedon order."""
    idx = torch.arange(grid_h * grid_w, device=device).view(grid_h, grid_w)
    idx[1::2] = idx[1::2].flip(-1)
    return idx.reshape(-1)


def slice_regions(x: torch.Tensor, scan: str, patch: int = 1) -> torch.Tensor:
    """Slice ``x`` ``(B, C, H, W)`` into a region sequence ``(B, T, D)`` in the given scan order."""
    b, c, h, w = x.shape
    if scan == "rows":
        return x.permute(0, 2, 1, 3).reshape(b, h, c * w)
    if scan == "cols":
        return x.permute(0, 3, 1, 2).reshape(b, w, c * h)
    if scan in ("patches", "snake"):
        _check_patch(patch, h, w)
        gh, gw = h // patch, w // patch
        # (B, C, gh, p, gw, p) -> (B, gh, gw, C, p, p) -> (B, gh*gw, C*p*p)
        seq = x.reshape(b, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * patch * patch)
        if scan == "snake":
            seq = seq[:, _snake_order(gh, gw, x.device)]
        return seq
    raise LstmimgError(f"scan {scan!r} is not one of: {', '.join(SCANS)}")


def step_boxes(scan: str, patch: int, grid: tuple[int, int], size: tuple[int, int]) -> list[list[int]]:
    """Where each step of ``scan`` over a map of ``grid`` (h, w) cells (pixels, or a CNN's feature map)
    lies in an input of ``size`` (H, W): ``[y0, x0, y1, x1]`` per step, in the scan's order."""
    gh, gw = grid
    sy, sx = size[0] / gh, size[1] / gw

    def box(r0: int, c0: int, r1: int, c1: int) -> list[int]:
        return [round(r0 * sy), round(c0 * sx), round(r1 * sy), round(c1 * sx)]

    if scan == "rows":
        return [box(r, 0, r + 1, gw) for r in range(gh)]
    if scan == "cols":
        return [box(0, c, gh, c + 1) for c in range(gw)]
    ph, pw = gh // patch, gw // patch
    cells = [box(r * patch, c * patch, (r + 1) * patch, (c + 1) * patch) for r in range(ph) for c in range(pw)]
    order = _snake_order(ph, pw).tolist() if scan == "snake" else range(len(cells))
    return [cells[i] for i in order]
