"""A frozen backbone's features, computed once: later epochs run only the sequence model and the head.

With ``--freeze-backbone`` the CNN's output for an image (or a video frame) never changes, so every
split held in memory is run through the CNN once, and its images (or frames) are replaced by their
feature maps ``(F, h, w)``, kept in float16. Clips are then cut from the per-frame maps exactly as they
were from the frames. Augmentation is off while features are cached (a random affine of the image
cannot be applied to its features); ``--no-feature-cache`` trains on the images, augmented.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lstmimg import data as D
from lstmimg.models import run_cnn

Progress = Callable[[str, int, int], None]


@torch.inference_mode()
def cnn_features(cnn: nn.Module, images: torch.Tensor, mean, std, device: torch.device, backbone: bool, batch: int = 64) -> torch.Tensor:
    """Feature maps ``(N, F, h, w)`` (float16, CPU) of uint8 images ``(N, C, H, W)``."""
    cnn.eval()
    out = [run_cnn(cnn, D.normalize(images[i : i + batch].to(device), mean, std), backbone).half().cpu() for i in range(0, len(images), batch)]
    return torch.cat(out).contiguous()


def cache_features(task, model: nn.Module, device: torch.device, progress: Progress | None = None) -> None:
    """Replace the images (or video frames) of every split ``task`` holds in memory by the frozen CNN's
    features of them; from then on the task hands out features (``task.features``)."""
    report = progress or (lambda split, done, total: None)
    for name, data in task.sets.items():
        if hasattr(data, "images"):
            total = len(data.images)
            chunks = []
            for i in range(0, total, 256):
                chunks.append(cnn_features(model.cnn, data.images[i : i + 256], task.mean, task.std, device, model.backbone))
                report(name, min(total, i + 256), total)
            data.images = torch.cat(chunks)
        elif hasattr(data, "videos"):
            frames = sum(len(v) for v in data.videos)
            done = 0
            for i, video in enumerate(data.videos):
                data.videos[i] = cnn_features(model.cnn, video, task.mean, task.std, device, model.backbone)
                done += len(video)
                report(name, done, frames)
    task.features = True
