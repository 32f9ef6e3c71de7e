"""Checkpoints and run folders.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``, so opening one never runs code::

    {"format": "lstmimg", "version": 1, "kind": "image",
     "model": ModelConfig.to_dict(), "classes": [...], "normalize": {"mean": [...], "std": [...]},
     "state_dict": {...tensors...}, "meta": {...plain numbers and strings...}}

Every file is written to a temporary name in the same folder and renamed into place, so an
interrupted write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError, article

FORMAT = "lstmimg"
VERSION = 1
RUNS_DIR = Path("runs") / "train"
ASSETS = Path(__file__).parent / "assets"
BUNDLED_MODELS = {"image": ASSETS / "digits.pt", "video": ASSETS / "clips.pt"}  # made by scripts/train_bundled_model.py
BUNDLED_MODEL = BUNDLED_MODELS["image"]


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, flushed and renamed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


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
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if unsafe:  # the file asks to import something: the way a pickle runs code
            raise LstmimgError(f"{path}: refused to load: it would run code ({unsafe[0][:160]})") from None
        raise LstmimgError(f"{path}: not a readable checkpoint (corrupt, truncated or another format)") from None
    except Exception:
        raise LstmimgError(f"{path}: not a readable checkpoint (corrupt, truncated or another format)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise LstmimgError(f"{path}: not an lstmimg checkpoint")
    if payload.get("version") != VERSION:
        raise LstmimgError(f"{path}: lstmimg checkpoint format version {payload.get('version')!r}; this lstmimg reads version {VERSION}")
    return payload


def load_state_dict_file(path: str | Path) -> dict:
    """A plain state dict (e.g. torchvision backbone weights) from a local file, loaded safely."""
    path = Path(path)
    if not path.is_file():
        raise LstmimgError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise LstmimgError(f"{path}: not a readable state dict file") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LstmimgError(f"{path}: not a state dict")
    return state


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint file (or a run folder's best checkpoint) and rebuild its model in eval mode.

    ``kind`` ("image" or "video"), when given, must match the checkpoint's.
    """
    from lstmimg.models import build_model

    path = checkpoint_path(Path(path))
    payload = read_payload(path)
    if kind and payload.get("kind") != kind:
        have = payload.get("kind")
        raise LstmimgError(f"{path}: {article(have)} {have} model, but this command needs {article(kind)} {kind} model")
    try:
        config = ModelConfig.from_dict({**payload["model"], "backbone_weights": None})
        model = build_model(config)
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


def new_run_dir(out: str | Path | None = None, base: Path = RUNS_DIR, name: str = "exp", exist_ok: bool = False) -> Path:
    """``out`` exactly when given (it must not hold a run already, unless ``exist_ok``), else the next
    free ``base/exp``, ``exp2``, ``exp3``, ... Never reuses a folder that holds a run unless asked."""
    if out is not None:
        run = Path(out)
        if run.exists() and not run.is_dir():
            raise LstmimgError(f"{run}: exists and is not a folder; choose another --out")
        if run.exists() and any(run.iterdir()) and not exist_ok:
            raise LstmimgError(f"{run}: folder exists and is not empty; choose another --out, or --exist-ok to write into it")
        run.mkdir(parents=True, exist_ok=True)
        return run
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        run = base / (name if n == 1 else f"{name}{n}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            n += 1


def latest_run(kind: str, base: Path = RUNS_DIR) -> Path | None:
    """The newest run folder under ``base`` holding a ``best.pt`` of this kind, by modification time."""
    if not base.is_dir():
        return None
    runs = sorted((p for p in base.iterdir() if (p / "best.pt").is_file()), key=lambda p: (p / "best.pt").stat().st_mtime, reverse=True)
    for run in runs:
        summary = run / "summary.json"
        try:
            if json.loads(summary.read_text()).get("kind", "image") == kind:
                return run
        except (OSError, ValueError):
            continue
    return None


def resolve_model(source: str | Path | None, kind: str = "image") -> tuple[Path, str]:
    """Which checkpoint to use, and why: ``source`` when given, else the newest run of this kind under
    ./runs/train, else the model that ships with the package."""
    if source is not None:
        return checkpoint_path(Path(source)), "given"
    run = latest_run(kind)
    if run is not None:
        return checkpoint_path(run), "newest run"
    if BUNDLED_MODELS[kind].is_file():
        return BUNDLED_MODELS[kind], f"bundled {BUNDLED_MODELS[kind].stem} model"
    raise LstmimgError(f"no {kind} model: train one with `lstmimg train` or pass --model")
