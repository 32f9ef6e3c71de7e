"""What a new user met around training (issue 30): a reused run folder, splits that empty a class,
images too small for the CNN, the plateau schedule without the stopping rule, counts and wording that
disagree, the names `lstmimg runs` prints."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import TINY_MODEL, assert_one_line_error, run_cli, write_class_folders
from PIL import Image

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.engine.train.trainstate import read_run

pytestmark = pytest.mark.timeout(300)


def test_reusing_a_finished_runs_folder_moves_its_files_aside(tmp_path):
    """Item 1: the old summary.json stayed, so the new run, interrupted, could not be resumed."""
    data = write_class_folders(tmp_path / "data", 10, seed=1)
    run = tmp_path / "runX"
    fit(data, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=8, tensorboard=False), out=run)
    (run / "notes.txt").write_text("mine")

    def stop_at_first_epoch(event, info):
        if event == "epoch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(data, ModelConfig(**TINY_MODEL), TrainConfig(epochs=3, batch_size=8, tensorboard=False), out=run, exist_ok=True, callback=stop_at_first_epoch)
    assert not (run / "summary.json").exists() and (run / "notes.txt").read_text() == "mine"
    earlier = [p for p in run.iterdir() if p.name.startswith(".previous")]
    assert len(earlier) == 1 and (earlier[0] / "summary.json").exists() and (earlier[0] / "best.pt").exists()
    assert read_run(run).summary is None  # resumable, not "already finished"


@pytest.mark.parametrize("per_class,split", [(20, 0.99), (2, 0.75)])
def test_a_split_that_leaves_a_class_nothing_to_train_on_is_refused(tmp_path, per_class, split):
    """Item 2: an IndexError traceback at 0.99; a class of 2 files gone from training at 0.75."""
    data = write_class_folders(tmp_path / "data", per_class, seed=1)
    result = run_cli("train", data, "--val-split", str(split), "--out", tmp_path / "run")
    assert_one_line_error(result, "--val-split", "'diagonal'", "nothing to train on")
    assert not (tmp_path / "run").exists()


def test_images_smaller_than_the_cnn_takes_are_grown_and_said(tmp_path):
    """Item 3: 3x3 images gave a RuntimeError traceback from the pooling."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "tiny" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (3, 3)).astype(np.uint8), mode="L").save(tmp_path / "tiny" / name / f"{i}.png")
    result = run_cli("train", tmp_path / "tiny", "--epochs", "1", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "smaller than the" in result.output and "Traceback" not in result.output
    result = run_cli("train", tmp_path / "tiny", "--epochs", "1", "--img-size", "2", "--out", tmp_path / "run2")
    assert_one_line_error(result, "--img-size 2x2", "at least")


def test_the_plateau_schedule_lowers_the_rate_without_the_stopping_rule(tmp_path):
    """Item 4: `--schedule plateau --epochs 6` never lowered the learning rate."""
    from lstmimg.engine.train.stopping import lr_drops

    rows = [{"val_acc": a} for a in (0.5, 0.6, 0.6, 0.6, 0.6, 0.6)]
    assert lr_drops(rows, None) >= 1


def test_runs_accepts_the_names_it_prints(tmp_path, monkeypatch):
    """Item 10: `lstmimg runs exp exp3` answered "exp: not a run folder"."""
    monkeypatch.chdir(tmp_path)
    data = write_class_folders(tmp_path / "data", 6, seed=1)
    for _ in range(2):
        fit(data, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=8, tensorboard=False))
    listed = json.loads(run_cli("runs", "--json").stdout)
    names = [r["name"] for r in listed]
    assert names == ["exp", "exp2"]
    result = run_cli("runs", *names, "--json")
    assert result.exit_code == 0, result.output
    assert [r.split("/")[-1] for r in json.loads(result.stdout)["runs"]] == names
    monkeypatch.setenv("COLUMNS", "80")  # issue 31: at 80 columns the table cut model names and start times (cnn_ls…, 2026-12-03 0)
    table = run_cli("runs").stdout.splitlines()
    assert max(map(len, table)) <= 80 and "…" not in "".join(table[:3])
    assert all(" cnn_lstm " in line and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in table if line.startswith("exp"))
    predicted = run_cli("predict", *sorted((data / "vertical").iterdir())[:3], "--model", "exp")
    top = predicted.stdout.splitlines()
    assert predicted.exit_code == 0, predicted.output
    assert len(top) == 4 and max(map(len, top)) <= 80  # a header and a line a file: the runners-up fit beside the label


@pytest.fixture
def one_unreadable(tmp_path):
    data = write_class_folders(tmp_path / "data", 6, seed=3)
    (data / "vertical" / "zz.png").write_bytes(b"not an image")
    return data


def test_the_counts_on_the_first_lines_agree_when_a_file_is_unreadable(tmp_path, one_unreadable):
    """Item 7: "335 train (in memory) / 36 val images", then "336 images: batch 32"."""
    result = run_cli("train", one_unreadable, "--val-split", "0.2", "--out", tmp_path / "run", "--no-tensorboard")
    assert result.exit_code == 0, result.output
    import re

    train = int(re.search(r"(\d+) train \(", result.stderr).group(1))
    planned = re.search(r"(\d+) images: ", result.stderr)
    assert planned is None or int(planned.group(1)) == train, result.stderr
    assert "skipped 1 unreadable file:" in result.stderr


