"""Timing and FLOP counting shared by the bench sections."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

FLOPS_METHOD = (
    "2 x multiply-adds of Conv2d, Linear and LSTM/GRU/RNN layers, counted from their shapes by forward hooks "
    "on one sample (recurrent: gates x hidden x (input + hidden) per step and direction); element-wise ops, "
    "pooling and normalisation are not counted"
)


@dataclass
class Timing:
    """Seconds of one measured quantity: median and spread over ``n`` runs."""

    median: float
    low: float
    high: float
    p95: float
    n: int

    @property
    def spread(self) -> float:
        """Half the range as a fraction of the median: 0.05 reads "±5%" (0 for one run)."""
        return (self.high - self.low) / 2 / self.median if self.median else 0.0

    @classmethod
    def of(cls, values: list[float]) -> Timing:
        ordered = sorted(values)
        return cls(statistics.median(ordered), ordered[0], ordered[-1], ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], len(ordered))


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1, device: torch.device | None = None) -> Timing:
    """Time ``fn`` ``repeats`` times after ``warmup`` untimed calls."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    values = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        values.append(time.perf_counter() - t0)
    return Timing.of(values)


def measure_pair(a: Callable[[], object], b: Callable[[], object], repeats: int, device: torch.device | None = None, warmup: int = 2) -> tuple[Timing, Timing]:
    """Time two functions alternately, swapping which goes first each round, so machine noise and
    cache effects hit both alike."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        a(), b()
    sync()
    times: dict[int, list[float]] = {0: [], 1: []}
    for round_ in range(repeats):
        order = ((0, a), (1, b)) if round_ % 2 == 0 else ((1, b), (0, a))
        for key, fn in order:
            t0 = time.perf_counter()
            fn()
            sync()
            times[key].append(time.perf_counter() - t0)
    return Timing.of(times[0]), Timing.of(times[1])


def count_flops(model: nn.Module, sample: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``sample`` (batch of one), by ``FLOPS_METHOD``."""
    total = 0

    def conv(mod: nn.Conv2d, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2 * out.numel() * k

    def linear(mod: nn.Linear, inp, out):
        nonlocal total
        total += 2 * out.numel() * mod.in_features

    def recurrent(mod: nn.RNNBase, inp, out):
        nonlocal total
        gates = {"LSTM": 4, "GRU": 3}.get(mod.mode, 1)
        steps = inp[0].shape[1] if mod.batch_first else inp[0].shape[0]
        dirs = 2 if mod.bidirectional else 1
        for layer in range(mod.num_layers):
            in_size = mod.input_size if layer == 0 else mod.hidden_size * dirs
            total += 2 * gates * mod.hidden_size * (in_size + mod.hidden_size) * steps * dirs * inp[0].shape[0 if mod.batch_first else 1]

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, nn.RNNBase):
            hooks.append(m.register_forward_hook(recurrent))
    try:
        with torch.inference_mode():
            model.eval()(sample)
    finally:
        for h in hooks:
            h.remove()
    return total // sample.shape[0]


