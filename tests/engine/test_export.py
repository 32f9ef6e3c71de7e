"""`lstmimg export`: ONNX graphs with normalisation inside and, for video, the recurrent state as
inputs and outputs; ONNX Runtime behind predict, eval and video; verification and bad files."""

import csv
import json

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN, assert_one_line_error, moving_square, run_cli, write_clip

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def random_checkpoint(path, data, kind, **config):
    """An untrained model of this config saved as a checkpoint whose run data is ``data`` (where
    verification takes its samples); parity does not need trained weights."""
    from lstmimg.checkpoint import save_checkpoint
    from lstmimg.config import ModelConfig
    from lstmimg.models.registry import build_model, get_model_spec

    torch.manual_seed(0)
    channels = 1 if kind == "image" else 3 + {"none": 0, "diff": 1, "flow": 2}[config.get("motion", "none")]
    cfg = get_model_spec(config["name"]).complete(ModelConfig(**{"in_channels": channels, "img_size": (12, 12) if kind == "image" else (16, 16), "num_classes": 3, **TINY_MODEL, **config}))
    meta = {"data": str(data)} if kind == "image" else {"data": str(data), "clip_len": 4, "frame_stride": 1, "val_clips": 2}
    save_checkpoint(path, build_model(cfg), cfg, ["a", "b", "c"], [0.3] * channels, [0.2] * channels, kind, meta)
    return path


LONG = pytest.mark.long  # CI keeps one case of each model and scan family (rows, snake patches, plain and bidirectional GRU cnn_lstm)


@pytest.mark.parametrize("config", [
    {"name": "region_lstm", "scan": "rows"}, pytest.param({"name": "region_lstm", "scan": "cols"}, marks=LONG), pytest.param({"name": "region_lstm", "scan": "patches", "patch": 4}, marks=LONG),
    {"name": "region_lstm", "scan": "snake", "patch": 4}, {"name": "cnn_lstm"}, pytest.param({"name": "cnn_lstm", "bidirectional": True}, marks=LONG),
    {"name": "cnn_lstm", "scan": "patches", "bidirectional": True, "rnn": "gru"},
], ids=lambda c: "-".join(str(v) for v in c.values()))
def test_image_models_export_and_match_pytorch(bars, tmp_path, config):
    from lstmimg.engine.infer.export import export_model

    result = export_model(random_checkpoint(tmp_path / "m.pt", bars, "image", **config))
    assert result["verified"] and result["max_abs_diff"] <= 1e-4 and str(bars) == result["samples_from"]
    proto = onnx.load(tmp_path / "m.onnx")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["lstmimg_format"] == "lstmimg-onnx-1" and json.loads(meta["classes"]) == ["a", "b", "c"] and meta["scan"] == config.get("scan", "rows")
    assert [i.name for i in proto.graph.input] == ["images"] and proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("config", [{"name": "lrcn"}, {"name": "lrcn", "rnn": "gru", "layers": 2}, {"name": "lrcn", "motion": "flow", "fusion": "two-stream"}],
                         ids=["lstm", "gru-2-layers", "flow-two-stream"])
def test_video_models_take_and_return_the_state(clips, tmp_path, config):
    """B and T are dynamic; h0/c0 are (layers, B, hidden); a stream read window by window with the
    state fed back gives what PyTorch gives, and ends in the state of one pass."""
    import onnxruntime as ort

    from lstmimg.engine.infer.export import export_model

    result = export_model(random_checkpoint(tmp_path / "v.pt", clips, "video", **config))
    assert result["verified"] and result["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "v.onnx"))
    states = ["h0", "c0"] if config.get("rnn", "lstm") == "lstm" else ["h0"]
    assert [i.name for i in session.get_inputs()] == ["frames", *states]
    assert [o.name for o in session.get_outputs()] == ["logits", *[s.replace("0", "n") for s in states]]
    layers, channels = config.get("layers", 1), 5 if config.get("motion") == "flow" else 3
    for batch, time in ((1, 3), (4, 7)):
        feed = {"frames": np.random.rand(batch, time, channels, 16, 16).astype(np.float32), **{s: np.zeros((layers, batch, 16), np.float32) for s in states}}
        logits, *new = session.run(None, feed)
        assert logits.shape == (batch, 3) and all(n.shape == (layers, batch, 16) for n in new)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["clip_len"]) == 4 and json.loads(meta["state"])["inputs"] == states


