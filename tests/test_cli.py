"""The command line, end to end: typer's CliRunner in-process, subprocesses where imports matter."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_MODEL, assert_one_line_error, moving_square, write_clip
from PIL import Image
from typer.testing import CliRunner

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.cli import app

runner = CliRunner()
TINY = ["--hidden", "16", "--epochs", "1", "--batch-size", "16"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def imported_after(*argv: str) -> set[str]:
    """Run the CLI in a fresh interpreter and report which heavy modules it imported."""
    code = (
        "import sys\nfrom lstmimg.cli import app\n"
        f"try:\n    app({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print('HEAVY:', *(m for m in ('torch', 'torchvision', 'cv2', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.strip().splitlines()[-1].split()[1:])


@pytest.mark.parametrize("command", [[], ["train"], ["predict"], ["eval"], ["models"], ["video"]])
def test_help_imports_no_heavy_module(command):
    assert imported_after(*command, "--help") == set()


def test_predict_imports_neither_torchvision_nor_cv2(trained_run, bars):
    image = next((bars / "val" / "vertical").iterdir())
    assert imported_after("predict", str(image), "--model", str(trained_run)) == {"torch"}


def test_models_lists_the_registry():
    result = run("models")
    assert result.exit_code == 0
    assert "region_lstm" in result.stdout and "cnn_lstm" in result.stdout


@pytest.mark.slow
def test_train_predict_eval_on_the_sample_digits(tmp_path, monkeypatch):
    """One short epoch on the bundled digits, then predict and eval through the CLI."""
    from lstmimg.sample import sample_data_dir

    monkeypatch.chdir(tmp_path)
    result = run("train", "--epochs", "1")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "train" / "exp"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["val_accuracy"] > 0.7 and summary["val_samples"] == 1000
    assert "training summary" in result.stdout

    digits = sample_data_dir() / "digits" / "val"
    sevens = sorted((digits / "7").iterdir())[:20]
    result = run("predict", *sevens, "--json", "--csv", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert "runs/train/exp/best.pt (newest run)" in result.stderr
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(p) for p in sevens]
    assert sum(r["label"] == "7" for r in rows) >= 12
    assert all(len(r["top"]) == 5 and set(r["top"][0]) == {"label", "prob"} for r in rows)
    with open(tmp_path / "p.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["label"] for r in table] == [r["label"] for r in rows]

    result = run("eval", digits.parent, "--model", run_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-4)
    assert len(report["per_class"]) == 10 and sum(map(sum, report["confusion_matrix"])) == 1000
    table = run("eval", digits.parent, "--model", run_dir)
    assert table.exit_code == 0 and "precision" in table.stdout and "confusion matrix" in table.stdout


def test_train_and_predict_table_on_tiny_data(bars, tmp_path):
    result = run("train", bars, *TINY, "--model", "region_lstm", "--scan", "snake", "--patch", "3", "--load", "disk", "--workers", "1", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"]["scan"] == "snake" and config["train"]["load"] == "disk" and config["train"]["workers"] == 1
    assert "72 train (from disk by 1 worker process)" in result.stderr
    # the table shows what the library predicts, file by file (names that hold no class name)
    import shutil

    from lstmimg import predict

    flat = tmp_path / "flat"
    flat.mkdir()
    for i, image in enumerate(sorted((bars / "val").rglob("*.png"))):
        shutil.copy(image, flat / f"img{i:03d}.png")
    expected, _ = predict(sorted(flat.iterdir()), tmp_path / "r", topk=1)
    result = run("predict", flat, "--model", tmp_path / "r", "--topk", "1")
    assert result.exit_code == 0, result.output
    for label in ("diagonal", "horizontal", "vertical"):
        assert result.stdout.count(label) == sum(r["label"] == label for r in expected)


def test_predict_uses_the_bundled_model_without_runs(tmp_path, monkeypatch):
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    if not BUNDLED_MODELS["image"].is_file():
        pytest.skip("bundled model not built")
    monkeypatch.chdir(tmp_path)
    images = sorted((sample_data_dir() / "digits" / "val" / "3").iterdir())[:10]
    result = run("predict", *images, "--json")
    assert result.exit_code == 0, result.output
    assert "bundled digits model" in result.stderr
    assert sum(r["label"] == "3" for r in json.loads(result.stdout)) >= 9


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_bad_inputs_get_one_line_and_exit_1(tmp_path, bars, trained_run):
    png = tmp_path / "ok.png"
    Image.new("L", (64, 64), 30).save(png)
    cases = [
        (["predict", tmp_path / "missing.png", "--model", trained_run], "missing.png", "no such file"),
        (["predict", write(tmp_path / "text.png", b"just text"), "--model", trained_run], "text.png", "not an image"),
        (["predict", write(tmp_path / "empty.png", b""), "--model", trained_run], "empty.png", "empty file"),
        (["predict", write(tmp_path / "cut.png", png.read_bytes()[:70]), "--model", trained_run], "cut.png", "cannot decode image"),
        (["predict", png, "--model", write(tmp_path / "other.pt", b"PK\x03\x04 not ours")], "other.pt", "not a readable checkpoint"),
        (["predict", png, "--model", tmp_path / "nope.pt"], "nope.pt", "no such checkpoint"),
        (["train", tmp_path / "no_data"], "no_data", "no such folder"),
        (["train", (tmp_path / "empty_dir").mkdir() or tmp_path / "empty_dir"], "empty_dir", "no class folders"),
        (["eval", tmp_path / "no_data", "--model", trained_run], "no_data", "no such folder"),
    ]
    for args, name, problem in cases:
        assert_one_line_error(run(*args), name, problem)
    (bars / "train" / "horizontal" / "extra").mkdir()
    for p in (bars / "val" / "vertical").iterdir():
        p.unlink()
    assert_one_line_error(run("train", bars, "--out", tmp_path / "x"), bars / "val" / "vertical", "class folder has no images")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "-1"], "--epochs must be >= 1"),
        (["--model", "vit"], "unknown model 'vit'; registered: cnn_lstm, lrcn, region_lstm"),
        (["--optimizer", "lion"], "adam, adamw, sgd"),
        (["--img-size", "big"], "--img-size 'big'"),
        (["--class-weights", "yes"], "auto"),
        (["--load", "stream"], "--load 'stream' is not one of: auto, memory, disk"),
        (["--workers", "-2"], "--workers must be >= 0"),
    ],
)
def test_bad_options_are_refused_before_any_work(bars, tmp_path, args, message):
    result = run("train", bars, "--out", tmp_path / "r", *args)
    assert_one_line_error(result, message)
    assert not (tmp_path / "r").exists()


def test_patch_that_does_not_divide_the_image(bars, tmp_path):
    result = run("train", bars, "--model", "region_lstm", "--scan", "patches", "--patch", "5", "--out", tmp_path / "r")
    assert_one_line_error(result, "--patch 5 does not divide the image size 12x12; allowed: 1, 2, 3, 4, 6, 12")
    assert not (tmp_path / "r").exists()


def test_predict_reports_bad_files_after_the_good_ones(trained_run, bars, tmp_path):
    bad = write(tmp_path / "bad.jpg", b"nope")
    good = next((bars / "val" / "vertical").iterdir())
    result = run("predict", good, bad, "--model", trained_run, "--json")
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)) == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "bad.jpg" in result.stderr


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "lstmimg", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "predict" in out.stdout


def test_train_on_clips_then_video(clips, tmp_path):
    result = run("train", clips, "--hidden", "16", "--epochs", "12", "--batch-size", "4", "--clip-len", "5", "--frame-stride", "1", "--lr", "0.01", "--no-augment", "--out", tmp_path / "v")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    assert summary["model"] == "lrcn" and summary["kind"] == "video" and "val_clip_accuracy" in summary
    assert "clips/s" in result.stderr and "val clip accuracy" in result.stdout
    source = sorted((clips / "val" / "right").iterdir())[0]

    result = run("video", source, "--model", tmp_path / "v", "--json", "--csv", tmp_path / "w.csv", "--window", "3")
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert set(obj) == {"path", "label", "prob", "top", "frames", "dropped", "segments"}
    assert obj["path"] == str(source) and obj["frames"] in (5, 6)
    assert all(set(seg) == {"start", "end", "label", "prob"} for seg in obj["segments"])
    with open(tmp_path / "w.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and set(rows[0]) >= {"start", "end", "label", "prob", "left", "right"}

    table = run("video", source, "--model", tmp_path / "v", "--save", tmp_path / "out.mp4")
    assert table.exit_code == 0 and "timeline" in table.stdout and "–" in table.stdout
    assert (tmp_path / "out.mp4").stat().st_size > 0

    result = run("eval", clips, "--model", tmp_path / "v", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-4)

    # truncated: classified from what decodes, a one-line warning, exit 0
    import numpy as np
    from conftest import moving_square, write_clip

    full = write_clip(tmp_path / "long.avi", sum((moving_square(1, 6, np.random.default_rng(1)) for _ in range(10)), []))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    result = run("video", cut, "--model", tmp_path / "v")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "cut.avi: truncated: read" in warning[0] and "of 60 frames" in warning[0]

    # bad inputs
    assert_one_line_error(run("video", tmp_path / "missing.mp4", "--model", tmp_path / "v"), "missing.mp4", "no such file")
    assert_one_line_error(run("video", write(tmp_path / "empty.mp4", b""), "--model", tmp_path / "v"), "empty.mp4", "empty file")
    assert_one_line_error(run("video", write(tmp_path / "text.mp4", b"not a video" * 50), "--model", tmp_path / "v"), "text.mp4", "not a video")
    assert_one_line_error(run("video", "rtsp://127.0.0.1:9/none", "--model", tmp_path / "v"), "rtsp://127.0.0.1:9/none", "cannot open the stream")
    Image.new("RGB", (8, 8)).save(tmp_path / "frame.png")
    assert_one_line_error(run("predict", tmp_path / "frame.png", "--model", tmp_path / "v"), "frame.png", "no videos among 1 file (the model is a video model)")


def test_image_model_given_to_video(trained_run, clips):
    source = next((clips / "val" / "left").iterdir())
    assert_one_line_error(run("video", source, "--model", trained_run), "an image model, but this command needs a video model")


def test_video_uses_the_bundled_clips_model(tmp_path, monkeypatch):
    from lstmimg.runs import BUNDLED_MODELS
    from lstmimg.sample import sample_data_dir

    if not BUNDLED_MODELS["video"].is_file():
        pytest.skip("bundled clips model not built")
    monkeypatch.chdir(tmp_path)
    hits = 0
    for motion in ("down", "left", "right", "up"):
        source = sorted((sample_data_dir() / "clips" / "val" / motion).iterdir())[0]
        result = run("video", source, "--json")
        assert result.exit_code == 0, result.output
        assert "bundled clips model" in result.stderr
        hits += json.loads(result.stdout)["label"] == motion
    assert hits >= 3


@pytest.mark.parametrize("args, message", [
    (["predict", "x.png", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["predict", "x.png", "--batch-size", "-3"], "--batch-size must be >= 1"),
    (["bench", "--model", "foo"], "unknown model 'foo'"),
    (["bench", "--repeats", "0"], "--repeats must be >= 1"),
    (["video", "clip.mp4", "--stride", "0"], "--stride must be >= 1"),
    (["video", "clip.mp4", "--fps", "0"], "--fps must be > 0"),
])
def test_bad_options_are_one_line(args, message):
    assert_one_line_error(run(*args), message)


def test_decompression_bomb_in_a_training_folder(bars, tmp_path):
    Image.new("1", (15000, 15000)).save(bars / "train" / "vertical" / "bomb.png")
    result = run("train", bars, "--epochs", "1", "--hidden", "8", "--out", tmp_path / "r")
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    assert "bomb.png" in result.stderr and "decompression-bomb" in result.stderr


@pytest.fixture
def user_folder(tmp_path):
    root = tmp_path / "我的 照片"
    rng = np.random.default_rng(0)
    for name, value in (("一 one", 40), ("seven 7", 200)):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(12):
            Image.fromarray((rng.integers(0, 30, (12, 12)) + value).astype(np.uint8)).save(folder / f"IMG {i:03d}.PNG")
        (folder / "._IMG 000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (folder / ".DS_Store").write_bytes(b"Bud1")
    return root


def test_user_names_and_files(user_folder, tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = fit(user_folder, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, val_split=0.25), out=tmp_path / "r")
    assert summary["skipped"] == []
    assert not [w for w in caught if "Glyph" in str(w.message)]
    result = run("predict", user_folder / "一 one", "--model", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.output
    assert '"一 one"' in result.stdout or '"seven 7"' in result.stdout
    assert "\\u" not in result.stdout


def test_predict_with_an_image_model_skips_videos_with_a_line_each(trained_run, bars, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", moving_square(1, 6, np.random.default_rng(0)))
    assert_one_line_error(run("predict", clip, "--model", trained_run), "clip.mp4", "no images among 1 file (the model is an image model)")
    image = next((bars / "val" / "vertical").iterdir())
    result = run("predict", image, clip, "--model", trained_run, "--jsonl", tmp_path / "r.jsonl")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in (tmp_path / "r.jsonl").read_text().splitlines()] == [str(image)]
    assert f"skipped {clip}: a video; the model is an image model" in result.stderr and "skipped 1 not images" in result.stderr


def test_a_signal_wrapped_by_the_import_machinery_still_exits_as_a_signal():
    """SIGTERM inside a library's import (matplotlib's __set_name__ wraps it in RuntimeError) printed a traceback."""
    import typer

    from lstmimg.cli.base import run_guarded
    from lstmimg.errors import Terminated

    class Descriptor:
        def __set_name__(self, owner, name):
            raise Terminated

    def work():
        class Deprecated:  # what an import does while the signal lands
            attribute = Descriptor()

    with pytest.raises(typer.Exit) as stopped:
        run_guarded(work)
    assert stopped.value.exit_code == 143


def test_train_lines_break_between_phrases_at_80_columns():
    """Issue 31: at 80 columns train's first line broke inside "1000 val / images"."""
    import io

    from rich.console import Console

    from lstmimg.cli.render import TrainDisplay, phrases

    assert phrases(["aa", "bbb", "cc"], 7) == "aa  bbb\n  cc"
    assert phrases(["[bold]aaaa[/]", "bb"], 8) == "[bold]aaaa[/]  bb"  # markup takes no room
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None)
    display = TrainDisplay(console, console)
    display.callback("start", {"epochs": 30, "kind": "image", "img_size": (28, 28), "run_dir": "runs/train/[exp] 3", "device": "cpu",
             "params": 613354, "train_size": 4000, "loading": "in memory", "val_size": 1000, "classes": [str(i) for i in range(10)], "channels": 1, "skipped": []})
    display.callback("epoch", {"epoch": 12, "train_loss": 0.1234, "train_acc": 0.9876, "val_loss": 0.2345, "val_acc": 0.9765, "samples_per_s": 1086, "seconds": 4.0, "best": True})
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    assert any("4000 train (in memory) / 1000 val images" in line for line in lines)
    assert lines[0].startswith("run runs/train/[exp] 3  device cpu")  # brackets in the name are text
    assert any("val loss 0.2345 acc 0.9765" in line for line in lines) and any("1086 img/s  4.0s  best" in line for line in lines)
