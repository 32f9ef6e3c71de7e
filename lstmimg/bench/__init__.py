"""Measurements: pure functions that time lstmimg against plain PyTorch / OpenCV and return dataclasses.

Every figure is the median of ``repeats`` timed runs after a warm-up, with its spread (min..max);
GPU timings synchronise before reading the clock. The CLI (``lstmimg bench``) renders the report;
``report_to_dict`` gives the same as JSON.
"""

from __future__ import annotations

import dataclasses
import os
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
    "measure_pair", "noisy_figures", "report_to_dict", "run_bench", "spreads",
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
    noisy: list[str] = field(default_factory=list)  # figures whose runs varied by more than NOISY


NOISY = 0.25  # a figure whose timed runs spread more than ±25% around the median is not to be trusted


def spreads(report: BenchReport) -> dict[str, float]:
    """Every figure's spread (``Timing.spread``) by the name the tables give it."""
    out = {}
    for b in report.models:
        out[f"{b.model} training"] = b.train_spread
        out[f"{b.model} inference"] = b.infer_spread
        out[f"{b.model} latency"] = b.latency_spread
    if report.video:
        out["video"] = max(report.video.decode.spread, report.video.end_to_end.spread)
    if report.features:
        f = report.features
        out["frozen backbone features"] = max(f.extract.spread, f.cached.spread, f.uncached.spread)
    for r in report.formats:
        if r.spread is not None:
            out[f"format {r.format}"] = r.spread
    return out


def noisy_figures(report: BenchReport) -> list[str]:
    """The figures whose runs varied by more than ``NOISY``: "region_lstm inference ±180%"."""
    return [f"{name} ±{spread:.0%}" for name, spread in spreads(report).items() if spread > NOISY]


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), None where the OS has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def machine_info(device: torch.device) -> dict:
    """What the figures depend on, and ``load_before``: the machine's load when the bench began (other
    jobs running make every figure slow and noisy)."""
    info = {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "device": str(device),
        "cpus": os.cpu_count(), "load_before": load_average(),
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
    from lstmimg.engine.infer.loading import resolve_device
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
        report.startup = bench_startup(1 if tiny else repeats, warm=not tiny)
    report.seconds = round(time.perf_counter() - started, 1)
    report.noisy = noisy_figures(report)
    return report


def report_to_dict(report: BenchReport) -> dict:
    return dataclasses.asdict(report)
