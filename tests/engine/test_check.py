"""`lstmimg check` (issue 32): copies and leaks found without false pairs, unreadable files and small
classes said, likely label errors ranked by confident learning, and `train --exclude` acting on the lists."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TINY_MODEL, assert_one_line_error, run_cli, write_class_folders
from PIL import Image

from lstmimg import LstmimgError, ModelConfig, TrainConfig, fit
from lstmimg.engine.health.check import check
from lstmimg.engine.health.labels import confident_learning, label_issues

pytestmark = pytest.mark.timeout(300)


def smooth(rng: np.random.Generator, size=(72, 96)) -> Image.Image:
    """A smooth colour picture: a random 6x6 grid enlarged (distinct pictures are uncorrelated)."""
    return Image.fromarray(rng.integers(0, 255, (6, 6, 3)).astype(np.uint8)).resize(size[::-1], Image.Resampling.BICUBIC)


@pytest.fixture
def photos(tmp_path):
    """train/ and val/ of 3 classes, 12 + 4 distinct pictures each, plus copies: exact, resized 0.6x and
    JPEG quality 60 in train, one copy in val (a leak), and one unreadable file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for split, n in (("train", 12), ("val", 4)):
        for c in ("a", "b", "c"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                smooth(rng).save(root / split / c / f"{i:02d}.jpg", quality=92)
    a = root / "train" / "a"
    (a / "exact.jpg").write_bytes((a / "00.jpg").read_bytes())
    Image.open(a / "01.jpg").resize((57, 43)).save(a / "smaller.jpg", quality=92)
    Image.open(a / "02.jpg").save(a / "recoded.jpg", quality=60)
    Image.open(a / "03.jpg").save(root / "val" / "a" / "leaked.png")
    (root / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def test_copies_and_leaks_are_found_and_nothing_else(photos):
    found = check(photos)
    groups = [sorted(m["path"].split("/")[-1] for m in d["members"]) for d in found["duplicates"]]
    assert sorted(groups) == [["00.jpg", "exact.jpg"], ["01.jpg", "smaller.jpg"], ["02.jpg", "recoded.jpg"], ["03.jpg", "leaked.png"]]
    assert [sorted(m["split"] for m in d["members"]) for d in found["leaks"]] == [["train", "val"]]
    exact = next(d for d in found["duplicates"] if any(m["path"].endswith("exact.jpg") for m in d["members"]))
    assert all(m["same_bytes"] for m in exact["members"])
    assert [u["path"].split("/")[-1] for u in found["unreadable"]] == ["broken.jpg"] and "broken.jpg" in found["unreadable"][0]["error"]
    assert found["files"] == 12 * 3 + 4 * 3 + 5 and found["classes"]["imbalance"] == round(15 / 12, 2)  # a: 12 + 3 copies; c: 12
    assert any(o["path"].endswith("smaller.jpg") for o in found["outliers"])  # 43x57 among 72x96


def test_near_pairs_are_confirmed_alike_by_forked_readers_and_in_this_process(tmp_path, monkeypatch):
    from lstmimg.engine.health import scan as scan_module
    from lstmimg.engine.health.scan import _confirm, readers

    rng = np.random.default_rng(5)
    pairs = []
    for i in range(12):
        original = smooth(rng, (200, 160))  # 160x200 (W x H)
        original.save(tmp_path / f"{i}.jpg", quality=92)
        original.resize((104, 130), Image.Resampling.BILINEAR).save(tmp_path / f"{i}_small.jpg", quality=90)
        pairs += [(tmp_path / f"{i}.jpg", tmp_path / f"{i}_small.jpg"), (tmp_path / f"{i}.jpg", tmp_path / f"{(i + 1) % 12}_small.jpg")]
    here = _confirm(None, False, pairs)
    assert here == [True, False] * 12  # each original with its resized copy, not with another's
    files = sorted(tmp_path.glob("*.jpg"))
    with readers(files, workers=2) as (pool, forked):
        assert forked is False  # too few files to fork for by default
    monkeypatch.setattr(scan_module, "FORK_FROM", 8)
    with readers(files, workers=2) as (pool, forked):
        assert forked and _confirm(pool, forked, pairs) == here
    # pairs of other aspects are not compared at their own size: a resized copy keeps its aspect
    smooth(rng, (200, 160)).save(tmp_path / "wide.jpg", quality=92)
    Image.open(tmp_path / "wide.jpg").resize((160, 120)).save(tmp_path / "squeezed.jpg", quality=92)
    Image.open(tmp_path / "wide.jpg").resize((112, 140)).save(tmp_path / "resized.jpg", quality=92)
    paths = [tmp_path / n for n in ("wide.jpg", "squeezed.jpg", "resized.jpg")]
    sizes = np.array([[200, 160], [120, 160], [140, 112]], dtype=np.float64)
    assert _confirm(None, False, [(paths[0], paths[1])]) == [True]  # squeezed to each other's shape, they would pass
    assert scan_module.confirm_alike(None, False, paths, sizes, np.array([0, 0]), np.array([1, 2])).tolist() == [False, True]


@pytest.mark.timeout(120)
def test_forked_check_runs_again_after_opencv_used_its_threads_in_this_process(photos, monkeypatch):
    import cv2

    from lstmimg.engine.health import scan as scan_module

    monkeypatch.setattr(scan_module, "FORK_FROM", 8)
    first = check(photos, workers=2)
    cv2.resize(cv2.GaussianBlur(np.zeros((2000, 2000), np.uint8), (9, 9), 0), (1000, 1000))  # OpenCV's thread pool running here
    again = check(photos, workers=2)  # a forked worker must not touch that pool (cv2.setNumThreads there hung on its lock)
    assert again["duplicates"] == first["duplicates"] and again["unreadable"] == first["unreadable"]


def test_size_outliers_where_sizes_are_shared_and_where_they_vary():
    from lstmimg.engine.health.check import _size_problems

    shared = [(72, 96)] * 30 + [(96, 72)] * 8 + [(43, 57)]
    problems = _size_problems(shared)
    assert problems[:38] == [None] * 38 and problems[38] == "43x57, unlike most (72x96, 96x72)"
    rng = np.random.default_rng(0)  # photos gathered by hand: no two of a size, so a size alone says nothing
    varied = [(int(rng.integers(200, 400)), int(rng.integers(250, 450))) for _ in range(300)] + [(100, 900), (40, 60)]
    problems = _size_problems(varied)
    assert problems[:300] == [None] * 300
    assert problems[300].startswith("100x900, wider than most by over 2x") and problems[301].startswith("40x60, under a quarter of most files' side")


def test_cli_writes_the_lists_and_says_what_to_run_next(photos, tmp_path):
    result = run_cli("check", photos, "--out", tmp_path / "lists")
    assert result.exit_code == 0, result.output
    assert "duplicates: 4 extra copies in 4 groups" in result.stdout and "leaks between splits: 1 group:" in result.stdout
    assert "--exclude" in result.stdout and "unreadable: 1" in result.stdout
    rows = list(csv.DictReader((tmp_path / "lists" / "duplicates.csv").open()))
    assert len(rows) == 8 and sum(r["keep"] == "1" for r in rows) == 4
    leak = list(csv.DictReader((tmp_path / "lists" / "leaks.csv").open()))
    assert {(r["split"], r["keep"]) for r in leak} == {("train", "1"), ("val", "0")}  # the val copy is the one to drop
    assert_one_line_error(run_cli("check", photos, "--out", tmp_path / "lists"), "duplicates.csv", "exists")
    again = run_cli("check", photos, "--out", tmp_path / "lists", "--overwrite", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["duplicate_files"] == 4
    assert_one_line_error(run_cli("check", tmp_path / "nowhere"), "nowhere")


def test_train_exclude_leaves_the_files_out_and_records_them(photos, tmp_path):
    run_cli("check", photos, "--out", tmp_path / "lists")
    (photos / "train" / "b" / "broken.jpg").unlink()
    result = run_cli("train", photos, "--exclude", tmp_path / "lists" / "duplicates.csv", "--epochs", "1", "--hidden", "16", "--out", tmp_path / "run", "--no-report", "--no-tensorboard")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["train_samples"] == 36 and summary["val_samples"] == 12  # the 3 train copies and the val leak left out, the originals kept
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["exclude"]
    assert sorted(p.split("/")[-1] for p in recorded) == ["exact.jpg", "leaked.png", "recoded.jpg", "smaller.jpg"]
    assert_one_line_error(run_cli("train", photos, "--exclude", tmp_path / "missing.csv"), "missing.csv")


def test_confident_learning_flags_the_flipped_samples():
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(3), 40)
    probs = np.full((120, 3), 0.05) + np.eye(3)[true] * 0.85 + rng.uniform(0, 0.005, (120, 3))  # a model sure of every true label
    probs /= probs.sum(1, keepdims=True)
    given = true.copy()
    flipped = [3, 50, 90, 100]
    given[flipped] = (true[flipped] + 1) % 3
    issues, noise = confident_learning(given, probs)
    assert sorted(i["index"] for i in issues) == flipped and all(i["suggested"] == true[i["index"]] for i in issues)
    assert noise == pytest.approx([2 / 41, 1 / 40, 1 / 39], abs=1e-3)  # given 0: 41 samples, 2 of them 2s; given 1: 40, one a 0; given 2: 39, one a 1


def test_label_issues_cross_fit_within_the_budget(tmp_path):
    data = write_class_folders(tmp_path / "data", 16, seed=1)
    for i, name in enumerate(sorted((data / "horizontal").iterdir())[:3]):  # three horizontal bars filed as vertical
        name.rename(data / "vertical" / f"flip{i}.png")
    found = label_issues(data, folds=2, time_budget=60, model_config=ModelConfig(**TINY_MODEL), train_config=TrainConfig(epochs=3, batch_size=16))
    assert found["folds_done"] == 2 and found["judged"] == found["train_files"] and found["seconds"] <= 66
    assert set(found["noise_rate"]) == {"diagonal", "horizontal", "vertical"}
    assert all(set(i) == {"path", "given", "suggested", "score", "probs"} and abs(sum(i["probs"]) - 1) < 1e-3 for i in found["issues"])


def test_more_folds_than_files_is_refused_and_folds_with_nothing_to_hold_out_train_no_model(tmp_path, monkeypatch):
    """`check photos --labels --folds 100` on 88 files trained 100 models for 319.5 s, most of them holding
    out nothing and so judging nothing."""
    import lstmimg.engine.train.training as training

    data = write_class_folders(tmp_path / "data", 4, seed=1)  # 3 classes x 4 files; 10% val leaves 3 a class to fold
    with pytest.raises(LstmimgError, match=r"--folds 100: more than the 9 training files of .*data; each fold holds at least one out"):
        label_issues(data, folds=100)
    trained = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **k: (trained.append(k["out"].name), real_fit(*a, **k))[1])
    found = label_issues(data, folds=5, model_config=ModelConfig(**TINY_MODEL), train_config=TrainConfig(epochs=1, batch_size=16))
    assert trained == ["fold0", "fold1", "fold2"]  # folds 3 and 4 hold nothing out: no model trained for them
    assert found["folds_done"] == 5 and found["judged"] == 9


def test_time_limit_stops_training_between_epochs(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=50, batch_size=16, time_limit=0.01, report=False), out=tmp_path / "r")
    assert summary["epochs"] == 1 and summary["stop_reason"].startswith("time budget")


