"""Bench section in the style of Ultralytics' export benchmark: the bundled image model as a PyTorch
checkpoint and as each export, side by side: file size, val accuracy, latency at batch 1 and
throughput at a large batch."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmimg.bench.timing import measure_pair


@dataclass
class FormatRow:
    format: str
    status: str  # "ok", or why the format could not be measured
    file_mb: float | None = None
    val_accuracy: float | None = None
    ms_batch1: float | None = None
    images_per_s: float | None = None
    latency_ratio: float | None = None  # this format's batch-1 time / PyTorch's
    throughput_ratio: float | None = None  # this format's images/s / PyTorch's
    spread: float | None = None  # the larger ``Timing.spread`` of its two timings


def bench_formats(repeats: int = 7, batch: int = 256, tiny: bool = False) -> list[FormatRow]:
    """The bundled digits model as ``.pt`` (eager PyTorch) and ``.onnx`` (ONNX Runtime): val accuracy
    on the bundled digits' val split, and timings of the same uint8 inputs through ``Predictor``."""
    from lstmimg.engine.infer.inference import Predictor
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    source = BUNDLED_MODELS["image"]
    digits = sample_data_dir() / "digits"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            from lstmimg.engine.infer.export import export_model

            onnx_file: Path | str = Path(export_model(source, Path(tmp) / "model.onnx", verify=False)["path"])
        except Exception as err:
            onnx_file = f"unavailable: {err}"
        pt = load_checkpoint(source, kind="image")
        c = pt.config
        images = torch.randint(0, 256, (8 if tiny else batch, c.in_channels, *c.img_size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        base = _row("PyTorch (.pt)", source, None if tiny else digits)
        if isinstance(onnx_file, str):
            return [base, FormatRow("ONNX Runtime (.onnx)", onnx_file)]
        other = _row("ONNX Runtime (.onnx)", onnx_file, None if tiny else digits)
        a, b = Predictor.from_checkpoint(pt, "cpu"), Predictor.from_checkpoint(load_checkpoint(onnx_file, kind="image"), "cpu")
        # timed side by side, alternating, so the machine's noise hits both alike
        one_pt, one_onnx = measure_pair(lambda: a.probs(images[:1]), lambda: b.probs(images[:1]), repeats * (1 if tiny else 10))
        many_pt, many_onnx = measure_pair(lambda: a.probs(images), lambda: b.probs(images), repeats)
    rows = []
    for row, one, many in ((base, one_pt, many_pt), (other, one_onnx, many_onnx)):
        row.ms_batch1, row.images_per_s = round(one.median * 1000, 3), round(len(images) / many.median, 1)
        row.spread = round(max(one.spread, many.spread), 4)
        rows.append(row)
    for row in rows:
        row.latency_ratio, row.throughput_ratio = round(row.ms_batch1 / rows[0].ms_batch1, 3), round(row.images_per_s / rows[0].images_per_s, 3)
    return rows


def _row(name: str, path: Path, digits: Path | None) -> FormatRow:
    """The row of the file at ``path``: its size, and its accuracy on the digits' val split (``digits``: None skips it)."""
    from lstmimg.engine.review.evaluation import evaluate

    return FormatRow(name, "ok", round(Path(path).stat().st_size / 1e6, 2), evaluate(digits, path, "val", "cpu")["accuracy"] if digits else None)