@pytest.fixture(scope="module")
def exported_run(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = run_cli("export", trained_run, "--out", out)
    assert result.exit_code == 0, result.output
    assert "verified against PyTorch" in result.stdout and out.is_file()
    return out


def test_predict_and_eval_with_the_onnx_file_match_the_checkpoint(trained_run, exported_run):
    val = json.loads((trained_run / "config.json").read_text())["data"] + "/val"
    a, b = (json.loads(run_cli("predict", val, "--model", m, "--json", "--topk", "3").stdout) for m in (trained_run, exported_run))
    assert [r["path"] for r in a] == [r["path"] for r in b] and len(a) == 24
    worst = max(abs(x["prob"] - y["prob"]) for ra, rb in zip(a, b) for x, y in zip(sorted(ra["top"], key=lambda t: t["label"]), sorted(rb["top"], key=lambda t: t["label"])))
    assert worst <= 1e-4
    ea, eb = (json.loads(run_cli("eval", val, "--model", m, "--json").stdout) for m in (trained_run, exported_run))
    assert ea["accuracy"] == eb["accuracy"] and ea["confusion_matrix"] == eb["confusion_matrix"]


def test_video_with_the_onnx_file_matches_window_by_window_on_a_long_video(clips, tmp_path):
    from lstmimg import ModelConfig, TrainConfig, fit

    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 2}), out=tmp_path / "run")
    assert run_cli("export", tmp_path / "run").exit_code == 0
    rng = np.random.default_rng(3)
    frames = [f for i in range(60) for f in moving_square(1 if i % 2 else -1, 7, rng)]  # 420 frames
    video = write_clip(tmp_path / "long.avi", frames)
    for name, model, backend in (("pt", tmp_path / "run", "torch"), ("onnx", tmp_path / "run" / "best.onnx", "auto"), ("auto", tmp_path / "run", "auto")):
        result = run_cli("video", video, "--model", model, "--window", "2", "--csv", tmp_path / f"{name}.csv", "--backend", backend)
        assert result.exit_code == 0, result.output
        assert f"backend {'torch' if backend == 'torch' else 'onnx'}" in result.stderr  # the run's verified export is taken by default
    rows = [list(csv.DictReader(open(tmp_path / f"{n}.csv"))) for n in ("pt", "onnx")]
    assert len(rows[0]) == len(rows[1]) >= 200  # hundreds of windows, the state carried through all
    worst = max(abs(float(a[k]) - float(b[k])) for a, b in zip(*rows) for k in ("left", "right"))
    assert worst <= 1e-4 + 1e-9  # probabilities are written to 4 decimals


def test_a_failed_verification_leaves_nothing_and_keeps_what_was_there(trained_run, tmp_path, monkeypatch):
    from lstmimg.engine.infer import export

    out = tmp_path / "m.onnx"
    out.write_bytes(b"the user's file")
    monkeypatch.setattr(export, "largest_difference", lambda ckpt, exported: 0.5)
    assert_one_line_error(run_cli("export", trained_run, "--out", out, "--overwrite"), str(out), "differ from PyTorch's by up to 5.00e-01")
    assert out.read_bytes() == b"the user's file" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_bad_onnx_inputs_are_one_line_each(trained_run, exported_run, tmp_path, bars):
    not_onnx = tmp_path / "x.onnx"
    not_onnx.write_text("hello")
    assert_one_line_error(run_cli("predict", bars / "val", "--model", not_onnx), str(not_onnx), "not a readable ONNX model")
    foreign = tmp_path / "foreign.onnx"
    import onnx
    from onnx import TensorProto, helper

    x, y = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3]), helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "foreign", [x], [y])), str(foreign))
    assert_one_line_error(run_cli("predict", bars / "val", "--model", foreign), str(foreign), "not one lstmimg exported")
    clip = write_clip(tmp_path / "c.avi", moving_square(1, 6, np.random.default_rng(0)))
    assert_one_line_error(run_cli("video", clip, "--model", exported_run), str(exported_run), "an image model, but this command needs a video model")
    assert_one_line_error(run_cli("export", exported_run), "is already an ONNX file")
    assert_one_line_error(run_cli("export", trained_run, "--format", "tflite"), "--format 'tflite' is not one of: onnx")
    assert_one_line_error(run_cli("export", trained_run, "--out", exported_run), "already exists")