def test_eval_and_predict_treat_an_unreadable_file_alike(tmp_path):
    """Item 8: one unreadable file among the rest made predict exit 1 and eval exit 0, with other wording."""
    from conftest import IMAGE_MODEL

    one_unreadable = write_class_folders(tmp_path / "digits", 6, seed=3, classes=("3", "7", "9"))
    bad = one_unreadable / "9" / "zz.png"
    bad.write_bytes(b"not an image")
    ev = run_cli("eval", one_unreadable, "--model", IMAGE_MODEL)
    pr = run_cli("predict", one_unreadable, "--model", IMAGE_MODEL, "--jsonl", tmp_path / "r.jsonl", "--csv", tmp_path / "r.csv")
    line = f"error: {bad}: not an image Pillow can read"
    assert ev.exit_code == pr.exit_code == 1 and line in ev.stderr.splitlines() and line in pr.stderr.splitlines()
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert {"path": str(bad), "error": f"{bad}: not an image Pillow can read"} in rows and len(rows) == 19
    import csv

    table = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(table) == 19 and [r["path"] for r in table if r["error"]] == [str(bad)]


def test_eval_on_the_runs_own_folder_says_what_it_scored_and_val_scores_the_held_out_files(tmp_path):
    """Item 5: eval on the folder a run trained on scored its training files as "validation", without a word."""
    from lstmimg.data.folders import split_folder

    data = write_class_folders(tmp_path / "flat", 10, seed=2)
    fit(data, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=8, val_split=0.3, tensorboard=False), out=tmp_path / "run")
    every = run_cli("eval", data, "--model", tmp_path / "run", "--json")
    assert every.exit_code == 0, every.output
    report = json.loads(every.stdout)
    held = split_folder(data, 0.3, 0)["val"].paths
    assert report["samples"] == 30 and report["overlap_with_training"] == 30 - len(held)
    assert f"warning: {30 - len(held)} of 30 files scored were in the run's training split" in every.stderr and "--split val" in every.stderr
    val = run_cli("eval", data, "--model", tmp_path / "run", "--split", "val", "--json", "--out", tmp_path / "report")
    assert val.exit_code == 0, val.output
    report = json.loads(val.stdout)
    assert report["samples"] == len(held) and report["overlap_with_training"] == 0 and "warning" not in val.stderr
    assert "the run's val split" in report["split"] and (tmp_path / "report" / "confusion_matrix.png").exists()


def test_mixed_sizes_are_counted_from_every_header_and_the_choice_is_said(tmp_path):
    """Item 6 (in part): the size was guessed from every third header and mixed sizes were squashed
    without a word."""
    from lstmimg.data.dataset import describe

    rng = np.random.default_rng(1)
    sizes = [(30, 20)] * 6 + [(16, 16)] * 4 + [(24, 32)] * 2  # 30x20 is the most common, but not in every third file
    for name in ("a", "b"):
        (tmp_path / "mixed" / name).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 255, (h, w)).astype(np.uint8), mode="L").save(tmp_path / "mixed" / name / f"{i:02d}.png")
    data = describe(tmp_path / "mixed", TrainConfig(val_split=0.1))
    assert sum(data.size_counts.values()) == len(data.splits["train"].paths) and data.found_size == (30, 20)
    result = run_cli("train", tmp_path / "mixed", "--epochs", "1", "--out", tmp_path / "run", "--no-tensorboard")
    assert result.exit_code == 0, result.output
    assert "images come in 3 sizes" in result.stderr and "resized to 30x20 from the most common size" in result.stderr and "aspect not kept" in result.stderr


def test_letterbox_is_kept_by_the_checkpoint_and_used_by_predict(tmp_path):
    """Item 6: --fit letterbox pads instead of stretching; the run says so and predict reads images as training did."""
    import torch

    from lstmimg.data.images import load_image
    from lstmimg.engine.infer.inference import Predictor
    from lstmimg.engine.infer.loading import load_checkpoint

    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        (tmp_path / "mixed" / name).mkdir(parents=True)
        for i, (h, w) in enumerate([(20, 30)] * 6 + [(30, 20)] * 4):
            Image.fromarray(rng.integers(0, 255, (h, w)).astype(np.uint8), mode="L").save(tmp_path / "mixed" / name / f"{i:02d}.png")
    result = run_cli("train", tmp_path / "mixed", "--epochs", "1", "--fit", "letterbox", "--out", tmp_path / "run", "--no-tensorboard", "--hidden", "16")
    assert result.exit_code == 0, result.output
    assert "aspect kept, grey bars (--fit letterbox)" in result.stderr
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.config.fit == "letterbox"
    tall = tmp_path / "mixed" / "a" / "09.png"  # 30x20: letterboxed into 20x30 with bars left and right
    out = run_cli("predict", tall, "--model", tmp_path / "run", "--json")
    assert out.exit_code == 0, out.output
    x = torch.from_numpy(load_image(tall, 1, (20, 30), "letterbox"))[None]
    assert (x[0, 0, :, 0] == 128).all() and (x[0, 0, :, -1] == 128).all()
    expected = Predictor.from_checkpoint(ckpt).probs(x)[0]
    got = json.loads(out.stdout)[0]
    assert abs(got["prob"] - expected.max().item()) < 1e-4
    refused = run_cli("train", "--resume", tmp_path / "run", "--fit", "squash")
    assert refused.exit_code != 0 and "remove --fit" in refused.output


def test_resume_after_the_data_changed_is_refused(tmp_path):
    """Check and say: --resume split the current files again, so images already trained on could move into val."""
    data = write_class_folders(tmp_path / "data", 10, seed=1)

    def stop(event, info):
        if event == "epoch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(data, ModelConfig(**TINY_MODEL), TrainConfig(epochs=3, batch_size=8, tensorboard=False), out=tmp_path / "run", callback=stop)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["split"]["val"]["files"] == 3
    write_class_folders(tmp_path / "data", 14, seed=9)  # four more files a class
    result = run_cli("train", "--resume", tmp_path / "run")
    assert_one_line_error(result, "its data changed since the run began", "start a new run")
