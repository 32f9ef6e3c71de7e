"""An exported ``.onnx`` file as a model lstmimg runs: ONNX Runtime behind the interface of the one
inference path (``Predictor``), and the graph's contract that ``export`` writes and this reads: the
format tag in its metadata, and the names of the recurrent state's inputs and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lstmimg.checkpoint import Checkpoint
from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError, article

FORMAT = "lstmimg-onnx-1"


def state_names(config) -> tuple[list[str], list[str]]:
    """Names of the state inputs and outputs of a video graph."""
    return (["h0", "c0"], ["hn", "cn"]) if config.rnn == "lstm" else (["h0"], ["hn"])


def zero_state(config, batch: int) -> list[torch.Tensor]:
    """The recurrent state at the start of a video: zeros ``(layers, B, hidden)``, one per state input."""
    return [torch.zeros(config.layers, batch, config.hidden) for _ in state_names(config)[0]]


def ort():
    try:
        import onnxruntime
    except ImportError:
        raise LstmimgError("ONNX Runtime is not installed: pip install 'lstmimg[onnx]'") from None
    return onnxruntime


class OnnxNet(nn.Module):
    """An exported model run by ONNX Runtime behind the interface lstmimg's inference uses: ``forward``
    for images or whole clips, ``forward_window`` for a window with carried state. Inputs are 0..1
    (``Predictor`` normalises with mean 0 and std 1, i.e. only scales)."""

    def __init__(self, session, config, kind: str):
        super().__init__()
        self.session, self.config, self.kind = session, config, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            return torch.from_numpy(self.session.run(["logits"], {"images": x.float().cpu().numpy()})[0])
        return self.forward_window(x)[0]

    def forward_window(self, clips: torch.Tensor, state=None):
        ins, outs = state_names(self.config)
        if state is None:
            state = zero_state(self.config, clips.shape[0])
        state = list(state) if isinstance(state, tuple | list) else [state]
        feed = {"frames": clips.float().cpu().numpy(), **{n: s.cpu().numpy() for n, s in zip(ins, state)}}
        logits, *new = (torch.from_numpy(a) for a in self.session.run(["logits", *outs], feed))
        return logits, (tuple(new) if len(new) == 2 else new[0])


def load_onnx(path: Path, kind: str | None = None):
    """An lstmimg ``.onnx`` file as a ``Checkpoint`` whose model runs on ONNX Runtime."""
    if not path.is_file():
        raise LstmimgError(f"{path}: no such file")
    runtime = ort()
    try:
        options = runtime.SessionOptions()
        options.log_severity_level = 3
        session = runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for every kind of bad file
        raise LstmimgError(f"{path}: not a readable ONNX model ({str(err).strip().splitlines()[0][:120]})") from None
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("lstmimg_format") != FORMAT:
        raise LstmimgError(f"{path}: an ONNX model, but not one lstmimg exported (no {FORMAT} metadata)")
    have = meta["kind"]
    if kind and have != kind:
        raise LstmimgError(f"{path}: {article(have)} {have} model, but this command needs {article(kind)} {kind} model")
    config = ModelConfig.from_dict(json.loads(meta["config"]))
    extra = {k: json.loads(meta[k]) for k in ("clip_len", "frame_stride", "segment_gap", "val_clips", "motion") if k in meta}
    extra.update({k: meta[k] for k in ("checkpoint_sha256", "verified_max_abs_diff") if k in meta})
    channels = config.in_channels
    return Checkpoint(path, OnnxNet(session, config, have), config, json.loads(meta["classes"]), [0.0] * channels, [1.0] * channels, have, extra)
