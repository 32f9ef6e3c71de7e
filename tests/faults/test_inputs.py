"""Bad options, bad paths, hostile file names and a full disk, command by command: one line, exit 1, no
output touched (issue 29, items 4, 18-23, 25, and the fault suite)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import IMAGE_MODEL, VIDEO_MODEL, assert_one_line_error, moving_square, run_cli, write_class_folders, write_clip
from PIL import Image

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def data(tmp_path):
    return write_class_folders(tmp_path / "data", 6, seed=2, classes=("0", "1"))


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "clip.avi", moving_square(1, 16, np.random.default_rng(0), size=32, speed=1))


@pytest.mark.parametrize("device", ["foo", "cuda:x", "cuda:0", "cuda"])
@pytest.mark.parametrize("command", ["predict", "video", "eval", "explain", "train"])
def test_a_device_that_is_not_here_is_one_line_in_every_command(tmp_path, data, clip, command, device):
    """Item 18: a Python traceback in predict, video, eval and explain."""
    image = next(data.rglob("*.png"))
    args = {"predict": ("predict", image, "--model", IMAGE_MODEL), "video": ("video", clip, "--model", VIDEO_MODEL),
            "eval": ("eval", data, "--model", IMAGE_MODEL), "explain": ("explain", image, "--model", IMAGE_MODEL),
            "train": ("train", data, "--epochs", "1", "--out", tmp_path / "run")}[command]
    result = run_cli(*args, "--device", device)
    assert_one_line_error(result, f"--device {device!r}" if device in ("foo", "cuda:x") else f"--device {device}: no CUDA GPU is available here")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("opset", ["0", "5", "99"])
def test_an_opset_the_exporter_cannot_write_is_refused_before_exporting(tmp_path, opset):
    """Item 19: tracebacks, or a file that claimed opset 99 and held 18, or one ONNX Runtime cannot load."""
    result = run_cli("export", IMAGE_MODEL, "--out", tmp_path / "m.onnx", "--opset", opset, "--no-verify")
    assert_one_line_error(result, f"--opset {opset}: the installed exporter writes opsets 7 to")
    assert not list(tmp_path.iterdir())


def test_export_reports_the_opset_in_the_file(tmp_path):
    result = run_cli("export", VIDEO_MODEL, "--out", tmp_path / "m.onnx", "--opset", "17", "--no-verify")
    assert result.exit_code == 0, result.output
    import onnx

    written = {o.domain: o.version for o in onnx.load(str(tmp_path / "m.onnx")).opset_import}
    assert written.get("", written.get("ai.onnx")) == 17 and "opset 17" in result.stdout


def test_damaged_run_files_are_listed_as_broken_and_the_rest_still_listed(tmp_path):
    """Item 20: a TypeError on a short metrics.csv row, an AttributeError on a config whose model is a string."""
    runs = tmp_path / "runs"
    for name, config, metrics in (("a", {"model": "cnn_lstm", "train": {}}, None), ("b", {"model": {"name": "x"}, "train": {"epochs": 3}}, "epoch,val_acc,seconds\n1,0.5\n"),
                                  ("c", {"model": {"name": "y"}, "train": {"epochs": 3}}, "epoch,val_acc,seconds\n1,0.5,2\n")):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text(json.dumps(config))
        if metrics:
            (runs / name / "metrics.csv").write_text(metrics)
    (runs / "d").mkdir()
    (runs / "d" / "config.json").write_text(json.dumps({"model": {"name": "z"}, "train": {"epochs": "three"}}))
    result = run_cli("runs", runs, "--json")
    assert result.exit_code == 0, result.output
    status = {r["name"]: r["status"] for r in json.loads(result.stdout)}
    assert status == {"a": "broken", "b": "broken", "c": "interrupted", "d": "broken"}


def test_unfreeze_after_without_freeze_backbone_leaves_no_run_folder(tmp_path, data):
    """Item 21: refused only after the run folder was made and the data decoded."""
    result = run_cli("train", data, "--unfreeze-after", "2", "--out", tmp_path / "run")
    assert_one_line_error(result, "--unfreeze-after needs --freeze-backbone")
    assert not (tmp_path / "run").exists()


def test_explain_gives_inputs_that_differ_only_in_extension_a_picture_each(tmp_path, data):
    """Item 4: `explain a/x.png a/x.jpg --out pics` wrote one picture for the two."""
    png = next(data.rglob("*.png"))
    jpg = png.with_suffix(".jpg")
    Image.open(png).convert("RGB").save(jpg)
    result = run_cli("explain", png, jpg, "--out", tmp_path / "pics", "--model", IMAGE_MODEL, "--json")
    assert result.exit_code == 0, result.output
    pictures = [r["picture"] for r in json.loads(result.stdout)]
    assert len(set(pictures)) == 2 and all((tmp_path / "pics" / p).exists() or __import__("pathlib").Path(p).exists() for p in pictures)


HOSTILE = ["a[1].png", "star*.png", "q?.png", "with space.png", "[bold]markup[bold].png", "<b>tag<b>.png", "-dash.png"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_names_are_classified_and_reported_as_they_are(tmp_path, name):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((12, 12), 200, np.uint8), mode="L").save(folder / name)
    (folder / f"bad {name}").write_bytes(b"not an image")
    result = run_cli("predict", folder, "--jsonl", tmp_path / f"{name}.jsonl", "--model", IMAGE_MODEL, "--workers", "0")
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows if "label" in r] == [str(folder / name)]
    assert [r["path"] for r in rows if "error" in r] == [str(folder / f"bad {name}")]  # an error row: the file names every input
    assert f"error: {folder / ('bad ' + name)}: not an image Pillow can read" in result.stderr  # markup printed as text
    assert not list(tmp_path.glob(".*.part*"))


def test_a_file_name_that_is_not_utf8_is_classified(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    raw = bytes(folder) + b"/caf\xe9.png"
    Image.fromarray(np.full((12, 12), 200, np.uint8), mode="L").save(raw.decode("utf-8", "surrogateescape"))
    result = subprocess.run([sys.executable, "-m", "lstmimg", "predict", str(folder), "--jsonl", str(tmp_path / "r.jsonl"), "--model", str(IMAGE_MODEL), "--workers", "0"],
                            capture_output=True, timeout=90)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len((tmp_path / "r.jsonl").read_text(errors="replace").splitlines()) == 1 and b"Traceback" not in result.stderr


BAD_OPTIONS = [
    ("predict", ("predict", "IMG", "--topk", "0"), "--topk must be >= 1, got 0"),
    ("predict", ("predict", "IMG", "--jsonl", "nofolder/r.jsonl"), "no folder nofolder to write --jsonl into"),
    ("predict", ("predict", "missing.png"), "missing.png: no such file or folder"),
    ("predict", ("predict", "http://127.0.0.1:9/x.mp4"), "http://127.0.0.1:9/x.mp4: a URL, not a file or folder (`lstmimg video` reads streams and URLs)"),
    ("video", ("video", "CLIP", "--stride", "0"), "--stride must be >= 1, got 0"),
    ("video", ("video", "CLIP", "--csv", "nofolder/w.csv"), "no folder nofolder to write --csv into"),
    ("video", ("video", "missing.avi"), "missing.avi: no such file"),
    # an output that is another output, or an input (written over, --overwrite or not: the clip was replaced by a CSV)
    ("video", ("video", "CLIP", "--csv", "CLIP", "--overwrite"), "is also an input; --csv would write over it: give another file"),
    ("video", ("video", "CLIP", "--csv", "w.csv", "--jsonl", "w.csv"), "w.csv: named by both --csv and --jsonl; give each its own file"),
    ("predict", ("predict", "IMG", "--jsonl", "IMG", "--overwrite", "--model", "IMAGE_MODEL"), "is also an input; --jsonl would write over it"),
    ("predict", ("predict", "IMG", "--jsonl", "r.jsonl", "--csv", "r.jsonl", "--model", "IMAGE_MODEL"), "r.jsonl: named by both --jsonl and --csv"),
    ("eval", ("eval", "nodata"), "nodata"),
    ("eval", ("eval", "DATA", "--out", "IMG"), "exists and is not a folder"),
    ("explain", ("explain", "missing.png"), "missing.png"),
    ("explain", ("explain", "IMG", "--target", "nope", "--model", "IMAGE_MODEL"), "nope"),
    ("export", ("export", "missing.pt"), "missing.pt"),
    ("export", ("export", "IMAGE_MODEL", "--format", "tflite"), "--format 'tflite' is not one of: onnx"),
    ("train", ("train", "DATA", "--epochs", "0", "--out", "run"), "--epochs must be >= 1, got 0"),
    ("train", ("train", "nodata", "--out", "run"), "nodata: no such folder"),
    # a folder no one can create, root included (root passes every permission check): one line, not mkdir's traceback
    ("explain", ("explain", "IMG", "--model", "IMAGE_MODEL", "--out", "/proc/lstmimg-out"), "/proc/lstmimg-out: cannot create this folder (--out)"),
    ("check", ("check", "DATA", "--out", "/proc/lstmimg-out"), "/proc/lstmimg-out: cannot create this folder (--out)"),
    ("eval", ("eval", "DATA", "--model", "IMAGE_MODEL", "--out", "/proc/lstmimg-out"), "/proc/lstmimg-out: cannot create"),
    ("predict", ("predict", "IMG", "--model", "IMAGE_MODEL", "--jsonl", "/proc/lstmimg.jsonl"), "/proc/lstmimg.jsonl: cannot write into /proc (--jsonl)"),
]


@pytest.mark.parametrize("command,args,fragment", BAD_OPTIONS, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_OPTIONS)])
def test_a_bad_option_or_path_is_one_line_and_touches_nothing(tmp_path, data, clip, monkeypatch, command, args, fragment):
    image = next(data.rglob("*.png"))
    swap = {"IMG": image, "CLIP": clip, "DATA": data, "IMAGE_MODEL": IMAGE_MODEL}
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = run_cli(*[swap.get(a, a) for a in args])
    assert_one_line_error(result, fragment)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def mount_tiny(path, size="2m") -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("command", ["predict", "video", "eval", "export"])
def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_output(tmp_path, data, clip, command):
    disk = tmp_path / "disk"
    if not mount_tiny(disk, "256k"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        with open(disk / "filler", "wb", buffering=0) as f:  # the disk full to the last byte
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        many = write_class_folders(tmp_path / "many", 300, seed=1, classes=("0", "1"))
        args = {"predict": ("predict", many, "--jsonl", disk / "r.jsonl", "--model", IMAGE_MODEL, "--workers", "0"),
                "video": ("video", clip, "--csv", disk / "w.csv", "--save", disk / "s.avi", "--model", VIDEO_MODEL),
                "eval": ("eval", data, "--out", disk / "report", "--model", IMAGE_MODEL),
                "export": ("export", IMAGE_MODEL, "--out", disk / "m.onnx", "--no-verify")}[command]
        result = run_cli(*args)
        assert_one_line_error(result, str(disk))
        assert "no space left on device" in result.stderr.lower() or "cannot write" in result.stderr
        leftovers = [p.name for p in disk.rglob("*") if p.name != "filler" and (p.name.startswith(".") or p.suffix in (".tmp", ".partial"))]
        assert leftovers == []
    finally:
        subprocess.run(["umount", str(disk)])


def test_predict_reads_only_the_frames_its_clips_use(tmp_path, monkeypatch):
    """Item 22: predict and eval decoded each whole video into memory before taking their clips."""
    import lstmimg.data.video_io as video_io
    from lstmimg.data.inputs import VideoInputs
    from lstmimg.engine.infer.loading import load_checkpoint

    rng = np.random.default_rng(1)
    long = write_clip(tmp_path / "long.avi", [f for i in range(40) for f in moving_square(1 if i % 2 else -1, 8, rng, size=32)])  # 320 frames
    ckpt = load_checkpoint(VIDEO_MODEL)
    whole = VideoInputs([long], ckpt.config.img_size, 8, 2, 3, ckpt.config.motion)[0]

    def no_whole_decoding(*a, **k):
        raise AssertionError("the whole video was decoded")

    monkeypatch.setattr(video_io, "read_video", no_whole_decoding)
    sparse = VideoInputs([long], ckpt.config.img_size, 8, 2, 3, ckpt.config.motion)[0]
    assert sparse.error is None and sparse.frames == 320 and sparse.x.shape == whole.x.shape and tuple(sparse.x.shape[:2]) == (3, 8)
    assert int((sparse.x.int() - whole.x.int()).abs().max()) == 0


def test_the_gallery_strip_of_a_video_of_unknown_length_is_small(tmp_path, monkeypatch):
    """Item 23: with no frame count, the gallery decoded the whole video at full resolution (2 GB for 16 s of 720p)."""
    import lstmimg.data.video_io as video_io
    from lstmimg.engine.review.mistakes import KEPT, STRIP, thumbnail

    big = [np.full((480, 640), i % 250, np.uint8) for i in range(3 * KEPT + 5)]
    path = write_clip(tmp_path / "big.avi", big)

    def no_count(*a, **k):
        raise video_io.LstmimgError(f"{path}: no frame count in its header")

    monkeypatch.setattr(video_io, "read_frames", no_count)
    kept = []
    real = video_io.FrameReader.__iter__

    def counting(self):
        for frame in real(self):
            kept.append(frame.rgb.shape)
            yield frame

    monkeypatch.setattr(video_io.FrameReader, "__iter__", counting)
    strip = thumbnail("video", path)
    assert strip.shape[0] == STRIP and max(strip.shape[1:3]) <= 256 and all(max(s[:2]) <= 256 for s in kept)
    assert [int(f.mean()) for f in strip][0] == 0 and int(strip[-1].mean()) > int(strip[1].mean())  # spread over the whole video


def test_a_one_file_predict_does_not_import_pydantic(tmp_path):
    """Item 25: typer 0.29 builds a pydantic adapter for every option of the command it runs: 0.18 s of a
    one-image predict that should cost little more than importing torch."""
    image = tmp_path / "one.png"
    Image.fromarray(np.full((12, 12), 200, np.uint8), mode="L").save(image)
    code = f"import sys, runpy; sys.argv = ['lstmimg', 'predict', {str(image)!r}, '--model', {str(IMAGE_MODEL)!r}]\ntry:\n    runpy.run_module('lstmimg', run_name='__main__')\nexcept SystemExit:\n    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
