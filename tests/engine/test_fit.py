import csv
import json

import pytest
import torch
from conftest import TINY_MODEL, TINY_TRAIN
from PIL import Image

from lstmimg import ModelConfig, TrainConfig, evaluate, fit, load_checkpoint, predict
from lstmimg.errors import LstmimgError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_fit_writes_a_complete_run_folder(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"best.pt", "last.pt", "config.json", "metrics.csv", "summary.json", "curves.png", "confusion_matrix.png", "mistakes.png"} <= names
    summary = json.loads((trained_run / "summary.json").read_text())
    assert 0 <= summary["val_accuracy"] <= 1
    assert summary["epochs"] == 2 and summary["model"] == "cnn_lstm" and summary["train_seconds"] > 0
    assert summary["classes"] == ["diagonal", "horizontal", "vertical"]
    assert summary["best_checkpoint"].endswith("best.pt") and summary["seed"] == 0
    rows = list(csv.DictReader((trained_run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert max(float(r["val_acc"]) for r in rows) == pytest.approx(summary["val_accuracy"])
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"]["img_size"] == [12, 12] and config["train"]["epochs"] == 2
    for picture in ("curves.png", "confusion_matrix.png"):
        assert (trained_run / picture).read_bytes()[:8] == PNG_MAGIC
    assert load_checkpoint(trained_run / "best.pt").meta["val_accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-4)


def test_fit_learns_the_bars(bars, tmp_path):
    summary = fit(bars, ModelConfig(name="region_lstm", hidden=24, embed=24), TrainConfig(epochs=12, batch_size=16, lr=1e-2), out=tmp_path / "r")
    assert summary["val_accuracy"] >= 0.9


def test_same_seed_same_metrics(bars, tmp_path):
    def metrics(out):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), out=tmp_path / out)
        return [{k: r[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")} for r in csv.DictReader((tmp_path / out / "metrics.csv").open())]

    assert metrics("a") == metrics("b")


def test_class_folders_only_and_events(flat_bars, tmp_path):
    events = []
    summary = fit(flat_bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, val_split=0.25, class_weights="auto"), out=tmp_path / "r", callback=lambda e, i: events.append(e))
    assert summary["train_samples"] == 45 and summary["val_samples"] == 15
    assert events[0] == "load" and "start" in events and events[-1] == "end"
    assert events.index("start") < events.index("step") < events.index("epoch")


def test_patience_stops_early(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=10, lr=1e-12, patience=2, augment=False), out=tmp_path / "r")
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1


def test_unreadable_training_images_are_skipped_and_counted(bars, tmp_path):
    (bars / "train" / "vertical" / "zz_broken.png").write_bytes(b"not a png")
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=tmp_path / "r")
    assert summary["skipped"] == [str(bars / "train" / "vertical" / "zz_broken.png")]
    assert summary["train_samples"] == 72


def test_img_size_and_rgb(bars, tmp_path):
    Image.new("RGB", (12, 12), (255, 0, 0)).save(bars / "train" / "vertical" / "red.png")
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, img_size=(16, 20)), out=tmp_path / "r")
    assert summary["channels"] == 3 and summary["img_size"] == [16, 20]


def test_evaluate_matches_training_val_accuracy(trained_run, bars):
    summary = json.loads((trained_run / "summary.json").read_text())
    report = evaluate(bars, trained_run)
    assert report["data"] == str(bars / "val") and report["samples"] == 24
    assert report["accuracy"] == pytest.approx(summary["val_accuracy"], abs=1e-4)
    cm = torch.tensor(report["confusion_matrix"])
    assert cm.sum() == 24 and cm.sum(1).tolist() == [8, 8, 8]
    assert [row["support"] for row in report["per_class"]] == [8, 8, 8]
    assert evaluate(bars / "train", trained_run)["samples"] == 72


def test_evaluate_refuses_classes_the_model_does_not_know(trained_run, bars):
    (bars / "val" / "circle").mkdir()
    Image.new("L", (12, 12)).save(bars / "val" / "circle" / "c.png")
    with pytest.raises(LstmimgError, match="classes the model does not know: circle"):
        evaluate(bars / "val", trained_run)


