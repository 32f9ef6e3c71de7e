"""The checkpoint format.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (``files.load_tensors``), so opening one never runs code::

    {"format": "lstmimg", "version": 1, "kind": "image",
     "model": ModelConfig.to_dict(), "classes": [...], "normalize": {"mean": [...], "std": [...]},
     "state_dict": {...tensors...}, "meta": {...plain numbers and strings...}}

``last.pt`` also holds ``train_state`` (``engine.train.trainstate.TrainState.state_dict``), what ``--resume``
needs. Files are written atomically (``files.atomic_write``). This module knows the format only: a model
is rebuilt from a checkpoint (or an exported ``.onnx`` file) by ``engine.infer.loading.load_checkpoint``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError
from lstmimg.files import atomic_write_bytes, load_tensors

FORMAT = "lstmimg"
VERSION = 1


@dataclass
class Checkpoint:
    """What a checkpoint holds, with the model rebuilt from it."""

    path: Path
    model: nn.Module
    config: ModelConfig
    classes: list[str]
    mean: list[float]
    std: list[float]
    kind: str
    meta: dict


def save_checkpoint(path, model: nn.Module, config: ModelConfig, classes, mean, std, kind: str = "image", meta=None, train_state=None) -> None:
    """Save weights plus everything needed to rebuild and use the model (as plain data); ``train_state``
    (``last.pt`` only) is what ``--resume`` needs."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "model": config.to_dict(),
        "classes": list(classes),
        "normalize": {"mean": list(mean), "std": list(std)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }
    if train_state is not None:
        payload["train_state"] = train_state
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_payload(path: Path) -> dict:
    """The checkpoint dict, loaded without running code, checked to be ours and of this version."""
    if not path.exists():
        raise LstmimgError(f"{path}: no such checkpoint")
    if path.is_dir():
        raise LstmimgError(f"{path}: is a folder, not a checkpoint")
    payload = load_tensors(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LstmimgError(f"{path}: not an lstmimg checkpoint")
    if payload.get("version") != VERSION:
        raise LstmimgError(f"{path}: lstmimg checkpoint format version {payload.get('version')!r}; this lstmimg reads version {VERSION}")
    return payload


def checkpoint_path(path: Path) -> Path:
    """A checkpoint file as given, or ``best.pt`` (else ``last.pt``) of a run folder."""
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise LstmimgError(f"{path}: run folder has no best.pt or last.pt")
    return path
