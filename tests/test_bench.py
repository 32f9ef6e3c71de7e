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


def test_bench_command_writes_json(tmp_path):
    result = CliRunner().invoke(app, ["bench", "--quick", "--model", "region_lstm", "--skip", "video", "--skip", "startup", "--skip", "backends", "--skip", "features", "--skip", "formats", "--json", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    assert "models" in result.stdout and "scaling" in result.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["models"][0]["model"] == "region_lstm" and data["backends"] == []


def test_bench_refuses_unknown_section():
    result = CliRunner().invoke(app, ["bench", "--skip", "gpu"])
    assert result.exit_code == 1 and "--skip 'gpu' is not one of" in result.stderr


def test_bench_quick_starts_with_no_torch_warning_line(tmp_path):
    """Issue 30, item 11: `bench --quick` began with torch's "No CUDA runtime is found, using CUDA_HOME=..."
    (torch.compile's probe in the backends section, logged on a machine without CUDA)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "lstmimg", "bench", "--quick", "--model", "region_lstm", "--skip", "video", "--skip", "startup", "--skip", "scaling",
                             "--skip", "features", "--skip", "formats", "--skip", "models"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No CUDA runtime" not in result.stderr and "cpp_extension" not in result.stderr
