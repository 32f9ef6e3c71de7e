"""ONNX export (`lstmimg export`) and ONNX Runtime inference of the exported files.

Exported graphs take pixels in 0..1 and normalise inside, so a caller only resizes:

- image models: ``images`` ``(B, C, H, W)`` -> ``logits`` ``(B, K)``;
- video models: one step over a window, ``frames`` ``(B, T, C, H, W)`` plus the recurrent state
  ``h0`` (and ``c0`` for an LSTM), each ``(layers, B, hidden)`` (``batch_first`` does not apply to
  the state) -> ``logits``, ``hn`` (, ``cn``). A caller runs a whole clip, or a stream window by window,
  feeding ``hn``/``cn`` back as the next ``h0``/``c0``, exactly as ``lstmimg video`` carries them.

B (and T) are dynamic axes. The file's ``metadata_props`` hold everything else inference needs
(``lstmimg_format``, kind, classes, model config, input size and channels, clip settings, motion
input), so a ``.onnx`` file is used alone. Motion input (optical flow) is computed outside the graph,
by OpenCV, as its metadata says. Image models are exported with torch.export (``dynamo=True``); video
models with the TorchScript-based exporter, which alone keeps the number of frames dynamic
(``_graph_bytes`` says why).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from lstmimg.engine.infer.onnx import FORMAT, load_onnx, ort, state_names, zero_state
from lstmimg.errors import LstmimgError
from lstmimg.files import check_output_file, content_hash

OPSET = 18  # the torch.export-based exporter writes 18; converting its graphs down to 17 fails (ReduceMean axes)
DYNAMO_MIN_OPSET = 18


class ImageGraph(nn.Module):
    """What an image export computes: 0..1 pixels, normalised, through the model."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model((images - self.mean) / self.std)


class VideoGraph(ImageGraph):
    """What a video export computes: one window read on from the given state."""

    def forward(self, frames: torch.Tensor, *state: torch.Tensor):
        x = (frames - self.mean.unsqueeze(1)) / self.std.unsqueeze(1)
        logits, new_state = self.model.forward_window(x, state if len(state) == 2 else state[0])
        return (logits, *new_state) if isinstance(new_state, tuple) else (logits, new_state)


class MatrixPool(nn.Module):
    """``AdaptiveAvgPool2d`` for one known input size, as two matrix products: the same numbers, and
    an ONNX graph that does not need the size (the exporter cannot pool adaptively over the frames of
    a clip of dynamic length, whose feature maps it sees as ``(*, F, *, *)``)."""

    def __init__(self, in_size: tuple[int, int], out_size):
        super().__init__()
        out = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
        self.register_buffer("rows", self._matrix(in_size[0], out[0]))  # (out_h, in_h)
        self.register_buffer("cols", self._matrix(in_size[1], out[1]))  # (out_w, in_w)

    @staticmethod
    def _matrix(n: int, m: int) -> torch.Tensor:
        weights = torch.zeros(m, n)
        for i in range(m):  # PyTorch's adaptive windows: [floor(i*n/m), ceil((i+1)*n/m))
            lo, hi = (i * n) // m, -((-(i + 1) * n) // m)
            weights[i, lo:hi] = 1.0 / (hi - lo)
        return weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols.T  # (N, F, in_h, in_w) -> (N, F, out_h, out_w)


def exportable(model: nn.Module, sample: tuple) -> nn.Module:
    """A copy of ``model`` with every adaptive average pooling replaced by a ``MatrixPool`` for the
    size it sees on ``sample``."""
    import copy

    model = copy.deepcopy(model).eval()
    sizes: dict[str, tuple[int, int]] = {}
    pools = {name: m for name, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}

    def seen(name: str):
        def hook(module, args, out) -> None:  # returns None: the output stays as it is
            sizes.setdefault(name, tuple(args[0].shape[-2:]))

        return hook

    hooks = [m.register_forward_hook(seen(name)) for name, m in pools.items()]
    with torch.no_grad():
        model(*sample)
    for h in hooks:
        h.remove()
    for name, pool in pools.items():
        if name in sizes:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, MatrixPool(sizes[name], pool.output_size))
    return model


