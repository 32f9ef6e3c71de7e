"""Loading a model to use: an lstmimg checkpoint (``checkpoint``), its model rebuilt from the registry,
or an exported ``.onnx`` file run by ONNX Runtime (``engine.onnx``), behind one function."""

from __future__ import annotations

from pathlib import Path

from lstmimg.checkpoint import Checkpoint, checkpoint_path, read_payload
from lstmimg.config import ModelConfig
from lstmimg.engine.onnx import load_onnx
from lstmimg.errors import LstmimgError, article
from lstmimg.models.registry import build_model, get_model_spec


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint file (or a run folder's best checkpoint) and rebuild its model in eval mode.

    ``kind`` ("image" or "video"), when given, must match the checkpoint's. A ``.onnx`` file that
    ``lstmimg export`` wrote loads as a checkpoint whose model runs on ONNX Runtime (``engine.onnx``).
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
