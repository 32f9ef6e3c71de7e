"""Measurements: pure functions that time lstmimg against plain PyTorch / OpenCV and return dataclasses.

Every figure is the median of ``repeats`` timed runs after a warm-up, with its spread (min..max);
GPU timings synchronise before reading the clock. The CLI (``lstmimg bench``) renders the report;
``report_to_dict`` gives the same as JSON.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lstmimg.bench.compute import BENCH_SHAPES, BackendBench, ModelBench, ScalingRow, bench_backends, bench_model, bench_scaling
from lstmimg.bench.features import FeatureBench, bench_features
from lstmimg.bench.formats import FormatRow, bench_formats
from lstmimg.bench.io import StartupBench, VideoBench, bench_startup, bench_video, default_clip
from lstmimg.bench.timing import FLOPS_METHOD, Timing, count_flops, measure, measure_pair
from lstmimg.models.registry import MODELS

__all__ = [
    "BENCH_SHAPES", "BackendBench", "BenchReport", "FeatureBench", "FormatRow", "bench_features", "bench_formats", "ModelBench", "ScalingRow", "StartupBench", "Timing", "VideoBench",
    "bench_backends", "bench_model", "bench_scaling", "bench_startup", "bench_video", "count_flops", "measure",
    "measure_pair", "report_to_dict", "run_bench",
]


@dataclass
class BenchReport:
    machine: dict
    flops_method: str
    models: list[ModelBench] = field(default_factory=list)
    backends: list[BackendBench] = field(default_factory=list)
    scaling: list[ScalingRow] = field(default_factory=list)
    video: VideoBench | None = None
    features: FeatureBench | None = None
    formats: list[FormatRow] = field(default_factory=list)
    startup: StartupBench | None = None
    seconds: float = 0.0


def machine_info(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def run_bench(
    device: str = "auto",
    models: list[str] | None = None,
    repeats: int = 7,
    steps: int = 10,
    batch: int = 64,
    video: str | Path | None = None,
    sections: tuple[str, ...] = ("models", "backends", "scaling", "video", "features", "formats", "startup"),
    progress: Callable[[str], None] | None = None,
    tiny: bool = False,
) -> BenchReport:
    """Run the chosen sections and return the report. ``tiny`` shrinks every size (for tests)."""
    from lstmimg.engine.loading import resolve_device
    from lstmimg.sample import sample_data_dir

    dev = resolve_device(device)
    say = progress or (lambda text: None)
    started = time.perf_counter()
    report = BenchReport(machine_info(dev), FLOPS_METHOD)
    names = models or sorted(BENCH_SHAPES)
    if tiny:
        repeats, steps, batch = 2, 2, 4
    for name in names:
        # clips cost clip_len frames each: a smaller batch keeps every model's share of the run alike
        size = max(2, batch // 4) if MODELS[name].kind == "video" else batch
        if "models" in sections:
            say(f"model {name}")
            report.models.append(bench_model(name, dev, size, steps, repeats, latency_runs=5 if tiny else 50))
        if "backends" in sections:
            say(f"backends {name}")
            report.backends += bench_backends(name, dev, size, repeats)
    if "scaling" in sections:
        say("scaling")
        report.scaling = bench_scaling(dev, 1 if tiny else 3, (7, 14) if tiny else (7, 14, 28, 56, 112), (1, 4) if tiny else (1, 16, 64, 256))
    if "video" in sections:
        say("video")
        clip = video or (sorted((sample_data_dir() / "clips" / "val" / "left").iterdir())[0] if tiny else default_clip())
        report.video = bench_video(clip, repeats)
    if "features" in sections:
        say("frozen backbone features")
        report.features = bench_features(dev, repeats, tiny)
    if "formats" in sections:
        say("export formats")
        report.formats = bench_formats(repeats, tiny=tiny)
    if "startup" in sections:
        say("startup")
        report.startup = bench_startup(1 if tiny else repeats)
    report.seconds = round(time.perf_counter() - started, 1)
    return report


def report_to_dict(report: BenchReport) -> dict:
    return dataclasses.asdict(report)
