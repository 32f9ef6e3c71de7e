import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from lstmimg import bench as B
from lstmimg.cli import app


def test_count_flops_from_layer_shapes():
    linear = nn.Sequential(nn.Linear(10, 5))
    assert B.count_flops(linear, torch.randn(1, 10)) == 2 * 10 * 5
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1))
    assert B.count_flops(conv, torch.randn(1, 2, 4, 4)) == 2 * (3 * 4 * 4) * (2 * 3 * 3)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 3, batch_first=True, bidirectional=True)

        def forward(self, x):
            return self.rnn(x)[0]

    # per step and direction: 4 gates x hidden 3 x (input 4 + hidden 3), 5 steps, 2 directions
    assert B.count_flops(Seq(), torch.randn(1, 5, 4)) == 2 * 4 * 3 * (4 + 3) * 5 * 2


def test_timing_median_and_spread():
    t = B.Timing.of([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (t.median, t.low, t.high, t.n) == (3.0, 1.0, 10.0, 5)
    assert t.spread == 1.5  # half the range, 4.5 s, over the median, 3 s


def test_tiny_bench_report_has_the_documented_fields():
    report = B.run_bench("cpu", ["region_lstm", "lrcn"], sections=("models", "backends", "scaling"), tiny=True)
    data = B.report_to_dict(report)
    json.dumps(data)  # plain data all the way down
    assert {"machine", "flops_method", "models", "backends", "scaling", "video", "startup", "seconds"} <= set(data)
    assert data["machine"]["device"] == "cpu" and data["machine"]["threads"] >= 1
    fields = {"model", "params", "flops_per_sample", "train_samples_per_s", "plain_train_samples_per_s", "train_ratio",
              "infer_batch1_samples_per_s", "infer_batch_samples_per_s", "plain_infer_batch_samples_per_s", "infer_ratio",
              "latency_p50_ms", "latency_p95_ms", "achieved_gflops", "train", "plain_train"}
    assert [m["model"] for m in data["models"]] == ["region_lstm", "lrcn"]
    for m in data["models"]:
        assert fields <= set(m)
        assert m["params"] > 0 and m["flops_per_sample"] > 0 and m["train_samples_per_s"] > 0 and m["latency_p95_ms"] >= m["latency_p50_ms"] > 0
    eager = [b for b in data["backends"] if b["backend"] == "eager"]
    assert len(eager) == 2 and all(b["status"] == "ok" and b["speedup"] == 1.0 and b["max_abs_diff"] == 0 for b in eager)
    assert {r["axis"] for r in data["scaling"]} == {"steps", "batch"}


def test_a_failing_backend_is_reported_not_raised(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tracing exploded")

    monkeypatch.setattr(torch.jit, "trace", broken)
    results = B.bench_backends("region_lstm", torch.device("cpu"), batch=2, repeats=1, only=["eager", "torchscript", "onnxruntime"])
    by_name = {r.backend: r for r in results}
    assert by_name["eager"].status == "ok"
    assert by_name["torchscript"].status == "unavailable: RuntimeError: tracing exploded"
    assert by_name["torchscript"].samples_per_s is None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        assert by_name["onnxruntime"].status.startswith("unavailable: ModuleNotFoundError")


@pytest.mark.long  # beyond CI's budget: python -m pytest -m long
def test_video_and_startup_sections(tmp_path):
    from lstmimg.sample import sample_data_dir

    clip = sorted((sample_data_dir() / "clips" / "val" / "up").iterdir())[0]
    v = B.bench_video(clip, repeats=1)
    assert v.frames > 5 and v.decode_fps > 0 and v.end_to_end_fps > 0 and v.ratio > 0
    assert v.flow_ms_per_frame > 0 and v.flow_end_to_end_fps > 0 and v.flow_ratio > 0
    assert v.onnx_end_to_end_fps > 0 and v.onnx_ratio > 0
    s = B.bench_startup(repeats=1)
    assert 0 < s.help_s and s.import_torch_s > 0 and s.predict_ratio > 0


def test_features_section_times_a_cached_step_against_one_that_runs_the_backbone():
    f = B.bench_features(torch.device("cpu"), repeats=2, tiny=True)
    assert f.backbone == "mobilenet_v3_small" and f.frames_per_step == 8 and f.extract_frames_per_s > 0
    assert 0 < f.step_cached_ms and f.ratio == pytest.approx(f.step_cached_ms / f.step_uncached_ms, rel=1e-2)


def test_formats_section_measures_pytorch_and_onnx_side_by_side():
    rows = B.bench_formats(repeats=1, tiny=True)
    assert [r.format for r in rows] == ["PyTorch (.pt)", "ONNX Runtime (.onnx)"] and all(r.status == "ok" for r in rows)
    assert rows[0].latency_ratio == 1.0 and rows[1].file_mb > 0 and rows[1].images_per_s > 0


def _report(load: float, spread: float) -> B.BenchReport:
    """A report with every section, long names and large figures, and timings that varied by +-``spread``."""
    from lstmimg.bench.compute import BackendBench, ModelBench, ScalingRow
    from lstmimg.bench.features import FeatureBench
    from lstmimg.bench.formats import FormatRow
    from lstmimg.bench.io import StartupBench, VideoBench

    t = B.Timing.of([1.0 - spread, 1.0, 1.0 + spread])
    steady = B.Timing.of([1.0, 1.0, 1.0])
    models = [ModelBench(name, 12_345_678, 123_456_789, 12345.0, 23456.0, 0.93, 7654.0, 98765.0, 87654.0, 1.07, 285.12, 1234.56, 1234.5, 64, t, steady, steady, steady, steady)
              for name in ("region_lstm", "cnn_lstm", "convlstm", "lrcn")]
    report = B.BenchReport({"device": "cpu", "processor": "x86_64", "threads": 2, "torch": "2.14.1", "python": "3.11.7", "cpus": 2, "load_before": load}, B.FLOPS_METHOD, models)
    report.backends = [BackendBench("region_lstm", "torch.compile", "ok", 12345.0, 1.02, 4.5e-08, "2 graph breaks; first call (compiling) 4.4 s"),
                       BackendBench("cnn_lstm", "onnxruntime", "unavailable: onnxruntime is not installed (pip install 'lstmimg[onnx]')")]
    report.scaling = [ScalingRow("region_lstm", "steps", 112, 1234.56, 123.45)]
    report.video = VideoBench("/a/long/folder/name/bench-1280x720-300.mp4", 300, 6141.0, 5026.0, 399.0, 15.38, steady, steady, 0.176, 0.163, 389.0, 15.77)
    report.features = FeatureBench("mobilenet_v3_small", 112, 32, 547.0, 8.68, 25.71, 0.338, steady, steady, steady)
    report.formats = [FormatRow("PyTorch (.pt)", "ok", 2.46, 0.9871, 6.244, 708.0, 1.0, 1.0, 0.01), FormatRow("ONNX Runtime (.onnx)", "ok", 2.54, 0.9871, 1.056, 1693.0, 0.17, 2.39, 0.03)]
    report.startup = StartupBench(1.234, 1.456, 2.345, 1.18, 1.9)
    report.noisy = B.noisy_figures(report)
    return report


def _render(report) -> str:
    import io

    from rich.console import Console

    from lstmimg.cli.bench_tables import render_bench

    buffer = io.StringIO()
    render_bench(Console(file=buffer, width=80, color_system=None), report)
    return buffer.getvalue()


def test_bench_tables_fit_80_columns_cut_nothing_and_say_which_way_is_better():
    text = _render(_report(load=0.1, spread=0.05))
    tables = [line for line in text.splitlines() if not line.startswith(("lstmimg bench", "FLOPs:", "motion flow:", "lstmimg video with", "↑ higher", "plain:"))]
    assert max(len(line) for line in tables) <= 80 and "…" not in text
    for header in ("lstmimg", "plain", "GFLOP/s", "batch-1", "accuracy", "ms vs", "/s vs", "decode + resize", "lstmimg video", "x decode", "x import", "spread"):
        assert header in text, header
    assert "12345" in text and "285.12" in text and "1234.56" in text and "0.9871" in text  # every figure whole
    assert "±5%" in text and "↑ higher is better, ↓ lower is better" in text and "p50" in text and "ms ↓" in text
    assert "noisy" not in text and "busy" not in text
    assert text.count("region_lstm ") == 5 and text.count("cnn_lstm ") == 4  # names whole: training, inference, latency, backends (+ scaling)
    assert "mobilenet_v3_small 112px" in text and "lstmimg[onnx]" in text  # a note is text, not rich markup


def test_a_busy_machine_and_noisy_figures_are_said():
    """Two `--quick` runs minutes apart gave batch-1 latency 0.765 ms and 285 ms with nothing to say the
    machine was busy: the load at the start and every figure whose runs varied by more than +-25% are said."""
    report = _report(load=3.5, spread=0.6)
    assert report.noisy == [f"{m} training ±60%" for m in ("region_lstm", "cnn_lstm", "convlstm", "lrcn")]
    text = " ".join(_render(report).split())
    assert "the machine was busy when the bench began (load 3.5 on 2 CPUs)" in text
    assert "noisy: region_lstm training ±60%;" in text and "rerun when the machine is idle" in text
    assert "load 3.5 on 2 CPUs at start" in text


def test_bench_command_writes_json(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--quick", "--model", "region_lstm", "--skip", "video", "--skip", "startup", "--skip", "backends", "--skip", "features", "--skip", "formats", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    assert "training" in result.stdout and "inference" in result.stdout and "scaling" in result.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["models"][0]["model"] == "region_lstm" and data["backends"] == []


def test_bench_refuses_unknown_section():
    result = CliRunner().invoke(app, ["bench", "--skip", "gpu"])
    assert result.exit_code == 1 and "--skip 'gpu' is not one of" in result.stderr


@pytest.mark.slow
def test_bench_quick_starts_with_no_torch_warning_line(tmp_path):
    """Issue 30, item 11: `bench --quick` began with torch's "No CUDA runtime is found, using CUDA_HOME=..."
    (torch.compile's probe in the backends section, logged on a machine without CUDA)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "lstmimg", "bench", "--quick", "--model", "region_lstm", "--skip", "video", "--skip", "startup", "--skip", "scaling",
                             "--skip", "features", "--skip", "formats", "--skip", "models"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No CUDA runtime" not in result.stderr and "cpp_extension" not in result.stderr
