"""The checkpoint format.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)`` (``files.load_tensors``), so opening one never runs code::

    {"format": "lstmimg", "version": 1, "kind": "image",
     "model": ModelConfig.to_dict(), "classes": [...], "normalize": {"mean": [...], "std": [...]},
     "state_dict": {...tensors...}, "meta": {...plain numbers and strings...}}

``last.pt`` also holds ``train_state`` (``training.TrainState.state_dict``), what ``--resume`` needs.
Files are written atomically (``files.atomic_write``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError, article
from lstmimg.files import atomic_write_bytes, load_tensors
from lstmimg.models import build_model, get_model_spec

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


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint file (or a run folder's best checkpoint) and rebuild its model in eval mode.

    ``kind`` ("image" or "video"), when given, must match the checkpoint's. A ``.onnx`` file that
    ``lstmimg export`` wrote loads as a checkpoint whose model runs on ONNX Runtime (export.py).
    """
    path = checkpoint_path(Path(path))
    if path.suffix.lower() == ".onnx":
        from lstmimg.export import load_onnx

        return load_onnx(path, kind)
    payload = read_payload(path)
    if kind and payload.get("kind") != kind:
        have = payload.get("kind")
        raise LstmimgError(f"{path}: {article(have)} {have} model, but this command needs {article(kind)} {kind} model")
    try:
        config = get_model_spec(payload["model"]["name"]).complete(ModelConfig.from_dict({"motion": "none", **payload["model"]}))  # older files: no motion
        model = build_model(config.replace(backbone_weights=None, pretrained=False))  # the weights are in the checkpoint
        model.load_state_dict(payload["state_dict"])
        norm = payload["normalize"]
        return Checkpoint(path, model.eval(), config, list(payload["classes"]), list(norm["mean"]), list(norm["std"]), payload["kind"], payload.get("meta", {}))
    except LstmimgError as err:
        raise LstmimgError(f"{path}: {err}") from None
    except (KeyError, TypeError, RuntimeError) as err:
        raise LstmimgError(f"{path}: damaged lstmimg checkpoint ({type(err).__name__})") from None


def checkpoint_path(path: Path) -> Path:
    """A checkpoint file as given, or ``best.pt`` (else ``last.pt``) of a run folder."""
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise LstmimgError(f"{path}: run folder has no best.pt or last.pt")
    return path
