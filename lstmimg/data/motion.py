"""Motion as input: optical flow (or frame differences) beside the RGB frames of a video.

A small CNN with pooling cannot see a shift of two or three pixels between frames, so a camera pan
and the same pan played backwards look alike to it. Dense optical flow makes that motion plain. With
``--motion flow`` every frame ``t`` gets OpenCV's DIS optical flow from frame ``t - stride`` (the frame
before it in any clip cut at ``--frame-stride``) as two extra channels; with ``--motion diff``, the grey
difference to that frame as one. The first ``stride`` frames of a video have no frame before them:
their motion is zero, as is the first frame of a stream.

Motion is stored with the frames as uint8 channels centred on ``ZERO`` (128): flow in pixels at the
model's input size times ``FLOW_SCALE`` (so +-16 px, in steps of 1/8 px), differences halved. So
frames with motion are ``(T, 3 + k, H, W)`` uint8 like any frames: clips, the frame cache, DataLoader
workers and normalisation need nothing new. Only augmentation must know: a rotated or zoomed flow
field has rotated, scaled vectors (``warp_motion``).
"""

from __future__ import annotations

import numpy as np
import torch

METHODS = ("none", "diff", "flow")
CHANNELS = {"auto": 0, "none": 0, "diff": 1, "flow": 2}  # "auto" left in a config that fit never resolved: no motion
ZERO = 128  # the uint8 value of no motion
FLOW_SCALE = 8.0  # uint8 units per pixel of flow
DIFF_SCALE = 0.5  # uint8 units per grey level of difference
PRESET = "ultrafast"  # DIS preset (benchmarks/motion.py measures the presets)


def channels(method: str) -> int:
    """Extra input channels ``method`` adds to each frame."""
    return CHANNELS[method]


def _grey(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _flow_engine():
    import cv2

    return cv2.DISOpticalFlow_create({"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                                      "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[PRESET])


def _encode(values: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.rint(values * scale + ZERO), 0, 255).astype(np.uint8)


class MotionStream:
    """Motion of each frame of a stream from the one fed before it: ``add(rgb)`` returns the frame
    ``(H, W, 3)`` with its motion channels appended ``(H, W, 3 + k)``. Feeding a video's frames one by
    one gives what ``with_motion(frames, method, 1)`` gives for all of them at once, so a long video
    read window by window sees the same input as in one pass."""

    def __init__(self, method: str):
        self.method, self.prev = method, None
        self.engine = _flow_engine() if method == "flow" else None

    def add(self, rgb: np.ndarray) -> np.ndarray:
        if not channels(self.method):
            return rgb
        grey = _grey(rgb)
        prev, self.prev = (self.prev if self.prev is not None else grey), grey
        if self.method == "flow":
            motion = _encode(self.engine.calc(prev, grey, None), FLOW_SCALE)  # (H, W, 2): dx, dy
        else:
            motion = _encode(grey.astype(np.float32) - prev, DIFF_SCALE)[..., None]  # (H, W, 1)
        return np.concatenate([rgb, motion], axis=-1)


def with_motion(frames: np.ndarray, method: str, stride: int) -> np.ndarray:
    """RGB frames ``(T, H, W, 3)`` uint8 with each frame's motion from frame ``t - stride`` appended:
    ``(T, H, W, 3 + k)``. Frames before ``stride`` have zero motion."""
    if not channels(method) or len(frames) == 0:
        return frames
    streams = [MotionStream(method) for _ in range(min(stride, len(frames)))]  # frames t, t+stride, ... form one stream
    return np.stack([streams[t % stride].add(frame) for t, frame in enumerate(frames)])


def warp_motion(x: torch.Tensor, theta: torch.Tensor, method: str) -> torch.Tensor:
    """After ``x`` ``(N, C, H, W)`` (0..1, motion in channels 3:) was warped by the affine ``theta``
    ``(N, 2, 3)`` (``affine_grid``'s output-to-input map), make its flow vectors those of the warped
    video: each vector ``v`` of the input becomes ``A^-1 v`` (in the grid's normalised units). Called
    on motion already centred on 0, so the empty border a warp leaves is no motion."""
    if method != "flow":
        return x
    n, _, h, w = x.shape
    units = torch.tensor([2.0 / w, 2.0 / h], device=x.device).view(1, 2, 1)  # pixels -> grid units
    inverse = torch.linalg.inv(theta[:, :, :2].float())  # (N, 2, 2)
    flow = x[:, 3:5].reshape(n, 2, h * w) * units
    x = x.clone()
    x[:, 3:5] = (inverse @ flow / units).view(n, 2, h, w)
    return x


def normalization(method: str) -> tuple[list[float], list[float]]:
    """Fixed mean and std (0..1 scale) of the motion channels, whatever the data: no motion is 0 and
    one unit is 2 px of flow, or 32 grey levels of difference. (Statistics of the data would blow up
    the sensor noise of a still camera, whose motion channels are nearly constant.)"""
    k = channels(method)
    unit = 2 * FLOW_SCALE if method == "flow" else 32 * DIFF_SCALE
    return [ZERO / 255] * k, [unit / 255] * k


def settings(method: str, stride: int) -> dict:
    """What a checkpoint records of its motion input, so inference and exports compute the same."""
    if not channels(method):
        return {"method": "none"}
    out = {"method": method, "stride": stride, "zero": ZERO}
    if method == "flow":
        out.update(algorithm="DIS", preset=PRESET, scale=FLOW_SCALE, channels=["dx", "dy"])
    else:
        out.update(scale=DIFF_SCALE, channels=["grey difference"])
    return out
