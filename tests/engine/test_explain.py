"""`lstmimg explain`: the explanation must point where the class is decided (a test that can fail: a
model trained on shuffled labels does not pass it), the anytime curve ends at the prediction, and the
command's outputs."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, assert_one_line_error, run_cli, write_clip
from PIL import Image

from lstmimg import ModelConfig, TrainConfig, fit

BLOCK = (slice(10, 22), slice(10, 22))  # the 12x12 block of a 32x32 image that decides the class
DECISIVE = range(8, 14)  # frames 8-13 of 20 decide a video's class


def bar(img: np.ndarray, y: int, x: int, horizontal: bool, value: int = 255) -> None:
    """A 6x2 bar (or 2x6) at (y, x)."""
    h, w = (2, 6) if horizontal else (6, 2)
    img[y : y + h, x : x + w] = value


def block_images(root, per_class: int, seed: int, shuffle: bool = False) -> None:
    """32x32 images: a horizontal or vertical bar inside the block decides the class; bars of both
    orientations lie outside it as distractors."""
    rng = np.random.default_rng(seed)
    for cls in ("horizontal", "vertical"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(2 * per_class):
        cls = i % 2
        img = rng.integers(0, 40, (32, 32)).astype(np.uint8)
        for _ in range(3):  # distractors: in the margins, above/below or left/right of the block
            y, x = (int(rng.integers(0, 3)), int(rng.integers(0, 26))) if rng.random() < 0.5 else (int(rng.integers(0, 26)), int(rng.integers(0, 3)))
            y, x = (y + 24, x) if rng.random() < 0.5 and y < 3 else (y, x + 24 if x < 3 and rng.random() < 0.5 else x)
            bar(img, min(y, 26), min(x, 26), bool(rng.integers(0, 2)))
        bar(img, int(rng.integers(11, 15)), int(rng.integers(11, 15)), cls == 0)
        label = int(rng.integers(0, 2)) if shuffle else cls
        Image.fromarray(img).save(root / ("horizontal", "vertical")[label] / f"{i:03d}.png")


def block_videos(root, per_class: int, seed: int, shuffle: bool = False) -> None:
    """20 frames of 16x16: in frames 8-13 a square sits at the top (class up) or the bottom (down);
    in the other frames it sits at either, at random."""
    rng = np.random.default_rng(seed)
    for cls in ("down", "up"):
        (root / cls).mkdir(parents=True, exist_ok=True)
    for i in range(2 * per_class):
        cls = i % 2
        frames = []
        for t in range(20):
            img = rng.integers(0, 30, (16, 16)).astype(np.uint8)
            top = (cls == 1) if t in DECISIVE else bool(rng.integers(0, 2))
            y, x = (1 if top else 11), int(rng.integers(2, 11))
            img[y : y + 4, x : x + 4] = 230
            frames.append(img)
        label = int(rng.integers(0, 2)) if shuffle else cls
        write_clip(root / ("down", "up")[label] / f"{i:03d}.avi", frames)


def block_share(heatmap) -> float:
    heat = np.array(heatmap)
    return float(heat[BLOCK].sum() / max(heat.sum(), 1e-12))


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_images")
    runs = {}
    for name, shuffle in (("real", False), ("shuffled", True)):
        block_images(root / name / "train", 60, seed=1, shuffle=shuffle)
        block_images(root / name / "val", 15, seed=2)  # val is always truly labelled
        runs[name] = fit(root / name, ModelConfig(name="cnn_lstm", **TINY_MODEL), TrainConfig(epochs=12, batch_size=16, seed=0), out=root / f"run_{name}")["run_dir"]
    return root, runs


def test_image_heatmaps_put_their_weight_on_the_deciding_block(image_runs):
    from lstmimg import explain

    root, runs = image_runs
    val = sorted((root / "real" / "val").rglob("*.png"))
    shares = {}
    for name, run in runs.items():
        results = explain(val, run)
        right = [r for r, p in zip(results, val) if r["label"] == p.parent.name]
        shares[name] = np.mean([block_share(r["heatmap"]) for r in right]) if right else 0.0
        for r in results:
            heat = np.array(r["heatmap"])
            assert heat.shape == (32, 32) and heat.min() >= 0
            assert r["anytime"][-1]["prob"] == pytest.approx(r["prob"] if r["target"] == r["label"] else r["anytime"][-1]["prob"], abs=1e-5)
    print(f"share of the heatmap in the deciding block: {shares}")
    assert shares["real"] >= 0.5, shares  # the block is 14% of the image
    assert shares["shuffled"] < 0.5, shares


def test_anytime_curve_ends_at_the_prediction_and_steps_cover_the_scan(image_runs):
    from lstmimg import explain, load_checkpoint
    from lstmimg.engine.infer.inference import Predictor

    root, runs = image_runs
    image = sorted((root / "real" / "val" / "vertical").iterdir())[0]
    ckpt = load_checkpoint(runs["real"])
    [r] = explain([image], ckpt, target="horizontal")
    x = torch.from_numpy(np.array(Image.open(image)))[None, None]
    full = Predictor.from_checkpoint(ckpt).probs(x)[0, ckpt.classes.index("horizontal")]
    assert r["target"] == "horizontal" and r["anytime"][-1]["prob"] == pytest.approx(float(full), abs=1e-5)
    assert [s["step"] for s in r["steps"]] == list(range(1, len(r["anytime"]) + 1))
    assert r["steps"][0]["box"][0] == 0 and r["steps"][-1]["box"][2] == 32  # rows of the feature map, top to bottom


def test_region_lstm_steps_follow_its_scan(bars, tmp_path):
    from lstmimg import explain

    fit(bars, ModelConfig(name="region_lstm", scan="snake", patch=4, **TINY_MODEL), TrainConfig(epochs=1, batch_size=16), out=tmp_path / "r")
    [r] = explain([sorted((bars / "val" / "vertical").iterdir())[0]], tmp_path / "r")
    boxes = [s["box"] for s in r["steps"]]
    assert len(boxes) == 9 and boxes[:4] == [[0, 0, 4, 4], [0, 4, 4, 8], [0, 8, 4, 12], [4, 8, 8, 12]]  # the snake turns at the edge


@pytest.mark.long  # beyond CI's budget: python -m pytest -m long
def test_video_frame_importance_falls_on_the_deciding_frames(tmp_path_factory):
    """Only frames 8-13 of 20 decide: >= 60% of the importance must fall there for a model trained on
    the true labels (not for one trained on shuffled labels). The clip's mean frame as the occlusion
    baseline is the more faithful of the two (the frame before a span holds the evidence of a span
    inside the deciding frames, so those spans look unimportant)."""
    from lstmimg import explain

    root = tmp_path_factory.mktemp("explain_videos")
    train = TrainConfig(epochs=15, batch_size=8, clip_len=20, frame_stride=1, val_clips=1, lr=1e-2, augment=False, seed=0)
    shares = {}
    for name, shuffle in (("real", False), ("shuffled", True)):
        block_videos(root / name / "train", 24, seed=3, shuffle=shuffle)
        block_videos(root / name / "val", 8, seed=4)
        run = fit(root / name, ModelConfig(name="lrcn", **TINY_MODEL), train, out=root / f"run_{name}")["run_dir"]
        val = sorted((root / name / "val").rglob("*.avi"))
        for baseline in ("mean", "hold"):
            results = explain(val, run, frame_baseline=baseline)
            right = [r for r, p in zip(results, val) if r["label"] == p.parent.name]
            share = [sum(f["importance"] for f in r["frames"] if f["index"] in DECISIVE) / max(1e-12, sum(f["importance"] for f in r["frames"])) for r in right]
            shares[name, baseline] = float(np.mean(share)) if share else 0.0
            assert all(len(r["frames"]) == 20 and len(r["probs"]) == 20 for r in results)
            assert all(r["frames"][-1]["prob"] == pytest.approx(r["prob"], abs=1e-5) for r in results if r["target"] == r["label"])
    print(f"share of importance on frames 8-13: {shares}")
    assert shares["real", "mean"] >= 0.6, shares
    assert shares["shuffled", "mean"] < 0.6, shares
    assert shares["real", "mean"] > shares["real", "hold"], shares


def test_explain_command_json_pictures_and_bad_input(trained_run, tmp_path, clips):
    from pathlib import Path

    val = Path(json.loads((trained_run / "config.json").read_text())["data"]) / "val" / "vertical"
    result = run_cli("explain", sorted(val.iterdir())[0], "--model", trained_run, "--json", "--out", tmp_path / "pics")
    assert result.exit_code == 0, result.output
    [r] = json.loads(result.stdout)
    assert set(r) >= {"path", "label", "prob", "target", "method", "heatmap", "steps", "anytime", "picture"}
    assert r["true"] == "vertical"  # its folder is a class of the model
    assert Path(r["picture"]).parent == tmp_path / "pics" and Path(r["picture"]).read_bytes()[:4] == b"\x89PNG"
    assert_one_line_error(run_cli("explain", tmp_path / "missing.png", "--model", trained_run), "missing.png: no such file")
    assert_one_line_error(run_cli("explain", val, "--model", trained_run, "--target", "circle"), "--target 'circle' is not a class")
    video = sorted((clips / "val" / "left").iterdir())[0]
    assert_one_line_error(run_cli("explain", video, "--model", trained_run), str(video))


def test_video_plot_draws_the_timeline(tmp_path):
    from lstmimg.sample import sample_data_dir

    clip = sorted((sample_data_dir() / "clips" / "val" / "up").iterdir())[0]
    result = run_cli("video", clip, "--window", "2", "--plot", tmp_path / "timeline.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_an_output_path_that_is_a_file_fails_before_the_work(trained_run, tmp_path, bars, monkeypatch):
    """explain --out names a folder: an existing file there is one line, before any image is explained."""
    import lstmimg.engine.review.explanations as explanations

    taken = tmp_path / "result.png"
    taken.write_bytes(b"the user's picture")
    monkeypatch.setattr(explanations, "_image", lambda *a, **k: pytest.fail("explained before checking --out"))
    image = next((bars / "val" / "vertical").iterdir())
    assert_one_line_error(run_cli("explain", image, "--model", trained_run, "--out", taken), str(taken), "is a file; --out takes a folder")
    assert taken.read_bytes() == b"the user's picture"


def test_explaining_a_long_video_decodes_only_the_frames_it_explains(tmp_path, frame_readers):
    """explain reads the first MAX_FRAMES sampled frames of a video, not the whole file: memory and
    time do not grow with the video's length."""
    from lstmimg.engine.review.explanations import MAX_FRAMES, explain
    from lstmimg.runs import BUNDLED_MODELS

    rng = np.random.default_rng(0)
    long_clip = write_clip(tmp_path / "long.avi", [rng.integers(0, 255, (32, 32), dtype=np.uint8) for _ in range(1500)])
    (result,) = explain([long_clip], BUNDLED_MODELS["video"])
    assert len(result["frames"]) == MAX_FRAMES
    assert sum(r.frames_decoded for r in frame_readers) < 3 * MAX_FRAMES  # the frames used, and the few the decoder ran ahead


def test_inputs_with_the_same_name_get_pictures_of_their_own(trained_run, bars, tmp_path):
    """Two folders holding the same file names: every input gets its own picture, none replaces another."""
    import shutil
    from pathlib import Path

    from lstmimg import explain

    names = sorted(p.name for p in (bars / "val" / "vertical").iterdir())[:2]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        for name in names:
            shutil.copy(bars / "val" / ("vertical" if folder == "a" else "horizontal") / name, tmp_path / folder / name)
    inputs = [tmp_path / folder / name for folder in ("a", "b") for name in names]
    results = explain(inputs, trained_run, out=tmp_path / "pics")
    pictures = [Path(r["picture"]) for r in results]
    assert len(set(pictures)) == 4 and all(p.is_file() for p in pictures)
    assert pictures[0] == tmp_path / "pics" / "a" / f"{Path(names[0]).stem}.explain.png"
    (single,) = explain(inputs[:1], trained_run, out=tmp_path / "one")
    assert Path(single["picture"]) == tmp_path / "one" / f"{Path(names[0]).stem}.explain.png"  # one folder: no sub-folder
