"""Input size and training length fitted to the data, unless the user said otherwise."""

import json

import numpy as np
import pytest
from conftest import TINY_MODEL, run_cli
from PIL import Image

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.engine.train.plan import MIN_STEPS, auto_batch, capped_size, plan_training


@pytest.mark.parametrize("samples, batch", [(40, 16), (160, 16), (320, 32), (840, 64), (4000, 64)])
def test_the_batch_shrinks_with_the_set(samples, batch):
    assert auto_batch(samples) == batch


def test_small_image_sets_get_enough_steps_and_large_ones_keep_the_defaults():
    small = plan_training(TrainConfig(), "image", 160)
    assert small.batch_size == 16 and small.epochs * (160 // 16) >= MIN_STEPS
    assert small.reasons[0] == f"160 images: batch 16, {small.epochs} epochs, 10 steps/epoch (at least {MIN_STEPS} steps; options given win)"
    assert small.reasons[1].startswith(f"up to {small.epochs} epochs: stop after")  # the stopping rule
    digits = plan_training(TrainConfig(), "image", 4000)  # the bundled digits: 62 steps x 15 epochs already
    assert (digits.batch_size, digits.epochs, digits.clips_per_video) == (64, 15, 1)


def test_small_video_sets_draw_several_clips_per_video():
    plan = plan_training(TrainConfig(), "video", 160)
    assert plan.epochs == 15 and plan.batch_size == 16 and plan.clips_per_video >= 2
    assert plan.epochs * (160 * plan.clips_per_video // 16) >= MIN_STEPS


def test_options_given_win():
    plan = plan_training(TrainConfig(epochs=3, batch_size=8), "image", 160)
    assert (plan.batch_size, plan.epochs, plan.reasons) == (8, 3, [])
    plan = plan_training(TrainConfig(clips_per_video=1, epochs=2), "video", 160)
    assert (plan.clips_per_video, plan.epochs) == (1, 2)


def test_processes_share_the_global_batch():
    from lstmimg.engine.train.batches import steps_per_epoch
    from lstmimg.engine.train.distributed import Dist

    assert steps_per_epoch(4000, 64, Dist(0, 2, 0)) == steps_per_epoch(4000, 64, Dist()) == 63


def test_images_are_capped_keeping_their_aspect():
    assert capped_size((480, 640)) == (96, 128)
    assert capped_size((3000, 4000)) == (96, 128)
    assert capped_size((28, 28)) == (28, 28)


def test_default_side_is_the_cap_from_scratch_and_the_weights_size_when_pretrained():
    from lstmimg.engine.train.plan import MAX_IMAGE_SIDE, MAX_VIDEO_SIDE, PRETRAINED_VIDEO_SIDE, input_side

    assert input_side("image") == (MAX_IMAGE_SIDE, f"longer side at most {MAX_IMAGE_SIDE}")
    assert input_side("video", ModelConfig(name="lrcn")) == (MAX_VIDEO_SIDE, f"longer side at most {MAX_VIDEO_SIDE}")
    pretrained = ModelConfig(backbone="resnet18", pretrained=True)
    assert input_side("image", pretrained) == (224, "resnet18's weights were trained at 224")  # the weights' transforms' crop size
    assert input_side("image", pretrained.replace(backbone="efficientnet_b3")) == (300, "efficientnet_b3's weights were trained at 300")
    assert input_side("video", pretrained)[0] == PRETRAINED_VIDEO_SIDE < 224
    assert input_side("image", ModelConfig(backbone="resnet18"))[0] == MAX_IMAGE_SIDE  # random weights: the cap


def test_large_video_frames_are_shrunk_to_the_video_cap_and_the_run_says_so(tmp_path):
    from conftest import write_clip

    from lstmimg.data.dataset import describe
    from lstmimg.engine.train.plan import plan_input

    def planned(cfg):
        data = describe(tmp_path / "v", cfg)
        return data, plan_input(data, ModelConfig(name="lrcn"), cfg)[1]

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        for i in range(2):
            (tmp_path / "v" / name).mkdir(parents=True, exist_ok=True)
            write_clip(tmp_path / "v" / name / f"{i}.avi", [rng.integers(0, 255, (240, 320), dtype=np.uint8) for _ in range(3)])
    data, notes = planned(TrainConfig())
    assert data.size == (84, 112)
    assert notes == ["videos are 240x320: trained at 84x112 (longer side at most 112; --img-size to change)"]
    data, notes = planned(TrainConfig(img_size=(60, 80)))
    assert data.size == (60, 80) and notes == []


def test_a_run_says_what_was_chosen_and_records_it(tmp_path):
    rng = np.random.default_rng(0)
    for name, value in (("dark", 40), ("light", 200)):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(12):
            Image.fromarray((rng.integers(0, 40, (240, 320, 3)) + value).astype(np.uint8)).save(tmp_path / "photos" / name / f"{i}.jpg")
    result = run_cli("train", tmp_path / "photos", "--epochs", "1", "--hidden", "8", "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "images are 240x320: trained at 96x128 (longer side at most 128; --img-size to change)" in result.stderr
    assert "22 images: batch 16, 2 steps/epoch" in result.stderr  # the batch was chosen; --epochs was given
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["batch_size"] == 16 and config["train"]["epochs"] == 1 and config["model"]["img_size"] == [96, 128]


def test_a_small_video_run_draws_several_clips_per_video(clips, tmp_path):
    events = {}
    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(epochs=1, clip_len=5, frame_stride=1), out=tmp_path / "v",
        callback=lambda e, i: events.setdefault(e, i))
    config = json.loads((tmp_path / "v" / "config.json").read_text())["train"]
    assert config["clips_per_video"] == 1 and config["batch_size"] == 16  # --epochs given: the clips stay 1
    assert events["start"]["steps"] == 2  # 28 clips in batches of 16: 16 and 12


def test_several_clips_per_video_read_from_disk_are_the_clips_held_in_memory(clips, tmp_path):
    import csv

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [{k: r[k] for k in ("train_loss", "train_acc", "val_acc")} for r in csv.DictReader(f)]

    train = {"epochs": 2, "batch_size": 8, "clip_len": 5, "frame_stride": 1, "clips_per_video": 3}
    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**train), out=tmp_path / "memory")
    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**train, load="disk", workers=0), out=tmp_path / "disk")
    assert rows(tmp_path / "disk") == rows(tmp_path / "memory")
    assert json.loads((tmp_path / "memory" / "summary.json").read_text())["train_samples"] == 28  # videos, not clips


