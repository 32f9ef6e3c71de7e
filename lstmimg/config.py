"""Configuration: every default lives here, once.

``ModelConfig`` says what network to build; ``TrainConfig`` says how to train it. Both are plain
dataclasses that round-trip through ``to_dict`` / ``from_dict`` (what checkpoints and run folders store),
and ``from_dict`` rejects unknown keys so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lstmimg.errors import LstmimgError

SCANS = ("rows", "cols", "patches", "snake")
MOTIONS = ("auto", "none", "diff", "flow")
DEFAULT_MOTION = {"image": "none", "video": "flow"}  # measured: benchmarks/motion.py, docs/motion.md
FUSIONS = ("early", "two-stream")
FITS = ("squash", "letterbox")  # images.to_array
POOLS = ("last", "mean")
RNNS = ("lstm", "gru", "rnn")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "plateau", "none")
DEVICES = ("auto", "cpu", "cuda", "mps")
LOADS = ("auto", "memory", "disk")
MIN_BATCH = 2  # a training batch of one sample breaks batch norm: such a batch is dropped
DEFAULT_MODELS = {"image": "cnn_lstm", "video": "lrcn"}  # what `train` builds when --model is not given


def check_device(name: str) -> str:
    """``name`` if it names a kind of device: auto, cpu, mps, cuda or cuda:N (whether it exists here is
    ``engine.infer.loading.resolve_device``'s question)."""
    import re

    if name not in DEVICES and not re.fullmatch(r"cuda:\d+", str(name)):
        raise LstmimgError(f"--device {name!r} is not one of: {', '.join(DEVICES)}, cuda:N")
    return name


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise LstmimgError(f"--{name.replace('_', '-')} {value!r} is not one of: {', '.join(map(str, allowed))}")


def _check_min(name: str, value: float, low: float, *, strict: bool = False) -> None:
    if value < low or (strict and value == low):
        bound = f"> {low}" if strict else f">= {low}"
        raise LstmimgError(f"--{name.replace('_', '-')} must be {bound}, got {value}")


class _Config:
    """Shared dict round-trip for the config dataclasses."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LstmimgError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes):
        """A copy with ``changes`` applied (validated like a new config)."""
        return dataclasses.replace(self, **changes)


@dataclass
class ModelConfig(_Config):
    """What network to build. ``in_channels``, ``img_size`` and ``num_classes`` come from the data."""

    name: str = "cnn_lstm"
    in_channels: int = 1
    img_size: tuple[int, int] = (28, 28)  # (H, W)
    fit: str = "squash"  # how an image of another aspect meets img_size: squash (stretched) or letterbox (kept, grey bars); video frames are squashed
    num_classes: int = 10
    # sequence reader
    rnn: str = "lstm"
    hidden: int = 128
    layers: int = 1
    bidirectional: bool = True
    pool: str = "mean"
    dropout: float = 0.2
    fuse_global: bool = False
    # region_lstm: how the image becomes a sequence
    scan: str = "rows"
    patch: int = 4
    embed: int = 64
    # cnn_lstm: small built-in CNN (widths per stage, each stage halves H and W) or a torchvision backbone
    cnn_channels: tuple[int, ...] = (32, 64)
    backbone: str | None = None
    backbone_weights: str | None = None  # a local state-dict file for the backbone
    pretrained: bool = False  # the backbone's torchvision weights (backbones.py), normalised as they expect
    weights: str | None = None  # which torchvision weights with pretrained (None: the backbone's DEFAULT)
    freeze_backbone: bool = False  # the CNN gets no gradients and keeps its batch-norm statistics
    # lrcn: motion beside the RGB frames (motion.py), and how it joins them
    motion: str = "auto"  # none, diff (grey frame difference), flow (OpenCV DIS optical flow); auto: DEFAULT_MOTION of the data's kind
    fusion: str = "early"  # early: extra channels of the one frame CNN; two-stream: a second small CNN for motion

    def __post_init__(self):
        self.img_size = tuple(int(s) for s in self.img_size)
        self.cnn_channels = tuple(int(c) for c in self.cnn_channels)
        self.validate()

    def validate(self) -> None:
        _check_choice("rnn", self.rnn, RNNS)
        _check_choice("pool", self.pool, POOLS)
        _check_choice("scan", self.scan, SCANS)
        _check_choice("motion", self.motion, MOTIONS)
        _check_choice("fusion", self.fusion, FUSIONS)
        _check_choice("fit", self.fit, FITS)
        for name in ("in_channels", "num_classes", "hidden", "layers", "patch", "embed"):
            _check_min(name, getattr(self, name), 1)
        _check_min("num_classes", self.num_classes, 2)
        if len(self.img_size) != 2 or min(self.img_size) < 1:
            raise LstmimgError(f"--img-size must be a positive size, got {self.img_size}")
        if not 0 <= self.dropout < 1:
            raise LstmimgError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not self.cnn_channels or min(self.cnn_channels) < 1:
            raise LstmimgError(f"cnn_channels must be positive widths, got {self.cnn_channels}")
        for flag in ("pretrained", "freeze_backbone"):
            if getattr(self, flag) and not self.backbone:
                raise LstmimgError(f"--{flag.replace('_', '-')} needs --backbone NAME (see `lstmimg backbones`)")
        if self.pretrained and self.backbone_weights:
            raise LstmimgError("--pretrained and --backbone-weights both give the backbone's weights: choose one")


@dataclass
class TrainConfig(_Config):
    """How to train. Defaults were chosen by measurement on the bundled digits (see README)."""

    epochs: int | None = None  # None: 15, more for small sets (plan.py: at least MIN_STEPS optimizer steps)
    batch_size: int | None = None  # None: fitted to the set (plan.py); with N processes, the global batch
    lr: float = 3e-3
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    warmup: float = 0.1  # fraction of all steps spent warming up the learning rate
    label_smoothing: float = 0.05
    augment: bool = True  # random affine: small rotation, shift and scale (no flips: they change digits)
    clip_grad: float = 1.0  # max gradient norm; 0 turns clipping off
    patience: int | None = None  # stop after this many epochs without a better val accuracy; 0 never stops early; None: the default rule (engine/train/stopping.py), off when --epochs is given
    min_epochs: int | None = None  # never stop before this epoch; None: a third of the planned epochs under the default rule, else 0
    cooldown: int | None = None  # after a plateau below 100%, epochs the learning rate anneals to 0 over before stopping; None: 0
    stop_annealed: float | None = None  # below 100%, a plateau stops a run only once the rate is under this fraction of its peak; None: 0.05 under the default rule (without --cooldown), else 0 (at once)
    class_weights: str | None = None  # "auto": weight classes by inverse frequency
    sampler: str | None = None  # "balanced": draw each epoch's samples with replacement, every class equally often
    val_split: float = 0.1  # used only when the data has no val/ folder
    seed: int = 0
    device: str = "auto"
    workers: int | None = None  # decoding threads, or DataLoader worker processes with --load disk; None: chosen by size and cores
    load: str = "auto"  # training set: "memory" (decoded once), "disk" (read per batch by workers), "auto" (disk above 2 GiB decoded)
    img_size: tuple[int, int] | None = None  # resize every image to (H, W); None: from the data
    # video data
    clip_len: int = 8  # frames per training clip
    clips_per_video: int | None = None  # random clips drawn per video per epoch; None: 1, more for small sets (plan.py)
    frame_stride: int | None = None  # take every n-th frame when cutting clips; 0: a clip's frames spread over the whole video (segment sampling); None: chosen by the videos' lengths (plan.py)
    val_clips: int = 3  # uniformly spaced clips per val video, their softmax averaged
    shuffle_frames: bool = False  # ablation: shuffle each clip's frames in time (a model blind to order)
    cache: str | None = None  # folder for decoded video frames and a frozen backbone's features, reused across runs
    feature_cache: bool = True  # a frozen backbone's features computed once, kept in memory (features.py)
    unfreeze_after: int | None = None  # with a frozen backbone: fine-tune the whole model after this many epochs
    backbone_lr_scale: float = 0.1  # the backbone's learning rate, as a fraction of --lr, once unfrozen
    # GPU
    amp: bool = False  # mixed precision on CUDA (bf16 where supported, else fp16 with a gradient scaler); off: measured slower on an H200 at every size tried (benchmarks/amp.py)
    compile: bool = False  # torch.compile the CNN part (Dynamo breaks the graph at recurrent layers)
    exclude: tuple[str, ...] = ()  # files left out of every split (lstmimg check's CSVs: --exclude FILE); recorded in the run's config
    time_limit: float | None = None  # seconds: no epoch starts that would end past this (the last epoch's length as the guide)
    report: bool = True  # the review page of the best checkpoint on val at the end (report/index.html, engine/review/report.py)
    tensorboard: bool = True  # TensorBoard event files in the run folder, when the tensorboard package is installed

    def __post_init__(self):
        if self.img_size is not None:
            self.img_size = tuple(int(s) for s in self.img_size)
        self.exclude = tuple(str(p) for p in self.exclude)
        self.validate()

    def validate(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        check_device(self.device)
        if self.class_weights not in (None, "auto"):
            raise LstmimgError(f"--class-weights {self.class_weights!r} is not one of: auto")
        if self.sampler not in (None, "balanced"):
            raise LstmimgError(f"--sampler {self.sampler!r} is not one of: balanced")
        for name in ("epochs", "batch_size", "clips_per_video"):
            if getattr(self, name) is not None:
                _check_min(name, getattr(self, name), 1)
        _check_min("lr", self.lr, 0, strict=True)
        _check_min("backbone_lr_scale", self.backbone_lr_scale, 0, strict=True)
        if self.unfreeze_after is not None:
            _check_min("unfreeze_after", self.unfreeze_after, 1)
        _check_min("weight_decay", self.weight_decay, 0)
        _check_min("clip_grad", self.clip_grad, 0)
        for name in ("patience", "min_epochs", "cooldown"):
            if getattr(self, name) is not None:
                _check_min(name, getattr(self, name), 0)
        if self.stop_annealed is not None and not 0 <= self.stop_annealed < 1:
            raise LstmimgError(f"stop_annealed must be in [0, 1), got {self.stop_annealed}")
        _check_choice("load", self.load, LOADS)
        if self.workers is not None:
            _check_min("workers", self.workers, 0)
        if self.time_limit is not None:
            _check_min("time_limit", self.time_limit, 0, strict=True)
        _check_min("clip_len", self.clip_len, 1)
        if self.frame_stride is not None:
            _check_min("frame_stride", self.frame_stride, 0)
        _check_min("val_clips", self.val_clips, 1)
        if not 0 <= self.warmup < 1:
            raise LstmimgError(f"--warmup must be in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise LstmimgError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < self.val_split < 1:
            raise LstmimgError(f"--val-split must be in (0, 1), got {self.val_split}")
        if self.img_size is not None and (len(self.img_size) != 2 or min(self.img_size) < 1):
            raise LstmimgError(f"--img-size must be a positive size, got {self.img_size}")


OLD_FRAME_STRIDE = 2  # what checkpoints saved before the stride was chosen by the data were trained with


def clip_settings(meta: dict) -> tuple[int, int, int]:
    """The clip length, frame stride (0: segment sampling, ``data.clips.SEGMENTS``) and clips per
    video a video model is scored with, from its checkpoint's ``meta`` (the training defaults of the
    time where an older checkpoint does not say)."""
    return meta.get("clip_len", TrainConfig.clip_len), meta.get("frame_stride", OLD_FRAME_STRIDE), meta.get("val_clips", TrainConfig.val_clips)


def trained_on_segments(meta: dict) -> bool:
    """Whether a video model's clips were spread over whole videos (stride 0): it reads a stream every
    ``window_stride``-th frame, each frame's motion from the frame just before it."""
    return meta.get("frame_stride", OLD_FRAME_STRIDE) == 0


def window_stride(meta: dict) -> int:
    """The frame stride a video model reads a stream or a long video's windows at: its clips' stride,
    or, for a model trained on segments, the typical distance between the frames it was trained on
    (``segment_gap``: the median training video's length over the clip length)."""
    if trained_on_segments(meta):
        return max(1, int(meta.get("segment_gap", 1)))
    return meta.get("frame_stride", OLD_FRAME_STRIDE)