def test_predict_files_and_reports_unreadable_ones(trained_run, bars, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    paths = sorted((bars / "val" / "vertical").iterdir())[:3] + [bad]
    results, errors = predict(paths, trained_run, topk=2, batch_size=2)
    assert [r["path"] for r in results] == [str(p) for p in paths[:3]]
    for r in results:
        assert r["label"] == r["top"][0]["label"] and len(r["top"]) == 2
        assert r["top"][0]["prob"] >= r["top"][1]["prob"]
    assert len(errors) == 1 and "bad.png: not an image" in errors[0]
    # the same numbers as evaluating the model directly
    ckpt = load_checkpoint(trained_run)
    from lstmimg.data.images import load_image, normalize

    x = normalize(torch.from_numpy(load_image(paths[0], 1, (12, 12)))[None], ckpt.mean, ckpt.std)
    assert results[0]["prob"] == pytest.approx(ckpt.model(x).softmax(1).max().item(), abs=1e-4)


def test_fit_refuses_a_run_folder_in_use(trained_run, bars):
    before = (trained_run / "best.pt").read_bytes()
    with pytest.raises(LstmimgError, match="not empty"):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=trained_run)
    assert (trained_run / "best.pt").read_bytes() == before


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "none"])
@pytest.mark.parametrize("total", [1, 3, 100])
def test_schedules_warm_up_then_decay(schedule, total):
    from lstmimg.engine.train.training import make_schedule

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_schedule(opt, TrainConfig(schedule=schedule, warmup=0.1), total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) <= 1.0 and min(lrs) >= 0
    if total == 100:
        assert lrs[0] < 0.5 and max(lrs) == pytest.approx(1.0, abs=0.05)
        assert (lrs[-1] < 0.01) == (schedule != "none")


def test_one_class_only_is_refused(tmp_path):
    from conftest import write_class_folders

    root = write_class_folders(tmp_path / "one", 5, seed=0, classes=("cats",))
    with pytest.raises(LstmimgError, match="only one class folder \\('cats'\\); a classifier needs at least 2"):
        fit(root, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=tmp_path / "r")


def test_class_missing_from_val_is_a_warning(bars, tmp_path):
    import shutil

    shutil.rmtree(bars / "val" / "diagonal")
    events = {}
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1), out=tmp_path / "r", callback=lambda e, i: events.setdefault(e, i))
    assert events["start"]["warnings"] == ["val/ has no samples of: diagonal (training goes on; those classes are not scored)"]
    assert summary["val_samples"] == 16 and summary["classes"] == ["diagonal", "horizontal", "vertical"]


def test_out_of_gpu_memory_names_the_batch_size(bars, tmp_path, monkeypatch):
    import lstmimg.engine.train.training as engine

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine, "train_one_epoch", oom)
    with pytest.raises(LstmimgError, match="out of GPU memory at --batch-size 32 of 12x12 inputs: try --batch-size 16 or a smaller --img-size"):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=32), out=tmp_path / "r")


def test_out_of_cpu_memory_is_one_line_naming_the_batch_size_and_input_size(bars, tmp_path, monkeypatch):
    """`train photos --img-size 4096` on 24 GiB: the first conv of a batch of 16 asked for 32 GiB and the
    CPU allocator's RuntimeError came out as a traceback (the GPU's was already one line)."""
    import lstmimg.engine.train.training as engine

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 34359738368 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(engine, "train_one_epoch", oom)
    with pytest.raises(LstmimgError, match="out of memory at --batch-size 32 of 12x12 inputs: try --batch-size 16 or a smaller --img-size"):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=32), out=tmp_path / "r")


