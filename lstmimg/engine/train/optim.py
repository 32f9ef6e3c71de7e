"""The optimiser, the learning-rate schedule and mixed precision of a training run."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lstmimg.config import TrainConfig


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer over the parameters that train. With ``--unfreeze-after``, the frozen backbone is a
    second group at ``--backbone-lr-scale`` of the learning rate, idle (no gradients) until unfrozen."""
    params: list = [p for p in model.parameters() if p.requires_grad]
    if cfg.unfreeze_after is not None and hasattr(model, "cnn"):
        backbone = list(model.cnn.parameters())
        ids = {id(p) for p in backbone}
        params = [{"params": [p for p in params if id(p) not in ids]}, {"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, drops: Callable[[], int] = lambda: 0,
                  cooldown: Callable[[], tuple[int, int] | None] = lambda: None):
    """LR factor per batch step: warm-up over the first ``cfg.warmup`` of the steps, then decay.

    - ``onecycle``: cosine rise from lr/25 to lr, then cosine fall to ~0 (the one-cycle policy);
    - ``cosine``: linear rise from ~0 to lr, then cosine fall to 0;
    - ``plateau``: linear warm-up, then constant, a tenth as large each time validation stalls
      (``drops()``: how many times so far, ``stopping.lr_drops``);
    - ``none``: linear warm-up, then constant.

    Once the stopping rule starts a cool-down (``cooldown()``: its first step and length in steps,
    ``stopping.cooldown_of``), the factor falls from where it was to 0 along a half cosine over it.
    """
    warm = max(1, int(cfg.warmup * total_steps)) if cfg.warmup > 0 else 0

    def factor(step: int) -> float:
        cool = cooldown()
        if cool is not None and step >= cool[0]:
            start, length = cool
            return planned(start) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / max(1, length))))
        return planned(step)

    def planned(step: int) -> float:
        if step < warm:
            if cfg.schedule == "onecycle":
                start = 1 / 25
                return start + (1 - start) * 0.5 * (1 - math.cos(math.pi * step / warm))
            return (step + 1) / warm
        if cfg.schedule == "none":
            return 1.0
        if cfg.schedule == "plateau":
            return 0.1 ** drops()
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_settings(cfg: TrainConfig, device: torch.device) -> tuple[bool, torch.dtype]:
    """Autocast on CUDA when ``cfg.amp``: bf16 where the GPU supports it, else fp16 (needs a scaler)."""
    if not (cfg.amp and device.type == "cuda"):
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
