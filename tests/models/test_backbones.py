"""Pretrained torchvision backbones through torchvision's weights API, placed in the hub cache by the
tests (they never download), frozen backbones, and `lstmimg backbones`."""

import time

import pytest
import torch
from conftest import assert_one_line_error, run_cli

BACKBONE = "mobilenet_v3_small"  # the smallest supported backbone: 2.5M parameters


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache, and no downloads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("LSTMIMG_OFFLINE", "1")
    return tmp_path / "torch"


def place_weights(torch_home):
    """A state dict at the path torchvision's weights API reads, with batch-norm statistics no fresh
    network has (so "kept as loaded" can be told from "re-initialised")."""
    import torchvision

    from lstmimg.models.backbones import cache_dir, weights_for

    torch.manual_seed(0)
    net = torchvision.models.get_model(BACKBONE, weights=None)
    state = net.state_dict()
    for key, value in state.items():
        if key.endswith("running_mean"):
            value.uniform_(-0.5, 0.5)
        elif key.endswith("running_var"):
            value.uniform_(0.5, 1.5)
    path = cache_dir() / weights_for(BACKBONE).url.rsplit("/", 1)[1]
    assert str(path).startswith(str(torch_home))
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def test_pretrained_frozen_backbone_trains_and_keeps_every_loaded_tensor(bars, tmp_path, torch_home):
    from lstmimg import load_checkpoint
    from lstmimg.files import load_tensors

    state = place_weights(torch_home)
    result = run_cli("train", bars, "--backbone", BACKBONE, "--pretrained", "--freeze-backbone", "--epochs", "2", "--hidden", "16", "--img-size", "32", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    saved = load_tensors(tmp_path / "r" / "best.pt")
    cnn = {k[len("cnn."):]: v for k, v in saved["state_dict"].items() if k.startswith("cnn.")}
    expected = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    assert cnn.keys() == expected.keys() and all(torch.equal(cnn[k], expected[k]) for k in cnn)  # batch-norm statistics too
    assert saved["normalize"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # the weights' own, not the data's
    ckpt = load_checkpoint(tmp_path / "r")  # grey images were read as RGB, and predict does the same
    assert ckpt.config.in_channels == 3 and ckpt.config.pretrained
    assert run_cli("predict", bars / "val" / "vertical", "--model", tmp_path / "r").exit_code == 0


def test_pretrained_photos_are_trained_at_the_weights_size(tmp_path, torch_home):
    """Photos larger than the weights' 224 are read at 224 on their longer side (not the scratch cap of
    128), the run says why, and the checkpoint records the size (what predict, eval and video read at)."""
    import numpy as np
    from PIL import Image

    from lstmimg import load_checkpoint

    place_weights(torch_home)
    rng = np.random.default_rng(0)
    for name, value in (("dark", 40), ("light", 200)):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray((rng.integers(0, 40, (300, 400, 3)) + value).astype(np.uint8)).save(tmp_path / "photos" / name / f"{i}.jpg")
    result = run_cli("train", tmp_path / "photos", "--backbone", BACKBONE, "--pretrained", "--freeze-backbone", "--epochs", "1", "--hidden", "8", "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert f"images are 300x400: trained at 168x224 ({BACKBONE}'s weights were trained at 224; --img-size to change)" in result.stderr
    assert load_checkpoint(tmp_path / "r").config.img_size == (168, 224)


def test_not_cached_and_offline_is_one_line_at_once(bars, tmp_path, torch_home):
    started = time.perf_counter()
    result = run_cli("train", bars, "--backbone", BACKBONE, "--pretrained", "--out", tmp_path / "r")
    assert time.perf_counter() - started < 30
    assert_one_line_error(result, "mobilenet_v3_small IMAGENET1K_V1 weights are not in the cache", "https://download.pytorch.org/models/",
                          str(torch_home / "hub" / "checkpoints"), "--backbone-weights FILE")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    (["--freeze-backbone"], "--freeze-backbone needs --backbone NAME"),
    (["--pretrained"], "--pretrained needs --backbone NAME"),
    (["--backbone", BACKBONE, "--pretrained", "--weights", "IMAGENET9K"], "--weights 'IMAGENET9K' is not one of mobilenet_v3_small's: IMAGENET1K_V1"),
    (["--backbone", "lenet", "--pretrained"], "unknown torchvision backbone 'lenet'"),
])
def test_bad_backbone_options(bars, tmp_path, torch_home, args, message):
    assert_one_line_error(run_cli("train", bars, *args, "--out", tmp_path / "r"), message)


def test_backbones_lists_figures_and_what_is_cached(torch_home):
    before = run_cli("backbones")
    assert before.exit_code == 0, before.output
    row = next(line for line in before.stdout.splitlines() if line.split()[:1] == ["resnet18"])
    assert row.split()[1:5] == ["IMAGENET1K_V1", "11.7M", "1.81", "69.8"] and row.split()[-1] == "-"
    place_weights(torch_home)
    after = run_cli("backbones")
    assert next(line for line in after.stdout.splitlines() if line.split()[:1] == [BACKBONE]).split()[-1] == "yes"


@pytest.mark.parametrize("kind", ["image", pytest.param("video", marks=pytest.mark.long)])  # videos share the code: their case, 9 s, in the long set
def test_frozen_features_are_computed_once_and_train_as_the_images_would(bars, clips, tmp_path, torch_home, kind):
    """With the backbone frozen and augmentation off, training on the cached features is training on
    the images (up to float16 rounding of the features); the features are made once, up front."""
    import csv

    from lstmimg import ModelConfig, TrainConfig, fit

    place_weights(torch_home)
    data, name = (bars, "cnn_lstm") if kind == "image" else (clips, "lrcn")
    model = ModelConfig(name=name, backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16, motion="none")  # the same input with and without the cache
    train = {"epochs": 3, "batch_size": 8, "augment": False, "img_size": (32, 32), "clip_len": 4, "frame_stride": 1}
    events = []
    fit(data, model, TrainConfig(**train), out=tmp_path / "cached", callback=lambda e, i: events.append((e, i)))
    fit(data, model, TrainConfig(**train, feature_cache=False), out=tmp_path / "images")
    feature_events = [i for e, i in events if e == "features"]
    first_step = next(n for n, (e, _) in enumerate(events) if e == "step")
    assert feature_events and all(n < first_step for n, (e, _) in enumerate(events) if e == "features")  # once, before training
    start = next(i for e, i in events if e == "start")
    assert any("features were computed once" in note for note in start["notes"])

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [(float(r["train_loss"]), float(r["val_acc"])) for r in csv.DictReader(f)]

    for (loss_c, acc_c), (loss_i, acc_i) in zip(rows(tmp_path / "cached"), rows(tmp_path / "images")):
        assert loss_c == pytest.approx(loss_i, abs=0.02) and acc_c == pytest.approx(acc_i, abs=0.1)


@pytest.mark.parametrize("kind", ["image", pytest.param("video", marks=pytest.mark.long)])  # 12.6 s; the video feature path runs in CI through the flow case below
def test_disk_feature_cache_is_reused_by_a_later_run_and_keyed_by_settings(bars, clips, tmp_path, torch_home, kind, monkeypatch):
    """With --cache, a second run with the same settings computes no features (it reads one entry per
    file) and trains the same; another input size or other weights make new entries."""
    import csv

    from lstmimg import ModelConfig, TrainConfig, fit
    from lstmimg.engine.train import features

    place_weights(torch_home)
    data, name = (bars, "cnn_lstm") if kind == "image" else (clips, "lrcn")
    model = ModelConfig(name=name, backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16)
    train = {"epochs": 2, "batch_size": 8, "img_size": (32, 32), "clip_len": 4, "frame_stride": 1, "cache": str(tmp_path / "cache")}
    fit(data, model, TrainConfig(**train), out=tmp_path / "first")
    entries = sorted((tmp_path / "cache" / "features").glob("*.npy"))
    n_files = sum(1 for p in data.rglob("*") if p.suffix in (".png", ".avi"))
    assert len(entries) == n_files and not list((tmp_path / "cache" / "features").glob("*.tmp"))

    computed = []
    original = features.cnn_features
    monkeypatch.setattr(features, "cnn_features", lambda *a, **k: computed.append(1) or original(*a, **k))
    events = []
    fit(data, model, TrainConfig(**train), out=tmp_path / "second", callback=lambda e, i: events.append((e, i)))
    assert computed == []  # every feature came from the disk cache
    assert any("kept in" in note for note in next(i for e, i in events if e == "start")["notes"])

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [(r["train_loss"], r["val_acc"]) for r in csv.DictReader(f)]

    assert rows(tmp_path / "first") == rows(tmp_path / "second")
    fit(data, model, TrainConfig(**{**train, "img_size": (24, 24)}), out=tmp_path / "smaller")
    assert computed and len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 2 * n_files


@pytest.mark.slow
def test_unfreeze_after_fine_tunes_the_backbone_at_its_own_rate_and_resumes(bars, tmp_path, torch_home):
    """--unfreeze-after 1: epoch 1 trains on cached features with the backbone as loaded; from epoch
    2 the backbone trains at lr x --backbone-lr-scale, on images. A run stopped after epoch 2 and
    resumed ends as the straight run does."""
    from lstmimg import ModelConfig, TrainConfig, fit
    from lstmimg.files import load_tensors

    state = place_weights(torch_home)
    model = ModelConfig(name="cnn_lstm", backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16)
    train = TrainConfig(epochs=3, batch_size=8, img_size=(32, 32), unfreeze_after=1, backbone_lr_scale=0.1, augment=False)
    events = []
    fit(bars, model, train, out=tmp_path / "straight", callback=lambda e, i: events.append((e, i)))
    unfreezes = [i for e, i in events if e == "unfreeze"]
    assert unfreezes == [{"epoch": 2, "backbone_lr": pytest.approx(train.lr * 0.1)}]
    last = load_tensors(tmp_path / "straight" / "last.pt")
    groups = last["train_state"]["optimizer"]["param_groups"]
    cnn = {k[len("cnn."):]: v for k, v in last["state_dict"].items() if k.startswith("cnn.")}
    loaded = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    assert any(not torch.equal(cnn[k], loaded[k]) for k in cnn if k.endswith("weight"))  # the backbone trained
    assert [g["initial_lr"] for g in groups] == pytest.approx([train.lr, train.lr * 0.1])

    class StopAfter2:  # a Ctrl-C right after epoch 2 was saved
        def __call__(self, event, info):
            if event == "epoch" and info["epoch"] == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(bars, model, train, out=tmp_path / "stopped", callback=StopAfter2())
    fit(resume=tmp_path / "stopped")
    a, b = load_tensors(tmp_path / "straight" / "best.pt"), load_tensors(tmp_path / "stopped" / "best.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_unfreeze_after_needs_a_frozen_backbone(bars, tmp_path):
    assert_one_line_error(run_cli("train", bars, "--unfreeze-after", "2", "--out", tmp_path / "r"), "--unfreeze-after needs --freeze-backbone")


def test_a_frozen_backbone_keeps_its_feature_cache_and_flow_joins_in_its_own_stream(clips, tmp_path, torch_home):
    """Videos default to flow input, except with a frozen backbone whose features are cached (it says
    so); asked for, flow goes through its own small CNN (a backbone takes RGB), normalised with the
    weights' statistics for RGB and motion's fixed ones for flow."""
    from lstmimg import ModelConfig, TrainConfig, fit, load_checkpoint
    from lstmimg.data.motion import normalization

    place_weights(torch_home)
    train = TrainConfig(epochs=1, batch_size=8, img_size=(32, 32), clip_len=4, frame_stride=1)
    events = []
    fit(clips, ModelConfig(name="lrcn", backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16), train, out=tmp_path / "cached", callback=lambda e, i: events.append((e, i)))
    notes = next(i for e, i in events if e == "start")["notes"]
    assert load_checkpoint(tmp_path / "cached").config.motion == "none" and any("no motion input by default" in n for n in notes)
    fit(clips, ModelConfig(name="lrcn", backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16, motion="flow"), train, out=tmp_path / "flow")
    ckpt = load_checkpoint(tmp_path / "flow")
    assert ckpt.config.motion == "flow" and ckpt.model.two_stream
    assert ckpt.mean == pytest.approx([0.485, 0.456, 0.406] + normalization("flow")[0]) and ckpt.std[3:] == pytest.approx(normalization("flow")[1])


def test_ctrl_c_while_frozen_features_are_computed_leaves_no_run_folder(bars, tmp_path, torch_home):
    """Issue 30, check and say: a Ctrl-C while a frozen backbone's features were computed left an empty run folder."""
    from lstmimg import ModelConfig, TrainConfig, fit

    place_weights(torch_home)

    def stop(event, info):
        if event == "features":
            raise KeyboardInterrupt

    model = ModelConfig(name="cnn_lstm", backbone=BACKBONE, pretrained=True, freeze_backbone=True, hidden=16)
    with pytest.raises(KeyboardInterrupt):
        fit(bars, model, TrainConfig(epochs=1, batch_size=8, img_size=(32, 32)), out=tmp_path / "run", callback=stop)
    assert not (tmp_path / "run").exists()
