"""The mistakes gallery: in every run folder, from `lstmimg eval --out`, for images and videos."""

import json

import torch
from conftest import assert_one_line_error as one_line_error
from conftest import run_cli as run
from PIL import Image

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.engine.review.mistakes import mistakes, write_mistakes

PNG = b"\x89PNG\r\n\x1a\n"


def test_mistakes_are_the_wrong_ones_most_confident_first():
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    labels = torch.tensor([0, 0, 0, 1])
    assert [(i, pred) for i, pred, _ in mistakes(labels, probs)] == [(2, 1), (1, 1), (3, 0)]
    assert mistakes(labels, probs, limit=1)[0][0] == 2


def test_a_run_folder_has_its_gallery(trained_run):
    assert (trained_run / "mistakes.png").read_bytes()[:8] == PNG


def test_the_gallery_shows_each_picture_whole_enlarged_in_block_pixels_keeping_its_shape(tmp_path):
    """Pictures are placed as pixels (not resampled by axes): a 20x10 red and a 10x10 blue picture come out as
    solid blocks of their own colour, their longer side the gallery's box, the red one twice as wide as tall."""
    import numpy as np

    red, blue = tmp_path / "a" / "red.png", tmp_path / "b" / "blue.png"
    for path, size, colour in ((red, (20, 10), (255, 0, 0)), (blue, (10, 10), (0, 0, 255))):
        path.parent.mkdir()
        Image.new("RGB", size, colour).save(path)
    assert write_mistakes("image", [red, blue], torch.tensor([0, 1]), torch.tensor([[0.2, 0.8], [0.7, 0.3]]), ["a", "b"], tmp_path / "m.png") == 2
    pixels = np.asarray(Image.open(tmp_path / "m.png").convert("RGB")).astype(int)
    for colour, (height, width) in (((255, 0, 0), (88, 176)), ((0, 0, 255), (176, 176))):
        ys, xs = np.nonzero((pixels == colour).all(-1))
        assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (height, width)
        assert len(ys) == height * width  # one solid block: nothing drawn over it, no blur at its edges


def test_gallery_of_videos_and_of_files_gone_since(clips, tmp_path):
    videos = sorted(clips.glob("val/*/*"))
    labels = torch.tensor([0] * len(videos))
    probs = torch.tensor([[0.1, 0.9]] * len(videos))  # every one wrong
    videos[0].unlink()  # its file is gone: drawn without frames, named
    assert write_mistakes("video", videos, labels, probs, ["a", "b"], tmp_path / "m.png") == len(videos)
    assert (tmp_path / "m.png").read_bytes()[:8] == PNG
    assert write_mistakes("video", videos, labels, torch.tensor([[0.9, 0.1]] * len(videos)), ["a", "b"], tmp_path / "none.png") == 0
    assert (tmp_path / "none.png").read_bytes()[:8] == PNG


def test_eval_out_writes_the_report_and_refuses_to_replace_it(bars, trained_run, tmp_path):
    Image.new("L", (12, 12), 255).save(bars / "val" / "vertical" / "white.png")  # a sure mistake or not: counted either way
    out = tmp_path / "report"
    result = run("eval", bars, "--model", trained_run, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == 25 and report["mistakes"] == round((1 - report["accuracy"]) * 25)
    for name in ("mistakes.png", "confusion_matrix.png"):
        assert (out / name).read_bytes()[:8] == PNG
    before = (out / "report.json").read_bytes()
    one_line_error(run("eval", bars, "--model", trained_run, "--out", out), "report.json", "exists")
    assert (out / "report.json").read_bytes() == before


def test_a_video_run_has_its_gallery(clips, tmp_path):
    from conftest import TINY_VIDEO_TRAIN

    fit(clips, ModelConfig(name="lrcn", hidden=8, cnn_channels=(4, 8)), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 1}), out=tmp_path / "r")
    assert (tmp_path / "r" / "mistakes.png").read_bytes()[:8] == PNG
