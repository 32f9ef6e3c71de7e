"""Nothing lost: interrupting, killing and resuming training; stopping on a non-finite loss."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN
from conftest import assert_one_line_error as one_line_error
from conftest import run_cli as run

from lstmimg import ModelConfig, TrainConfig, fit, load_checkpoint
from lstmimg.errors import LstmimgError, TrainingInterrupted

METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")


def metrics(run):
    with open(run / "metrics.csv") as f:
        return [{k: r[k] for k in METRICS} for r in csv.DictReader(f)]


def interrupt_at(epoch: int, step: int, signum=signal.SIGINT):
    def callback(event, info):
        if event == "step" and info["epoch"] == epoch and info["step"] == step:
            os.kill(os.getpid(), signum)

    return callback


@pytest.mark.parametrize("where", [(2, 2), (3, 1)])
def test_interrupt_and_resume_ends_with_the_same_metrics(bars, tmp_path, where):
    train = TrainConfig(epochs=4, batch_size=16)
    fit(bars, ModelConfig(**TINY_MODEL), train, out=tmp_path / "straight")
    with pytest.raises(TrainingInterrupted) as info:
        fit(bars, ModelConfig(**TINY_MODEL), train, out=tmp_path / "cut", callback=interrupt_at(*where))
    assert info.value.exit_code == 130
    assert f"resume with: lstmimg train --resume {tmp_path / 'cut'}" in str(info.value)
    assert len(metrics(tmp_path / "cut")) == where[0] - 1
    summary = fit(resume=tmp_path / "cut")
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "straight")
    straight = json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert summary["val_accuracy"] == straight["val_accuracy"] and summary["best_epoch"] == straight["best_epoch"]
    a, b = load_checkpoint(tmp_path / "cut" / "last.pt").model, load_checkpoint(tmp_path / "straight" / "last.pt").model
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("load", [{"load": "memory"}, {"load": "disk", "workers": 2}])
def test_video_run_resumes_to_the_same_metrics(clips, tmp_path, load):
    train = TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 3, "augment": True}, **load)
    model = ModelConfig(name="lrcn", **TINY_MODEL)
    fit(clips, model, train, out=tmp_path / "straight")
    with pytest.raises(TrainingInterrupted):
        fit(clips, model, train, out=tmp_path / "cut", callback=interrupt_at(2, 3, signal.SIGTERM))
    fit(resume=tmp_path / "cut")
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "straight")


def test_resume_of_a_finished_run_trains_nothing_and_refuses_foreign_runs(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=tmp_path / "done")
    again = fit(resume=tmp_path / "done")
    assert again["already_finished"] and again["val_accuracy"] == summary["val_accuracy"]
    with pytest.raises(LstmimgError, match="no such run folder"):
        fit(resume=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LstmimgError, match="config.json: missing or unreadable"):
        fit(resume=tmp_path / "empty")


def test_non_finite_loss_stops_with_the_last_good_checkpoint(bars, tmp_path):
    class Explode:
        def __init__(self):
            self.calls = 0

        def __call__(self, event, info):
            if event == "epoch" and info["epoch"] == 1:
                with torch.no_grad():  # poison the weights after a good first epoch
                    for p in explode.net.parameters():
                        p.fill_(float("nan"))

    explode = Explode()
    import lstmimg.engine.train.training as engine

    original = engine.build_model

    def build(cfg):
        explode.net = original(cfg)
        return explode.net

    engine.build_model = build
    try:
        with pytest.raises(LstmimgError, match=r"loss became nan at epoch 2, step 1: training stopped; .*last.pt holds the last good epoch"):
            fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=3), out=tmp_path / "r", callback=explode)
    finally:
        engine.build_model = original
    last = load_checkpoint(tmp_path / "r" / "last.pt")
    assert last.meta["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in last.model.parameters())


def test_exist_ok(bars, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LstmimgError, match="--exist-ok"):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=out)
    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=out, exist_ok=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "best.pt").is_file()


def cli(*args):
    return [sys.executable, "-m", "lstmimg", "train", *map(str, args)]


@pytest.mark.slow
@pytest.mark.long  # 20 s; in CI, test_interrupt_and_resume_ends_with_the_same_metrics resumes through the library and the fault suite signals the CLI
def test_sigterm_then_resume_through_the_cli(bars, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(cli(bars, "--out", run, "--epochs", "40", "--hidden", "16"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert f"resume with: lstmimg train --resume {run}" in err and "Traceback" not in err
    done = subprocess.run(cli("--resume", run), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "summary.json").read_text())["epochs"] == 40


@pytest.mark.slow
@pytest.mark.long  # beyond CI's budget: python -m pytest -m long (benchmarks/faults.py runs it)
def test_sigkill_at_random_points_never_breaks_the_run(bars, tmp_path):
    """Killed without warning at several random moments: last.pt always loads and --resume finishes."""
    rng = random.Random(0)
    run = tmp_path / "run"
    args = cli(bars, "--out", run, "--epochs", "30", "--hidden", "16", "--batch-size", "8")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kills = 0
    while kills < 4:
        deadline = time.time() + 120
        while not (run / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
        assert load_checkpoint(run / "last.pt").meta["epoch"] >= 1
        proc = subprocess.Popen(cli("--resume", run), stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"resume{kills}.log", "w"))
    assert proc.wait(timeout=300) == 0
    assert kills >= 2
    # a run killed after its last epoch but before its summary is finished by --resume as well
    (run / "summary.json").unlink()
    assert subprocess.run(cli("--resume", run), capture_output=True, timeout=300).returncode == 0
    assert json.loads((run / "summary.json").read_text())["epochs"] == 30
    assert len(metrics(run)) == 30


def test_crash_right_after_an_epoch_checkpoint_resumes_exactly(bars, tmp_path):
    train = TrainConfig(epochs=4, batch_size=16)
    fit(bars, ModelConfig(**TINY_MODEL), train, out=tmp_path / "straight")

    def crash(event, info):
        if event == "epoch" and info["epoch"] == 2:
            raise RuntimeError("killed")  # as SIGKILL right after epoch 2's last.pt

    with pytest.raises(RuntimeError):
        fit(bars, ModelConfig(**TINY_MODEL), train, out=tmp_path / "cut", callback=crash)
    fit(resume=tmp_path / "cut")
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "straight")
    a, b = load_checkpoint(tmp_path / "cut" / "last.pt").model, load_checkpoint(tmp_path / "straight" / "last.pt").model
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_resuming_a_run_that_stopped_early_says_finished(bars, tmp_path):
    out = tmp_path / "r"
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=10, lr=1e-12, patience=1, augment=False), out=out)
    assert summary["epochs"] == 2
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}  # the report folder's files too
    result = run("train", "--resume", out)
    assert result.exit_code == 0, result.output
    assert "already finished" in result.output
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_refuses_other_options(trained_run):
    one_line_error(run("train", "--resume", trained_run, "--epochs", "5", "--lr", "0.1"), "--resume", "--epochs", "--lr")


def test_nan_in_the_first_epoch_points_to_no_missing_checkpoint(bars, tmp_path, monkeypatch):
    import lstmimg.engine.train.training as engine

    original = engine.build_model

    def poisoned(cfg):
        net = original(cfg)
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(float("nan"))
        return net

    monkeypatch.setattr(engine, "build_model", poisoned)
    with pytest.raises(LstmimgError) as info:
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=2), out=tmp_path / "r")
    assert "last.pt" not in str(info.value) and "no checkpoint" in str(info.value)


def mount_tiny(path: Path, size: str = "6m") -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("free, resumable", [(900_000, False), (3_400_000, True)])
def test_full_disk_is_one_line_and_keeps_files_whole(bars, tmp_path, free, resumable):
    """Training into a 6 MB filesystem: one error line (with the resume command once last.pt holds an
    epoch), exit 1, no traceback, and every checkpoint there still loads."""
    disk = tmp_path / "disk"
    if not mount_tiny(disk):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        (disk / "filler").write_bytes(b"\0" * (6 * 1024 * 1024 - free))
        result = run("train", bars, "--epochs", "30", "--hidden", "64", "--out", disk / "run")
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "last.pt: cannot write: no space left on device" in errors[0], result.stderr
        assert ("resume with: lstmimg train --resume" in errors[0]) == resumable
        for name in ("best.pt", "last.pt"):
            if (disk / "run" / name).exists():
                load_checkpoint(disk / "run" / name)
        assert not [p for p in (disk / "run").iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)])
