"""Classifying collections: videos scored as eval scores them, results streamed to JSON Lines / CSV,
resumed after a torn write, sharded over processes and merged, and the Ray Data callable."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli

from lstmimg.engine.infer.loading import load_checkpoint


def bundled_clips(count: int) -> list[Path]:
    from lstmimg.sample import sample_data_dir

    val = sample_data_dir() / "clips" / "val"
    return [p for name in ("down", "left", "right", "up") for p in sorted((val / name).iterdir())[: count // 4]]


def test_videos_get_the_probabilities_eval_gives_them():
    from lstmimg.config import clip_settings
    from lstmimg.data.clips import decode_videos
    from lstmimg.data.folders import Split
    from lstmimg.engine.infer.collection import classify_files
    from lstmimg.engine.infer.inference import Predictor, video_probs
    from lstmimg.runs import BUNDLED_MODELS

    ckpt = load_checkpoint(BUNDLED_MODELS["video"])
    paths = bundled_clips(12)
    clip_len, stride, clips = clip_settings(ckpt.meta)
    decoded = decode_videos(Split(paths, [0] * len(paths), ckpt.classes), ckpt.config.img_size, stride=stride, motion=ckpt.config.motion)
    expected, _ = video_probs(Predictor.from_checkpoint(ckpt, "cpu"), decoded.videos, clip_len, stride, clips)  # the eval path
    got = [r for batch in classify_files(paths, ckpt, topk=len(ckpt.classes), batch_size=5, device="cpu", workers=2) for r in batch.results]
    assert [r["path"] for r in got] == [str(p) for p in paths]
    for row, probs in zip(got, expected):
        assert row["frames"] == len(decoded.videos[got.index(row)]) and row["seconds"] > 0
        for top in row["top"]:
            assert abs(top["prob"] - probs[ckpt.classes.index(top["label"])].item()) <= 1e-5


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_and_csv_stream_resume_after_a_torn_line_and_never_clobber(trained_run, bars, tmp_path):
    val = bars / "val"
    args = ("predict", val, "--model", trained_run, "--batch-size", "4", "--workers", "0")
    result = run_cli(*args, "--jsonl", tmp_path / "all.jsonl", "--csv", tmp_path / "all.csv")
    assert result.exit_code == 0, result.output
    whole = lines(tmp_path / "all.jsonl")
    assert len(whole) == 24 and [r["path"] for r in whole] == sorted(str(p) for p in val.rglob("*.png"))
    assert "classified 24 images" in result.stderr and f"{tmp_path / 'all.jsonl'}: 24 results; " in result.stderr
    with open(tmp_path / "all.csv") as f:
        assert [row["label"] for row in csv.DictReader(f)] == [r["label"] for r in whole]

    # an existing file is refused, untouched
    before = (tmp_path / "all.jsonl").read_bytes()
    assert_one_line_error(run_cli(*args, "--jsonl", tmp_path / "all.jsonl"), "all.jsonl: already exists", "--resume", "--overwrite")
    assert (tmp_path / "all.jsonl").read_bytes() == before

    # killed in the middle of a line: resume drops the torn line and redoes it, each input once
    for name, fmt in (("cut.jsonl", "--jsonl"), ("cut.csv", "--csv")):
        text = (tmp_path / f"all{Path(name).suffix}").read_text()
        cut = text[: text.index("\n", len(text) // 2) + 30]  # half, plus part of the next line
        (tmp_path / name).write_text(cut)
        result = run_cli(*args, fmt, tmp_path / name, "--resume")
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_text() == text
    assert "already done" in result.stderr

    # --overwrite starts anew
    (tmp_path / "cut.jsonl").write_text("junk\n")
    assert run_cli(*args, "--jsonl", tmp_path / "cut.jsonl", "--overwrite").exit_code == 0
    assert lines(tmp_path / "cut.jsonl") == whole


def test_parts_are_fixed_shares_and_merge_into_one_file_each_input_once(tmp_path):
    from lstmimg.engine.infer.outputs import merge_parts, part_path, parts_of, share

    items = list(range(11))
    shares = [list(share(items, r, 3)) for r in range(3)]
    assert sum(shares, []) == items and [len(s) for s in shares] == [4, 4, 3]
    out = tmp_path / "r.jsonl"
    row = lambda i: json.dumps({"path": f"p{i}", "label": "a"}) + "\n"  # noqa: E731
    out.write_text(row(0) + row(1))  # a single process began; then a sharded run
    part_path(out, 0, 2).write_text(row(1) + row(2) + row(3)[:9])  # torn at a kill
    part_path(out, 1, 2).write_text(row(4) + row(5))
    assert merge_parts(out, "jsonl", "image") == 5
    assert [r["path"] for r in lines(out)] == ["p0", "p1", "p2", "p4", "p5"] and parts_of(out) == []


@pytest.mark.slow
def test_two_processes_give_the_results_of_one(trained_run, bars, tmp_path):
    args = ("predict", bars / "train", "--model", trained_run, "--batch-size", "8")
    assert run_cli(*args, "--jsonl", tmp_path / "one.jsonl").exit_code == 0
    result = subprocess.run([sys.executable, "-m", "lstmimg", *map(str, args), "--jsonl", tmp_path / "two.jsonl", "--devices", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert lines(tmp_path / "two.jsonl") == lines(tmp_path / "one.jsonl") and len(lines(tmp_path / "one.jsonl")) == 72
    assert not list(tmp_path.glob(".two.jsonl.part*"))
    assert_one_line_error(run_cli(*args, "--devices", "2"), "give --jsonl FILE or --csv FILE")


def test_batch_classifier_labels_decoded_images_and_videos_as_predict_does(trained_run, bars):
    from PIL import Image

    from lstmimg.engine.infer.collection import predict
    from lstmimg.engine.infer.ray_data import BatchClassifier

    images = sorted((bars / "val").rglob("*.png"))
    expected, _ = predict(images, trained_run, topk=1, workers=0)
    classify = BatchClassifier(trained_run, device="cpu")
    batch = {"image": np.stack([np.asarray(Image.open(p)) for p in images]), "path": np.array([str(p) for p in images])}
    out = classify(batch)
    assert list(out["path"]) == [str(p) for p in images] and "image" not in out
    assert list(out["label"]) == [r["label"] for r in expected]
    assert np.allclose(out["prob"], [r["prob"] for r in expected], atol=1e-5)

    from lstmimg.data.video_io import read_video
    from lstmimg.runs import BUNDLED_MODELS

    videos = bundled_clips(4)
    expected, _ = predict(videos, BUNDLED_MODELS["video"], topk=1, workers=0)
    frames = np.empty(len(videos), dtype=object)
    frames[:] = [read_video(p)[0] for p in videos]  # decoded at their own size
    out = BatchClassifier(BUNDLED_MODELS["video"], kind="video", device="cpu")({"frames": frames})
    assert list(out["label"]) == [r["label"] for r in expected]
    assert np.allclose(out["prob"], [r["prob"] for r in expected], atol=1e-4)


def test_ray_data_map_batches_labels_a_folder_as_predict_does(trained_run, bars):
    ray = pytest.importorskip("ray")
    from lstmimg.engine.infer.collection import predict
    from lstmimg.engine.infer.ray_data import BatchClassifier

    images = sorted((bars / "val").rglob("*.png"))
    expected = {r["path"]: r["label"] for r in predict(images, trained_run, topk=1, workers=0)[0]}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ds = ray.data.read_images([str(p) for p in images], include_paths=True)
        ds = ds.map_batches(BatchClassifier, fn_constructor_kwargs={"model": str(trained_run), "device": "cpu"}, concurrency=1, batch_size=8)
        rows = ds.select_columns(["path", "label"]).take_all()
    finally:
        ray.shutdown()
    assert {str(Path(r["path"]).resolve()): r["label"] for r in rows} == {str(Path(p).resolve()): label for p, label in expected.items()}


def test_verified_export_is_the_backend_only_for_its_own_checkpoint(trained_run, tmp_path):
    import shutil

    from lstmimg.engine.infer.loading import load_model

    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert load_model(run)[1] == "torch"
    with pytest.raises(Exception, match="no verified ONNX export beside it"):
        load_model(run, backend="onnx")
    assert run_cli("export", run, "--opset", "17").exit_code == 0
    ckpt, backend = load_model(run, device="cpu")
    assert backend.startswith("onnx") and "best.onnx" in backend and ckpt.path.suffix == ".onnx"
    assert load_model(run, backend="torch")[1] == "torch"
    state = torch.load(run / "best.pt", weights_only=True)
    state["meta"] = {**state.get("meta", {}), "note": "trained on"}
    torch.save(state, run / "best.pt")  # a newer best.pt: the export beside it is of another checkpoint
    assert load_model(run, device="cpu")[1] == "torch"


def test_parts_a_dead_sharded_run_left_are_completed_by_resume(trained_run, bars, tmp_path):
    from lstmimg.engine.infer.outputs import part_path

    args = ("predict", bars / "val", "--model", trained_run, "--workers", "0")
    assert run_cli(*args, "--jsonl", tmp_path / "whole.jsonl").exit_code == 0
    whole = (tmp_path / "whole.jsonl").read_text().splitlines(keepends=True)
    out = tmp_path / "r.jsonl"
    part_path(out, 0, 2).write_text("".join(whole[:5]) + whole[5][:20])  # rank 0 died mid-line; rank 1 wrote nothing
    assert_one_line_error(run_cli(*args, "--jsonl", out), "r.jsonl: has parts of an unfinished sharded run beside it", "--resume")
    result = run_cli(*args, "--jsonl", out, "--resume")
    assert result.exit_code == 0, result.output
    assert lines(out) == lines(tmp_path / "whole.jsonl") and not list(tmp_path.glob(".r.jsonl.part*"))
