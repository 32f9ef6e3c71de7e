"""How big the inputs are and how long training runs, fitted to the data when the user did not say.

A small set trained with a large batch for a fixed number of epochs gets too few optimizer steps:
160 videos at batch 64 are 3 steps an epoch, 45 in a run, and the learning-rate schedule has decayed
before the model learns. So, unless given:

- the batch shrinks with the set: about an eighth of an epoch's samples, a power of two from 16 to 64;
- a run makes at least ``MIN_STEPS`` optimizer steps: image runs get more epochs, video runs draw
  several clips per video per epoch (each a different random clip);
- inputs are shrunk to a longer side of at most ``MAX_IMAGE_SIDE`` (images) or ``MAX_VIDEO_SIDE`` (video
  frames) pixels, aspect kept: a phone photo's full size costs memory and time and, from scratch, no
  accuracy. With ``--pretrained`` images get the side the weights were trained at (224 for most of
  torchvision's), smaller images enlarged to it, video frames at most ``PRETRAINED_VIDEO_SIDE``
  (``input_side``).

- video clips take every ``CLIP_STRIDE``-th frame, unless the videos run well past a clip's span
  (``SEGMENT_WHEN``): then each clip spreads its frames over the whole video (segment sampling,
  ``plan_clips``), so a clip sees all of a video whatever its length;
- the run stops when validation stops improving (``stopping.py``), unless ``--epochs`` or
  ``--patience 0`` says otherwise.

Explicit options always win. ``Plan.reasons`` says what was chosen and why, for the run's first lines;
``plan_input`` fixes how the model reads the data (size, channels, motion input) and says why too.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from lstmimg.config import DEFAULT_MOTION, MIN_BATCH, ModelConfig, TrainConfig
from lstmimg.data.dataset import TrainingData
from lstmimg.engine.train.stopping import resolve, rule_of
from lstmimg.errors import LstmimgError

DEFAULT_EPOCHS = 15
MIN_STEPS = 300  # optimizer steps a run makes at least, when --epochs / --clips-per-video are not given
MAX_IMAGE_SIDE = 128  # default longer side of images trained from scratch
MAX_VIDEO_SIDE = 112  # default longer side of video frames
PRETRAINED_VIDEO_SIDE = 160  # with pretrained weights: a frozen resnet18 frame costs half what it does at 224 (benchmarks/backbone_size.py)
CLIP_STRIDE = 2  # default frame stride of clips
SEGMENT_WHEN = 1.5  # segment sampling when the longer training videos (90th percentile) pass this many clip spans (benchmarks/clip_plan.py)


@dataclass
class Plan:
    batch_size: int
    epochs: int
    clips_per_video: int = 1
    patience: int = 0  # the stopping rule (engine/train/stopping.py), resolved
    min_epochs: int = 0
    cooldown: int = 0
    annealed: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def apply(self, cfg: TrainConfig) -> TrainConfig:
        """``cfg`` with the planned values filled in (what ``config.json`` records, and ``--resume`` uses)."""
        return cfg.replace(batch_size=self.batch_size, epochs=self.epochs, clips_per_video=self.clips_per_video, patience=self.patience, min_epochs=self.min_epochs, cooldown=self.cooldown, stop_annealed=self.annealed)


def batches_in(samples: int, batch: int) -> int:
    """Batches an epoch of ``samples`` makes: a last one of fewer than ``MIN_BATCH`` samples is dropped
    (it would break batch norm); at least 1, for the LR schedule."""
    return max(1, samples // batch + (samples % batch >= MIN_BATCH))


def auto_batch(samples: int) -> int:
    """About an eighth of an epoch's samples, as a power of two between 16 and 64."""
    target = max(1, samples // 8)
    return int(min(64, max(16, 2 ** math.floor(math.log2(target))))) if target >= 16 else 16


def plan_training(cfg: TrainConfig, kind: str, samples: int, world: int = 1) -> Plan:
    """The batch, epochs and clips per video of a run on ``samples`` training images or videos, over
    ``world`` processes (which share one global batch, so they take one process's steps)."""
    batch = cfg.batch_size or auto_batch(samples)
    reasons = [] if cfg.batch_size else [f"batch {batch}"]
    clips = cfg.clips_per_video or 1
    epochs = cfg.epochs or DEFAULT_EPOCHS
    steps = batches_in(samples * clips, batch)
    if kind == "video" and not cfg.clips_per_video and not cfg.epochs and steps * epochs < MIN_STEPS:
        clips = math.ceil(MIN_STEPS / epochs * batch / samples)
        steps = batches_in(samples * clips, batch)
        reasons.append(f"{clips} clips per video per epoch")
    elif not cfg.epochs and steps * epochs < MIN_STEPS:
        epochs = math.ceil(MIN_STEPS / steps)
        reasons.append(f"{epochs} epochs")
    if world > 1:
        reasons.append(f"the batch shared by {world} processes")
    patience, min_epochs, cooldown, annealed = resolve(cfg.patience, cfg.min_epochs, cfg.cooldown, cfg.epochs is not None, epochs, cfg.stop_annealed)
    noun = "videos" if kind == "video" else "images"
    head = f"{samples} {noun}: " if reasons else ""
    why = f" (at least {MIN_STEPS} steps; options given win)" if reasons else ""
    lines = [f"{head}{', '.join(reasons + [f'{steps} steps/epoch'])}{why}"] if reasons else []
    rule = rule_of(patience, min_epochs, cooldown, annealed)
    if rule is not None and cfg.patience is None:
        lines.append(f"up to {epochs} epochs: {rule.describe()} (--patience 0 for all of them)")
    return Plan(batch, epochs, clips, patience, min_epochs, cooldown, annealed, lines)


def plan_input(data: TrainingData, model_cfg: ModelConfig, cfg: TrainConfig) -> tuple[ModelConfig, list[str]]:
    """Fix how the model reads ``data`` before it is loaded: the input size (``cfg.img_size``, else the
    files' size shrunk to ``input_side``), 3 channels for pretrained weights (grey images read as RGB),
    the motion input (``--motion auto``: ``DEFAULT_MOTION`` for the data's kind, none when a frozen
    backbone's features are to be cached). Returns the model config with its motion resolved, and notes
    for the run's first lines."""
    notes = []
    if not cfg.img_size:
        side, why = input_side(data.kind, model_cfg)
        grow = model_cfg.pretrained and data.kind == "image"  # pretrained weights see images at their own size, small ones too
        data.size = capped_size(data.found_size, side, grow)
        if data.size != data.found_size:
            (h, w), (th, tw) = data.found_size, data.size
            notes.append(f"{data.kind}s are {h}x{w}: trained at {th}x{tw} ({why}; --img-size to change)")
    if data.size_counts and len(data.size_counts) > 1:  # say which size was chosen and why, and what happens to the others
        read = sum(data.size_counts.values())
        h, w = data.found_size
        others = ", ".join(f"{a}x{b} x{n}" for (a, b), n in sorted(data.size_counts.items(), key=lambda kv: -kv[1])[1:4])
        more = len(data.size_counts) - 4
        given = "--img-size" if cfg.img_size else f"the most common size, {h}x{w} ({data.size_counts.get((h, w), 0)} of {read} images)"
        notes.append(f"images come in {len(data.size_counts)} sizes (others: {others}{f', {more} more' if more > 0 else ''}): all are resized to "
                     f"{data.size[0]}x{data.size[1]} from {given}, " + ("aspect kept, grey bars (--fit letterbox)" if model_cfg.fit == "letterbox" else "aspect not kept (--fit squash)"))
    data.fit = model_cfg.fit
    if model_cfg.pretrained:
        data.channels = 3  # the weights were trained on RGB: grey images are read as RGB
    if model_cfg.motion == "auto":
        motion = DEFAULT_MOTION[data.kind]
        if motion != "none" and model_cfg.freeze_backbone and cfg.feature_cache:  # keep the frozen features cacheable
            motion = "none"
            notes.append("backbone frozen: no motion input by default, so its features can be cached (--motion flow adds it, without the feature cache)")
        model_cfg = model_cfg.replace(motion=motion)
    if model_cfg.motion != "none":
        if data.kind != "video":
            raise LstmimgError(f"--motion {model_cfg.motion} is for videos; {data.root} holds images")
        data.set_motion(model_cfg.motion)
    return model_cfg, notes


def plan_clips(cfg: TrainConfig, data: TrainingData) -> tuple[int | None, str | None]:
    """The frame stride clips are cut at (``cfg.frame_stride`` when given): ``CLIP_STRIDE``, or
    ``SEGMENTS`` when the longer training videos (their headers' frame counts, a spread of them) run
    past ``SEGMENT_WHEN`` spans of such a clip. Returns it and a note for the run's first lines."""
    from lstmimg.data import clips as V

    if data.kind != "video" or cfg.frame_stride is not None:
        return cfg.frame_stride, None
    counts = V.frame_counts(data.splits["train"].paths, samples=64)
    span = (cfg.clip_len - 1) * CLIP_STRIDE + 1
    if not counts or float(np.percentile(counts, 90)) <= SEGMENT_WHEN * span:
        return CLIP_STRIDE, None
    lengths = f"{min(counts)}-{max(counts)}" if min(counts) != max(counts) else f"{min(counts)}"
    return V.SEGMENTS, (f"videos of {lengths} frames, longer than the {span} a clip at stride {CLIP_STRIDE} spans: each clip's {cfg.clip_len} frames are "
                        "spread over the whole video (--frame-stride N for clips of every N-th frame)")


def segment_gap(data: TrainingData, clip_len: int) -> int:
    """The typical distance between a segment-sampled clip's frames: the median training video's
    length over ``clip_len`` (what a stream is read at by a model trained on segments)."""
    from lstmimg.data import clips as V

    train = data.sets.get("train")
    lengths = [len(v) for v in train.videos] if isinstance(train, V.VideoSet) else V.frame_counts(data.splits["train"].paths, samples=64)
    return max(1, round(float(np.median(lengths)) / clip_len)) if lengths else 1


def clip_meta(cfg: TrainConfig, data: TrainingData) -> dict:
    """How a video run's clips were cut and scored, for its checkpoint: inference, eval and streams do the
    same. A model trained on segments also records ``segment_gap``, the spacing its frames had."""
    from lstmimg.data import clips as V
    from lstmimg.data.motion import settings

    meta = {"clip_len": cfg.clip_len, "frame_stride": cfg.frame_stride, "val_clips": cfg.val_clips, "motion": settings(data.motion, V.motion_stride(cfg.frame_stride))}
    if cfg.frame_stride == V.SEGMENTS:
        meta["segment_gap"] = segment_gap(data, cfg.clip_len)
    return meta


def input_side(kind: str, model_cfg: ModelConfig | None = None) -> tuple[int, str]:
    """The longer side a run's ``kind`` of inputs ("image" or "video") is shrunk to by default, and why
    (for the run's first lines): the weights' own size with ``--pretrained``, else the measured cap."""
    if model_cfg is not None and model_cfg.pretrained:
        from lstmimg.models.backbones import weights_side

        side = weights_side(model_cfg.backbone, model_cfg.weights)
        if kind == "video" and side > PRETRAINED_VIDEO_SIDE:
            return PRETRAINED_VIDEO_SIDE, f"longer side at most {PRETRAINED_VIDEO_SIDE} with pretrained weights, for the cost of every frame"
        return side, f"{model_cfg.backbone}'s weights were trained at {side}"
    side = MAX_VIDEO_SIDE if kind == "video" else MAX_IMAGE_SIDE
    return side, f"longer side at most {side}"


def _takes(model_cfg: ModelConfig, kind: str, size: tuple[int, int]) -> bool:
    """Whether a model built from ``model_cfg`` reads inputs of ``size`` (its pooling leaves something)."""
    import torch

    from lstmimg.models.registry import build_model

    h, w = size
    check_fits(model_cfg.replace(img_size=size), kind)
    try:
        x = torch.zeros(1, 2, model_cfg.in_channels, h, w) if kind == "video" else torch.zeros(1, model_cfg.in_channels, h, w)
        with torch.no_grad():
            build_model(model_cfg.replace(img_size=size)).eval()(x)  # building probes the CNN too
    except RuntimeError as err:  # "Output size is too small", "Kernel size can't be greater than actual input size"
        if "allocate" in str(err):  # not too small: too large for this machine's memory
            raise LstmimgError(f"--img-size {h}x{w}: too large: one {kind} at that size does not fit in this machine's memory") from None
        return False
    return True


def check_fits(model_cfg: ModelConfig, kind: str) -> None:
    """Refuse an input size at which one sample's first layer alone (float32; a backbone's first layer, at half
    size, is about 16 planes) would take a quarter of this machine's memory: before anything is allocated,
    since where memory is overcommitted such a tensor is granted and the process then killed without a word."""
    h, w = model_cfg.img_size
    planes = max(model_cfg.in_channels, 16 if model_cfg.backbone else model_cfg.cnn_channels[0])
    need = 4 * planes * h * w * (2 if kind == "video" else 1)
    if need > _memory() / 4:
        raise LstmimgError(f"--img-size {h}x{w}: too large: one {kind} at that size takes {need / 2**30:.1f} GiB in the model's first layer "
                           f"({_memory() / 2**30:.0f} GiB of memory here)")


def _memory() -> float:
    """Bytes of physical memory (infinite where the OS does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return float("inf")


def smallest_side(model_cfg: ModelConfig, kind: str) -> int | None:
    """None when the model takes its ``img_size``; else the smallest side s such that it takes inputs
    of at least s x s (found by doubling, then halving the gap)."""
    h, w = model_cfg.img_size
    if _takes(model_cfg, kind, (h, w)):
        return None
    grow = lambda s: (max(h, s), max(w, s))  # noqa: E731
    low, high = max(h, w), max(h, w) * 2
    while not _takes(model_cfg, kind, grow(high)):
        low, high = high, high * 2
        if high > 4096:
            raise LstmimgError(f"the model reads no input up to {high // 2}x{high // 2} pixels")
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if _takes(model_cfg, kind, grow(mid)) else (mid, high)
    return high


def capped_size(found: tuple[int, int], cap: int = MAX_IMAGE_SIDE, grow: bool = False) -> tuple[int, int]:
    """``found`` (H, W) shrunk so its longer side is at most ``cap``, aspect kept; with ``grow``, also
    enlarged to it (a smaller image is brought up to the size pretrained weights were trained at)."""
    h, w = found
    scale = cap / max(h, w) if grow else min(1.0, cap / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))