def test_pretrained_weights_bring_small_images_up_to_their_size(tmp_path):
    """--pretrained reads images at the size the weights were trained at, small ones enlarged: 8x8
    images train at 224x224 with resnet18's weights, and the run says so; from scratch they stay 8x8."""
    from lstmimg.data.dataset import describe
    from lstmimg.engine.train.plan import plan_input

    for name in ("a", "b"):
        (tmp_path / "small" / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(tmp_path / "small" / name / f"{i}.png")
    cfg = TrainConfig()
    data = describe(tmp_path / "small", cfg)
    _, notes = plan_input(data, ModelConfig(backbone="resnet18", pretrained=True), cfg)
    assert data.size == (224, 224) and data.channels == 3
    assert notes == ["images are 8x8: trained at 224x224 (resnet18's weights were trained at 224; --img-size to change)"]
    data = describe(tmp_path / "small", cfg)
    assert plan_input(data, ModelConfig(backbone="resnet18"), cfg)[1] == [] and data.size == (8, 8)


def test_videos_well_past_a_clip_get_segment_sampling_and_the_run_says_so(tmp_path):
    """--frame-stride unset: clips of every 2nd frame for videos about a clip's span long, segments when
    the longer videos run past 1.5 spans (23 frames for 8-frame clips); a stride given always wins."""
    from conftest import moving_square, write_clip

    from lstmimg.data import clips as V
    from lstmimg.data.dataset import describe
    from lstmimg.engine.train.plan import CLIP_STRIDE, plan_clips

    rng = np.random.default_rng(0)

    def videos(name, lengths):
        for c, direction in (("left", -1), ("right", 1)):
            for i, n in enumerate(lengths):
                (tmp_path / name / "train" / c).mkdir(parents=True, exist_ok=True)
                write_clip(tmp_path / name / "train" / c / f"{i}.avi", moving_square(direction, n, rng, size=24, speed=0))
        return describe(tmp_path / name, TrainConfig())

    short, long = videos("short", [10, 16, 20, 22]), videos("long", [12, 24, 30, 40])
    assert plan_clips(TrainConfig(), short) == (CLIP_STRIDE, None)
    stride, note = plan_clips(TrainConfig(), long)
    assert stride == V.SEGMENTS and note.startswith("videos of 12-40 frames, longer than the 15 a clip at stride 2 spans")
    assert plan_clips(TrainConfig(frame_stride=1), long) == (1, None)
    assert plan_clips(TrainConfig(clip_len=16), long) == (CLIP_STRIDE, None)  # a 16-frame clip spans 31 frames
