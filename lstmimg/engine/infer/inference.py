"""The one inference path: normalise as in training, batch with bounded prefetch, forward in eval mode.

``Predictor`` is a model ready to classify uint8 input; ``predict`` (``collection``), ``evaluate``
(labelled folders) and validation during training (``evaluation``), ``lstmimg video`` (``timeline``),
``explain`` and export verification all classify through it, and decode ahead of it through
``prefetch``, never more than two batches ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from lstmimg.checkpoint import Checkpoint
from lstmimg.data.clips import shuffle_time, uniform_clips
from lstmimg.data.images import normalize
from lstmimg.engine.infer.loading import resolve_device


class Predictor:
    """A model ready to classify: uint8 images ``(B, C, H, W)`` or clips ``(B, T, C, H, W)`` are
    normalised with the training set's statistics, moved to ``device`` and run in eval mode without
    autograd. Returns class probabilities on the CPU."""

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float], device: torch.device, features: bool = False):
        self.net, self.mean, self.std, self.device = net, list(mean), list(std), device
        self.features = features  # the input is a frozen backbone's cached features, not images

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, device: str | torch.device = "cpu") -> Predictor:
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        return cls(ckpt.model.to(dev), ckpt.mean, ckpt.std, dev)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        if self.features:
            return x.to(self.device, non_blocking=True).float()
        return normalize(x.to(self.device, non_blocking=True), self.mean, self.std)

    @torch.inference_mode()
    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` class probabilities for a batch."""
        x = self._input(x)
        logits = self.net(x, features=True) if self.features else self.net(x)
        return logits.float().softmax(1).cpu()

    @torch.inference_mode()
    def prefix_probs(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, K)`` class probabilities after the model has read the first k steps (or frames) of
        each input, k = 1..T (the model's ``prefix_logits``)."""
        return self.net.prefix_logits(self._input(x)).float().softmax(-1).cpu()

    @torch.inference_mode()
    def probs_carried(self, clips: torch.Tensor, state=None):
        """Probabilities for a window of a video ``(B, T, C, H, W)`` read on from the recurrent
        ``state`` the previous window left (None: from the start), and the state after it."""
        logits, state = self.net.forward_window(self._input(clips), state)
        return logits.float().softmax(1).cpu(), state


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """``items``, produced on a background thread at most ``depth`` ahead of the consumer (decoding
    overlaps the model's work, memory stays bounded). An error in the producer is raised here; when the
    consumer stops (an error, Ctrl-C, ``break``), the producer stops after the item in hand."""
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth - 1))  # plus the one the producer holds
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as err:  # handed to the consumer, which raises it
            put((None, err))
            return
        put((end, None))

    thread = threading.Thread(target=produce, name="lstmimg-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is end:
                return
            yield item
    finally:
        stop.set()


def image_probs(predictor: Predictor, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Probabilities ``(N, K)`` for uint8 images ``(N, C, H, W)`` held in memory."""
    out = [predictor.probs(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def video_probs(predictor: Predictor, videos: Sequence[torch.Tensor], clip_len: int, stride: int, clips_per_video: int,
                batch_size: int = 64, shuffler: torch.Generator | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Video probabilities ``(N, K)`` (softmax averaged over each video's ``clips_per_video`` evenly
    spaced clips), and each video's clip probabilities. Clips of several videos share a model call.
    ``shuffler`` shuffles each clip's frames in time (the order-blind ablation)."""
    def batches():
        pending, owners = [], []
        for i, video in enumerate(videos):
            clips = uniform_clips(video, clip_len, stride, clips_per_video)  # (n, T, C, H, W)
            if shuffler is not None:
                clips = shuffle_time(clips, shuffler)
            pending.append(clips)
            owners += [i] * len(clips)
            if len(owners) >= batch_size:
                yield torch.cat(pending), owners
                pending, owners = [], []
        if pending:
            yield torch.cat(pending), owners

    per_video: list[list[torch.Tensor]] = [[] for _ in videos]
    for clips, owners in prefetch(batches()):
        for owner, p in zip(owners, predictor.probs(clips)):
            per_video[owner].append(p)
    stacked = [torch.stack(ps) for ps in per_video]
    return torch.stack([p.mean(0) for p in stacked]), stacked