def metadata(ckpt) -> dict[str, str]:
    from lstmimg import __version__

    c = ckpt.config
    meta = {
        "lstmimg_format": FORMAT, "lstmimg_version": __version__, "kind": ckpt.kind, "classes": json.dumps(ckpt.classes, ensure_ascii=False),
        "config": json.dumps(c.to_dict(), ensure_ascii=False), "input_size": json.dumps(list(c.img_size)), "channels": str(c.in_channels),
        "input_range": "0..1 (normalised inside the graph)", "mean": json.dumps(ckpt.mean), "std": json.dumps(ckpt.std),
    }
    if Path(ckpt.path).is_file():  # which checkpoint this graph is, so a stale export beside a newer best.pt is not used for it
        meta["checkpoint_sha256"] = content_hash(ckpt.path)
    if ckpt.kind == "image":
        meta["scan"] = c.scan
    else:
        meta.update({k: json.dumps(ckpt.meta[k]) for k in ("clip_len", "frame_stride", "segment_gap", "val_clips", "motion") if k in ckpt.meta})
        meta["state"] = json.dumps({"inputs": state_names(c)[0], "outputs": state_names(c)[1], "shape": ["layers", "batch", "hidden"], "layers": c.layers, "hidden": c.hidden})
    return meta


def export_onnx(ckpt, out: str | Path, opset: int = OPSET) -> Path:
    """Write ``ckpt``'s model as ONNX to ``out`` (atomically), with its metadata. Image models go through
    the torch.export-based exporter; video models through the TorchScript-based one (``_graph_bytes``)."""
    import onnx

    return write_with_metadata(onnx.load_from_string(_graph_bytes(ckpt, opset)), metadata(ckpt), Path(out))


def write_with_metadata(proto, meta: dict[str, str], out: Path) -> Path:
    """The ONNX ``proto`` with ``meta`` added to its ``metadata_props``, written to ``out`` atomically."""
    from lstmimg.files import atomic_write_bytes

    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write_bytes(out, proto.SerializeToString())
    return out


def mark_verified(path: Path, max_abs_diff: float) -> None:
    """Record in the file's metadata that ONNX Runtime matched PyTorch on real samples (``predict`` and
    ``video`` use only a verified export of the very checkpoint they were given)."""
    import onnx

    write_with_metadata(onnx.load(str(path)), {"verified_max_abs_diff": repr(max_abs_diff)}, path)


def _graph_bytes(ckpt, opset: int) -> bytes:
    """The model's ONNX graph, batch (and for videos time) dynamic.

    Image models: torch.export (``dynamo=True``), the supported exporter, at opset 18 or later (below
    18 its graphs do not convert). Video models, and image models at an opset below 18, keep the
    TorchScript-based exporter (``dynamo=False``, deprecated): torch.export decomposes ``nn.LSTM`` into
    one step per frame, so the number of frames becomes a constant of the graph, while a video graph must
    take windows of any length. The TorchScript exporter writes ONNX's own LSTM op, which loops over any T.
    """
    import io
    import warnings

    model, c = ckpt.model.eval(), ckpt.config
    h, w = c.img_size
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporters' notes on batch_first LSTMs and on the legacy exporter's deprecation
        if ckpt.kind == "image":
            args = (torch.rand(2, c.in_channels, h, w),)
            graph = ImageGraph(exportable(model, args), ckpt.mean, ckpt.std).eval()
            if opset >= DYNAMO_MIN_OPSET:
                program = torch.onnx.export(graph, args, input_names=["images"], output_names=["logits"], dynamic_shapes={"images": {0: torch.export.Dim("batch")}},
                                            opset_version=opset, dynamo=True, verbose=False)
                return program.model_proto.SerializeToString()
            names, outputs, axes = ["images"], ["logits"], {"images": {0: "batch"}, "logits": {0: "batch"}}
        else:
            ins, outs = state_names(c)
            args = (torch.rand(2, 3, c.in_channels, h, w), *zero_state(c, 2))
            graph = VideoGraph(exportable(model, args[:1]), ckpt.mean, ckpt.std).eval()
            names, outputs = ["frames", *ins], ["logits", *outs]
            axes = {"frames": {0: "batch", 1: "time"}, "logits": {0: "batch"}, **{n: {1: "batch"} for n in ins + outs}}
        buffer = io.BytesIO()
        torch.onnx.export(graph, args, buffer, input_names=names, output_names=outputs, dynamic_axes=axes, opset_version=opset, dynamo=False)
        return buffer.getvalue()


TOLERANCE = 1e-4  # largest absolute difference of probabilities an export may show


