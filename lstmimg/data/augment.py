"""Augmentation: random rotation, shift and zoom of a float batch, run on the device in the training loop."""

from __future__ import annotations

import math

import torch

AFFINE_RANGES = (10.0, 0.1, (0.9, 1.1))  # rotation degrees, shift (fraction of size), zoom range


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = AFFINE_RANGES[0],
    translate: float = AFFINE_RANGES[1],
    scale: tuple[float, float] = AFFINE_RANGES[2],
    motion: str = "none",
) -> torch.Tensor:
    """Randomly rotate, shift and scale each image of a float batch ``(B, C, H, W)``; the area brought
    in from outside is the image's reflection.

    Clips ``(B, T, C, H, W)`` get one transform per clip, the same for all its frames, so motion is kept.
    Frames with ``motion`` channels (0..1 like the rest, motion.py) get their flow vectors turned and
    scaled with the frame, and no motion in the empty area.
    """
    if x.dim() == 5:
        b, t = x.shape[:2]
        theta = _random_theta(b, generator, degrees, translate, scale).to(x.device).repeat_interleave(t, dim=0)
        return _warp(x.flatten(0, 1), theta, motion).view(x.shape)
    return _warp(x, _random_theta(x.shape[0], generator, degrees, translate, scale).to(x.device), motion)


def random_affine_draws(batch: int, generator: torch.Generator) -> None:
    """Consume the random draws ``random_affine`` makes for a batch, without transforming anything
    (replaying an interrupted epoch)."""
    _random_theta(batch, generator, *AFFINE_RANGES)


def _warp(x: torch.Tensor, theta: torch.Tensor, motion: str = "none") -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` warped by ``theta``. The area the warp brings in from outside the image is
    its reflection: a photo has no black border, and a black edge the model could learn from never
    appears at inference (measured: benchmarks/image_defaults.py). Motion channels get no motion there."""
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    if motion == "none":
        return torch.nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    from lstmimg.data.motion import ZERO, warp_motion

    rgb = torch.nn.functional.grid_sample(x[:, :3], grid, padding_mode="reflection", align_corners=False)
    moved = torch.nn.functional.grid_sample(x[:, 3:] - ZERO / 255, grid, padding_mode="zeros", align_corners=False)  # no motion is 0 outside
    out = warp_motion(torch.cat([rgb, moved], 1), theta, motion)
    return torch.cat([out[:, :3], out[:, 3:] + ZERO / 255], dim=1)


def _random_theta(b: int, generator: torch.Generator, degrees: float, translate: float, scale: tuple[float, float]) -> torch.Tensor:
    """(B, 2, 3) affine matrices: rotation within +-degrees, shift within +-translate, zoom in scale."""
    rand = lambda: torch.rand(b, generator=generator)  # noqa: E731
    angle = (rand() * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + rand() * (scale[1] - scale[0])
    tx, ty = (rand() * 2 - 1) * 2 * translate, (rand() * 2 - 1) * 2 * translate  # grid units: 2 = full width
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
