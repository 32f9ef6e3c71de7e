"""The optimisation step: ``train_one_epoch`` trains a ``TrainState`` on batches as a ``Recipe`` says
(device, augmentation, normalisation, autocast, clipping, the processes sharing a loss). ``training.fit``
drives it epoch by epoch; ``lstmimg bench`` times it against a plain loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from lstmimg.data.augment import random_affine, random_affine_draws
from lstmimg.data.images import normalize
from lstmimg.engine.train import distributed as dist
from lstmimg.engine.train.trainstate import TrainState


@dataclass
class Recipe:
    """How an optimisation step is made, besides the state it changes."""

    net: nn.Module  # the model as trained: the DDP wrapper under torchrun
    criterion: nn.Module
    mean: list[float]
    std: list[float]
    device: torch.device
    augment: bool
    clip_grad: float  # 0: no clipping
    amp_dtype: torch.dtype | None = None  # autocast dtype on CUDA; None: full precision
    dist: dist.Dist = dist.Dist()
    features: bool = False  # batches are a frozen backbone's cached features: no scaling, augmentation or normalisation
    motion: str = "none"  # the frames' motion channels (motion.py): augmentation turns flow vectors with the frame


class NonFiniteLoss(Exception):
    def __init__(self, value: float, step: int):
        super().__init__(value, step)
        self.value, self.step = value, step


def train_one_epoch(state: TrainState, batches: Iterable, recipe: Recipe, on_step: Callable[[dict], None] = lambda info: None,
                    stop: Callable[[], bool] = lambda: False) -> bool:
    """Train on ``batches`` of uint8 ``(B, [T,] C, H, W)`` and labels, from ``state.step`` on: the first
    ``state.step`` batches were trained before an interruption, so only their random draws are made
    again. ``on_step`` gets the running figures after every batch. Returns True when it stopped early
    because ``stop()`` became true (on any process), after finishing that step."""
    recipe.net.train()
    totals, skip, device = state.totals, state.step, recipe.device
    t0 = time.perf_counter() - totals.seconds
    for step, (x, y) in enumerate(_timed(batches, totals), 1):
        if step <= skip:  # already trained before the interruption: consume the same random draws
            if recipe.augment:
                random_affine_draws(len(y), state.generator)
            continue
        if recipe.features:
            x = x.to(device, non_blocking=True).float()  # (B, [T,] F, h, w): what the frozen CNN made of the images
        else:
            x = x.to(device, non_blocking=True).float().div_(255)  # 0..1
            if recipe.augment:
                x = random_affine(x, state.generator, motion=recipe.motion)
            x = normalize(x, recipe.mean, recipe.std)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=recipe.amp_dtype or torch.float32, enabled=recipe.amp_dtype is not None):
            logits = recipe.net(x, features=True) if recipe.features else recipe.net(x)  # (B, num_classes)
            loss = recipe.criterion(logits.float(), y)
        local_loss = loss.item()
        (loss_sum,) = dist.sum_all([local_loss], recipe.dist, device)  # every process sees a NaN on any
        if not math.isfinite(loss_sum):
            raise NonFiniteLoss(loss_sum, step)
        state.optimizer.zero_grad(set_to_none=True)
        if state.scaler is not None:  # fp16: scale the loss so small gradients survive, unscale before clipping
            state.scaler.scale(loss).backward()
            state.scaler.unscale_(state.optimizer)
        else:
            loss.backward()
        if recipe.clip_grad > 0:
            nn.utils.clip_grad_norm_(recipe.net.parameters(), recipe.clip_grad)
        if state.scaler is not None:
            state.scaler.step(state.optimizer)
            state.scaler.update()
        else:
            state.optimizer.step()
        state.schedule.step()
        state.step, totals.seen = step, totals.seen + len(y)
        totals.loss_sum += local_loss * len(y)
        totals.correct += (logits.argmax(1) == y).sum().item()
        totals.seconds = time.perf_counter() - t0
        on_step({"step": step, "loss": totals.loss, "acc": totals.acc, "samples_per_s": totals.seen / max(1e-9, totals.seconds),
                 "step_loss": local_loss, "lr": state.optimizer.param_groups[0]["lr"]})
        if dist.any_all(stop(), recipe.dist, device):
            return True
    totals.seconds = time.perf_counter() - t0
    return False


def _timed(batches: Iterable, totals) -> Iterable:
    """``batches``, adding the time spent waiting for each to ``totals.data_seconds``."""
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        totals.data_seconds += time.perf_counter() - t0
        yield batch
