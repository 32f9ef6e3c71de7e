"""Loading a model to use: an lstmimg checkpoint (``checkpoint``), its model rebuilt from the registry,
or an exported ``.onnx`` file run by ONNX Runtime (``engine.infer.onnx``), behind one function; which backend
runs it (``load_model``) and on which device (``resolve_device``)."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmimg.checkpoint import Checkpoint, checkpoint_path, read_payload
from lstmimg.config import ModelConfig, check_device
from lstmimg.engine.infer.onnx import load_onnx
from lstmimg.errors import LstmimgError, article
from lstmimg.models.registry import build_model, get_model_spec


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint file (or a run folder's best checkpoint) and rebuild its model in eval mode.

    ``kind`` ("image" or "video"), when given, must match the checkpoint's. A ``.onnx`` file that
    ``lstmimg export`` wrote loads as a checkpoint whose model runs on ONNX Runtime (``engine.infer.onnx``).
    """
    path = checkpoint_path(Path(path))
    if path.suffix.lower() == ".onnx":
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


BACKENDS = ("auto", "torch", "onnx")


def verified_export(checkpoint: Path) -> Checkpoint | None:
    """The ONNX export beside ``checkpoint`` (``best.pt`` -> ``best.onnx``), loaded on ONNX Runtime, if
    there is one that ``lstmimg export`` verified against PyTorch for this very checkpoint (its content
    hash), and ONNX Runtime is installed; else None."""
    from lstmimg.files import content_hash

    onnx_file = checkpoint.with_suffix(".onnx")
    if checkpoint.suffix.lower() == ".onnx" or not onnx_file.is_file():
        return None
    try:
        exported = load_onnx(onnx_file)
    except LstmimgError:  # no ONNX Runtime, or not a file lstmimg can use
        return None
    meta = exported.meta
    if "verified_max_abs_diff" not in meta or meta.get("checkpoint_sha256") != content_hash(checkpoint):
        return None
    return exported


def load_model(path: str | Path, kind: str | None = None, backend: str = "auto", device: str = "auto") -> tuple[Checkpoint, str]:
    """The model to classify with, and which backend runs it, in words. ``torch``: the checkpoint on
    PyTorch. ``onnx``: its verified ONNX export (or a ``.onnx`` file given). ``auto``: the verified export
    when there is one and the device is the CPU (where ONNX Runtime runs), else PyTorch."""
    if backend not in BACKENDS:
        raise LstmimgError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    path = checkpoint_path(Path(path))
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise LstmimgError(f"{path}: an ONNX file runs on ONNX Runtime only (--backend onnx or auto)")
        return load_onnx(path, kind), "onnx (ONNX Runtime, CPU)"
    if backend != "torch" and (backend == "onnx" or device in ("auto", "cpu")):
        exported = verified_export(path)
        if exported is not None:
            if kind and exported.kind != kind:
                raise LstmimgError(f"{path}: {article(exported.kind)} {exported.kind} model, but this command needs {article(kind)} {kind} model")
            if backend == "onnx" or resolve_device(device).type == "cpu":
                return exported, f"onnx (ONNX Runtime, CPU; verified export {exported.path.name})"
        elif backend == "onnx":
            raise LstmimgError(f"{path}: no verified ONNX export beside it ({path.with_suffix('.onnx').name}, ONNX Runtime installed): run `lstmimg export {path}`")
    return load_checkpoint(path, kind), "torch"


def resolve_device(name: str = "auto") -> torch.device:
    """A torch.device: ``auto`` picks cuda, then mps, then cpu; an explicit device must exist here
    (``cuda:N`` too), else one line says what there is."""
    check_device(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LstmimgError(f"--device {name}: no CUDA GPU is available here (try --device cpu)")
        count = torch.cuda.device_count()
        if ":" in name and int(name.split(":")[1]) >= count:
            raise LstmimgError(f"--device {name}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LstmimgError("--device mps: Apple MPS is not available here (try --device cpu)")
    return torch.device(name)