def test_the_balanced_sampler_draws_every_class_equally_often():
    import torch

    from lstmimg.engine.train.batches import balanced_weights, epoch_order
    from lstmimg.engine.train.distributed import Dist

    labels = torch.tensor([0] * 200 + [1] * 20 + [2] * 10)  # 1:20
    plain = torch.cat(epoch_order(len(labels), 10, torch.Generator().manual_seed(0), Dist(), balanced_weights(labels, TrainConfig())))
    assert sorted(plain.tolist()) == list(range(230))  # the default: each sample once
    drawn = torch.cat([torch.cat(epoch_order(len(labels), 10, torch.Generator().manual_seed(s), Dist(), balanced_weights(labels, TrainConfig(sampler="balanced")))) for s in range(20)])
    share = torch.bincount(labels[drawn], minlength=3).double() / len(drawn)
    assert torch.allclose(share, torch.full((3,), 1 / 3, dtype=torch.double), atol=0.02)
    assert_one_line_error(run_cli("train", "x", "--sampler", "uniform"), "--sampler 'uniform' is not one of: balanced")


def test_forked_scan_reads_jpegs_fast_to_the_same_facts_and_prints_no_decoder_warning(tmp_path, monkeypatch, capfd):
    from lstmimg.engine.health import scan as scan_module

    rng = np.random.default_rng(3)
    paths = []
    for i in range(40):
        path = tmp_path / f"{i:02d}.jpg"
        smooth(rng, (64, 64) if i % 2 else (150, 120)).save(path, quality=85, progressive=i % 3 == 0)
        paths.append(path)
    data = bytearray(paths[0].read_bytes())
    data[len(data) // 2 : len(data) // 2 + 40] = bytes(40)  # damaged inside, whole at the end: libjpeg warns and decodes
    paths[0].write_bytes(bytes(data))
    paths[1].write_bytes(paths[1].read_bytes()[:300])  # truncated
    alone, alone_pictures, alone_hashes = scan_module.scan(paths, "image", workers=1)
    monkeypatch.setattr(scan_module, "FORK_FROM", 8)
    forked, forked_pictures, forked_hashes = scan_module.scan(paths, "image", workers=2)
    assert isinstance(alone[1], str) and forked[1] == alone[1] and "truncated" in forked[1].lower()
    for a, b in zip(alone[2:], forked[2:]):
        assert a["size"] == b["size"] and a["sha"] == b["sha"]
    assert alone_pictures.shape == (40, 1024) and not alone_pictures[1].any()  # the truncated file's row left empty
    assert np.array_equal(alone_pictures, forked_pictures) and np.array_equal(alone_hashes, forked_hashes) and alone_hashes.shape == (40, 1)
    assert "Corrupt JPEG" not in capfd.readouterr().err