def sample_source(ckpt) -> Path:
    """Where verification takes its samples: the run's data when it is still there, else the bundled
    sample data of the model's kind."""
    from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, files_under
    from lstmimg.sample import sample_data_dir

    exts = IMAGE_EXTENSIONS if ckpt.kind == "image" else VIDEO_EXTENSIONS
    source = Path(ckpt.meta.get("data", ""))
    if not ckpt.meta.get("data") or not source.is_dir() or not files_under(source, exts):
        source = sample_data_dir() / ("digits" if ckpt.kind == "image" else "clips")
    return source


def verification_samples(ckpt, count: int = 32, videos: int = 6) -> tuple[torch.Tensor | list[torch.Tensor], str]:
    """Real inputs to compare on (from ``sample_source``): up to ``count`` images (uint8 ``(N, C, H,
    W)``) or up to ``videos`` videos, each its first ``2 * clip_len + 1`` sampled frames (uint8 ``(T, C, H,
    W)``, with the model's motion input: all that ``largest_difference`` reads, so memory does not grow
    with a video's length); and where they came from. Files that cannot be read are passed over, as
    training passed over them."""
    import numpy as np

    from lstmimg.config import trained_on_segments, window_stride
    from lstmimg.data.clips import first_frames
    from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, files_under
    from lstmimg.data.images import load_image

    c = ckpt.config
    source = sample_source(ckpt)
    files = files_under(source, IMAGE_EXTENSIONS if ckpt.kind == "image" else VIDEO_EXTENSIONS)
    want = count if ckpt.kind == "image" else videos
    spread = files[:: max(1, len(files) // want)]
    chosen = set(spread)
    candidates = spread + [f for f in files if f not in chosen]  # evenly spread first; the rest stand in for unreadable ones
    motion = (ckpt.meta.get("motion") or {}).get("method", c.motion)
    stride, frames = window_stride(ckpt.meta), 2 * ckpt.meta.get("clip_len", 8) + 1
    samples, errors = [], []
    for f in candidates:
        if len(samples) == want:
            break
        try:
            if ckpt.kind == "image":
                samples.append(load_image(f, c.in_channels, c.img_size, c.fit))
            else:
                samples.append(torch.from_numpy(first_frames(f, c.img_size, frames, motion, stride, trained_on_segments(ckpt.meta))).permute(0, 3, 1, 2))
        except LstmimgError as err:
            errors.append(str(err))
    if not samples:
        raise LstmimgError(f"{source}: no readable {ckpt.kind} to verify the export on ({errors[0] if errors else 'no files'})")
    return (torch.from_numpy(np.stack(samples)) if ckpt.kind == "image" else samples), str(source)


def largest_difference(ckpt, exported) -> float:
    """The largest absolute difference of class probabilities between ``ckpt`` (PyTorch) and
    ``exported`` (ONNX Runtime) on real samples: images at batch 1 and a full batch; videos as clips
    of two lengths at two batch sizes, and a long sequence read window by window with the state carried,
    against ONNX Runtime's own single pass over it."""
    from lstmimg.engine.infer.inference import Predictor

    torch_side, onnx_side = Predictor.from_checkpoint(ckpt), Predictor.from_checkpoint(exported)
    samples, _ = verification_samples(ckpt)
    worst = 0.0

    def compare(a: torch.Tensor, b: torch.Tensor) -> None:
        nonlocal worst
        worst = max(worst, float((a - b).abs().max()))

    if ckpt.kind == "image":
        for batch in (samples[:1], samples):
            compare(torch_side.probs(batch), onnx_side.probs(batch))
        return worst
    clip_len = ckpt.meta.get("clip_len", 8)  # the samples hold up to 2 * clip_len + 1 frames each
    for length in (clip_len, 2 * clip_len + 1):
        clips = torch.stack([v[torch.arange(length).clamp(max=len(v) - 1)] for v in samples])  # (N, T, C, H, W)
        for batch in (clips[:1], clips):
            compare(torch_side.probs(batch), onnx_side.probs(batch))
    stream = torch.cat(samples)[None]  # (1, T_total, C, H, W): several videos back to back
    state_t = state_o = None
    for start in range(0, stream.shape[1], clip_len):
        window = stream[:, start : start + clip_len]
        p_t, state_t = torch_side.probs_carried(window, state_t)
        p_o, state_o = onnx_side.probs_carried(window, state_o)
        compare(p_t, p_o)
    whole, state_whole = onnx_side.probs_carried(stream)
    as_list = lambda state: list(state) if isinstance(state, tuple) else [state]  # noqa: E731
    for a, b in zip(as_list(state_whole), as_list(state_o)):
        compare(a, b)  # window by window, carried, ends in the state of one pass over the whole stream
    if ckpt.config.pool == "last":
        compare(whole, p_o)  # and so in the same output, when the output is the last step's
    return worst


def opset_range() -> tuple[int, int]:
    """The ONNX opsets the installed exporter writes (and ONNX Runtime loads): 7 to 23 with torch 2.14."""
    try:
        from torch.onnx import _constants

        return max(7, _constants.ONNX_MIN_OPSET), _constants.ONNX_MAX_OPSET
    except (ImportError, AttributeError):
        return 7, OPSET


def written_opset(path: Path) -> int:
    """The ONNX opset of the default domain a file declares."""
    import onnx

    return next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain in ("", "ai.onnx")), 0)