def test_an_input_size_whose_first_layer_alone_would_not_fit_is_refused_before_anything_is_allocated(bars, tmp_path):
    """`--img-size 10000` (one image's first CNN layer: 11.9 GiB) was granted by the overcommitting kernel and
    the process killed by the OOM killer, without a word; 100000 stopped with the allocator's traceback."""
    from lstmimg.engine.train.plan import check_fits

    check_fits(ModelConfig(img_size=(512, 512)), "image")  # an ordinary large size passes
    with pytest.raises(LstmimgError, match=r"--img-size 100000x100000: too large: one image at that size takes 1192.1 GiB"):
        check_fits(ModelConfig(img_size=(100000, 100000)), "image")
    with pytest.raises(LstmimgError, match="--img-size 100000x100000: too large"):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, img_size=(100000, 100000)), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_compiled_cnn_trains_and_saves_plain_weights(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=24, compile=True), out=tmp_path / "r")
    ckpt = load_checkpoint(summary["best_checkpoint"])
    assert not any("_orig_mod" in k for k in ckpt.model.state_dict())
    assert ckpt.model(torch.zeros(1, 1, 12, 12)).shape == (1, 3)


def test_large_training_sets_stream_through_dataloader_workers(bars, tmp_path, monkeypatch):
    """Above the in-memory limit the training set is decoded per batch by worker processes: the same
    batches in the same order, so the same metrics; unreadable files are still skipped and listed."""
    import csv as csv_module

    import lstmimg.data.dataset as dataset

    def rows(run):
        with open(run / "metrics.csv") as f:
            return [{k: r[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")} for r in csv_module.DictReader(f)]

    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), out=tmp_path / "memory")
    monkeypatch.setattr(dataset, "IN_MEMORY_BYTES", 0)
    loading = []
    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN, workers=2), out=tmp_path / "streamed", callback=lambda e, i: loading.append(i.get("loading")))
    assert "from disk by 2 worker processes" in loading
    assert rows(tmp_path / "streamed") == rows(tmp_path / "memory")
    (bars / "train" / "vertical" / "zz_bad.png").write_bytes(b"nope")
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, workers=2), out=tmp_path / "bad")
    assert summary["skipped"] == [str(bars / "train" / "vertical" / "zz_bad.png")]


def test_amp_picks_bf16_where_supported_else_fp16_and_only_on_cuda(monkeypatch):
    from lstmimg.engine.train.training import amp_settings

    assert amp_settings(TrainConfig(amp=True), torch.device("cpu")) == (False, torch.float32)
    assert amp_settings(TrainConfig(), torch.device("cuda")) == (False, torch.float32)  # off by default: slower on an H200 (benchmarks/amp.py)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings(TrainConfig(amp=True), torch.device("cuda")) == (True, torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_settings(TrainConfig(amp=True), torch.device("cuda")) == (True, torch.float16)


def test_gradient_scaler_steps_match_unscaled_steps():
    """The fp16 path scales the loss, unscales before clipping, then steps: with no overflow the
    weights end where plain fp32 steps take them (the scale is a power of two, undone exactly)."""
    from lstmimg.engine.train.training import Recipe, make_optimizer, make_schedule, train_one_epoch
    from lstmimg.engine.train.trainstate import TrainState
    from lstmimg.models.registry import build_model

    cfg = TrainConfig(epochs=1, batch_size=8, augment=False, clip_grad=0.5)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 12, 12), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]

    def train(scaler):
        torch.manual_seed(0)
        net = build_model(ModelConfig(in_channels=1, img_size=(12, 12), num_classes=3, dropout=0.0, **TINY_MODEL))
        opt = make_optimizer(net, cfg)
        state = TrainState(net, opt, make_schedule(opt, cfg, 4), gen, scaler)
        train_one_epoch(state, batches, Recipe(net, torch.nn.CrossEntropyLoss(), [0.5], [0.25], torch.device("cpu"), False, cfg.clip_grad))
        return net, state

    plain, plain_state = train(None)
    scaled, scaled_state = train(torch.amp.GradScaler("cpu", init_scale=2.0**10))
    assert scaled_state.step == plain_state.step == 4
    for p, q in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_pinned_batches(bars, monkeypatch):
    from lstmimg.data.dataset import describe
    from lstmimg.engine.train.batches import train_batches

    def fake_pin(self):
        out = self.clone()
        out.pinned_for_test = True
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    cfg = TrainConfig(batch_size=16)
    data = describe(bars, cfg)
    data.load(cfg)
    data.pin_memory()
    batches = list(train_batches(data, cfg, torch.Generator().manual_seed(0)))
    assert batches and all(getattr(x, "pinned_for_test", False) for x, _ in batches)