def test_without_onnxruntime_one_line_says_how_to_install(exported_run, bars, monkeypatch):
    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "onnxruntime" else real_import(name, *a, **k))
    assert_one_line_error(run_cli("predict", bars / "val", "--model", exported_run), "pip install 'lstmimg[onnx]'")


def test_the_python_snippets_of_the_export_page_run_as_written(tmp_path, monkeypatch):
    """docs/export.md's image and video snippets, against exports of the bundled models, print what
    lstmimg predict and lstmimg video print."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from lstmimg.engine.infer.export import export_model
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    doc = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text(encoding="utf-8")
    image_snippet, video_snippet = re.findall(r"```python\n(.*?)```", doc, re.S)[:2]
    export_model(BUNDLED_MODELS["image"], tmp_path / "digits.onnx", verify=False)
    export_model(BUNDLED_MODELS["video"], tmp_path / "clips.onnx", verify=False)
    seven = sorted((sample_data_dir() / "digits" / "val" / "7").iterdir())[0]
    shutil.copy(seven, tmp_path / "seven.png")
    shutil.copy(sorted((sample_data_dir() / "clips" / "val" / "up").iterdir())[0], tmp_path / "clip.mp4")
    for snippet, expected in ((image_snippet, run_cli("predict", seven, "--model", tmp_path / "digits.onnx", "--json")),
                              (video_snippet, run_cli("video", tmp_path / "clip.mp4", "--model", tmp_path / "clips.onnx", "--json"))):
        printed = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
        label = json.loads(expected.stdout)
        assert printed[-1] == (label[0] if isinstance(label, list) else label)["label"]


def test_verification_passes_over_files_training_skipped(trained_run, bars, tmp_path):
    """A run whose data holds an unreadable image (training skipped it) verifies its export on the
    readable ones: the samples pass over the bad file and are still as many."""
    import shutil

    from lstmimg.checkpoint import read_payload
    from lstmimg.data.folders import IMAGE_EXTENSIONS, files_under
    from lstmimg.engine.infer.export import verification_samples
    from lstmimg.engine.infer.loading import load_checkpoint

    data = tmp_path / "data"
    shutil.copytree(bars, data)
    files_under(data, IMAGE_EXTENSIONS)[0].write_bytes(b"not a picture")  # the first file verification would sample
    payload = read_payload(trained_run / "best.pt")
    payload["meta"]["data"] = str(data)
    torch.save(payload, tmp_path / "best.pt")
    samples, source = verification_samples(load_checkpoint(tmp_path / "best.pt"))
    assert source == str(data) and len(samples) == 32


def test_verification_reads_only_the_first_frames_of_long_videos(tmp_path, frame_readers):
    """Export verification takes each sample video's first 2 * clip_len + 1 frames, not the whole file."""
    from lstmimg.engine.infer.export import verification_samples
    from lstmimg.engine.infer.loading import load_checkpoint

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        write_clip(tmp_path / "data" / name / "long.avi", [rng.integers(0, 255, (16, 16), dtype=np.uint8) for _ in range(1200)])
    ckpt = load_checkpoint(random_checkpoint(tmp_path / "v.pt", tmp_path / "data", "video", name="lrcn", motion="flow"))
    samples, _ = verification_samples(ckpt)
    assert [len(v) for v in samples] == [9, 9]  # clip_len 4: 2 * 4 + 1 frames each
    assert samples[0].shape[1] == 5  # RGB and the two flow channels
    assert sum(r.frames_decoded for r in frame_readers) < 2 * 40