def export_model(model: str | Path, out: str | Path | None = None, opset: int = OPSET, verify: bool = True, overwrite: bool = False) -> dict:
    """Export a run folder or checkpoint to ONNX; returns what was done: ``{"path", "bytes", "seconds",
    "opset", "kind", "verified", "max_abs_diff", "samples_from"}``. With ``verify``, ONNX Runtime is
    run against PyTorch on real samples (``largest_difference``); above ``TOLERANCE`` the export fails
    and no file is left behind. The file is written beside the checkpoint by default (``best.onnx``),
    and an existing file is replaced only with ``overwrite``."""
    import os
    import time

    from lstmimg.checkpoint import checkpoint_path
    from lstmimg.engine.infer.loading import load_checkpoint

    low, high = opset_range()
    if not low <= opset <= high:
        raise LstmimgError(f"--opset {opset}: the installed exporter writes opsets {low} to {high}")
    source = checkpoint_path(Path(model))
    if source.suffix.lower() == ".onnx":
        raise LstmimgError(f"{source}: is already an ONNX file; export a run folder or .pt checkpoint")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch.export-based export)
    except ImportError as missing:
        raise LstmimgError(f"exporting to ONNX needs the {missing.name} package: pip install 'lstmimg[onnx]'") from None
    if verify:
        ort()
    ckpt = load_checkpoint(source)
    out = check_output_file(out if out is not None else source.with_suffix(".onnx"), "--out")
    if out.exists() and not overwrite:
        raise LstmimgError(f"{out}: already exists (give another --out, or --overwrite)")
    started = time.perf_counter()
    pending = out.with_name(f".{out.name}.unverified")
    try:
        try:
            export_onnx(ckpt, pending, opset)
        except (RuntimeError, ValueError, TypeError) as err:  # an exporter that cannot write this model at this opset
            raise LstmimgError(f"{out}: cannot export at opset {opset} ({str(err).strip().splitlines()[0][:200]})") from None
        written = written_opset(pending)
        if written != opset:
            raise LstmimgError(f"{out}: the exporter wrote opset {written}, not the {opset} asked for: nothing written")
        result = {"path": str(out), "bytes": pending.stat().st_size, "opset": written, "kind": ckpt.kind, "verified": False, "max_abs_diff": None, "samples_from": None}
        if not verify:
            try:
                ort()
            except LstmimgError:
                pass  # no ONNX Runtime here: the file is written as exported, unchecked
            else:  # the file must at least load: a graph ONNX Runtime cannot read is no export
                try:
                    load_onnx(pending)
                except LstmimgError as err:
                    raise LstmimgError(f"{str(err).replace(str(pending), str(out))}: nothing written") from None
        if verify:
            result["max_abs_diff"] = largest_difference(ckpt, load_onnx(pending))
            result["samples_from"] = str(sample_source(ckpt))
            if not result["max_abs_diff"] <= TOLERANCE:
                raise LstmimgError(f"{out}: ONNX Runtime's probabilities differ from PyTorch's by up to {result['max_abs_diff']:.2e} (more than {TOLERANCE:g}): nothing written")
            result["verified"] = True
            mark_verified(pending, result["max_abs_diff"])
        os.replace(pending, out)
    finally:
        pending.unlink(missing_ok=True)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result
