"""Streamed training sets: decoded per batch by DataLoader workers, the same batches as in memory."""

import csv
import os

import numpy as np
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN, moving_square, write_clip

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.data import loaders as L
from lstmimg.data.folders import split_folder

VIDEO_RUN = {**TINY_VIDEO_TRAIN, "epochs": 3}


def metrics(run) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: r[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")} for r in csv.DictReader(f)]


def test_streamed_videos_train_exactly_as_in_memory(clips, tmp_path):
    """Workers cut the clips the main process would: the same draws, the same batches, the same run,
    with 2 workers or none, with and without the frame cache; the cache then holds every video."""
    model, loading = ModelConfig(name="lrcn", **TINY_MODEL), []
    seen = lambda event, info: loading.append(info["loading"]) if event == "start" else None  # noqa: E731
    fit(clips, model, TrainConfig(**VIDEO_RUN, load="memory"), out=tmp_path / "memory", callback=seen)
    expected = metrics(tmp_path / "memory")
    fit(clips, model, TrainConfig(**VIDEO_RUN, load="disk", workers=2), out=tmp_path / "w2", callback=seen)
    assert metrics(tmp_path / "w2") == expected
    cache = tmp_path / "cache"
    fit(clips, model, TrainConfig(**VIDEO_RUN, load="disk", workers=0, cache=str(cache)), out=tmp_path / "w0", callback=seen)
    assert metrics(tmp_path / "w0") == expected
    assert loading == ["in memory", "from disk by 2 worker processes", "from disk in the main process"]
    assert len(list(cache.glob("*.npy"))) == 48  # 28 train (filled by the epochs) + 20 val


def test_a_warm_cache_means_no_decoding(clips, tmp_path, monkeypatch):
    import lstmimg.data.video_io as video

    model, cache = ModelConfig(name="lrcn", **TINY_MODEL), str(tmp_path / "cache")
    fit(clips, model, TrainConfig(**VIDEO_RUN, load="disk", workers=2, cache=cache), out=tmp_path / "cold")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a video the cache holds")

    monkeypatch.setattr(video, "read_video", no_decoding)  # forked workers inherit it
    summary = fit(clips, model, TrainConfig(**VIDEO_RUN, load="disk", workers=2, cache=cache), out=tmp_path / "warm")
    assert summary["skipped"] == [] and metrics(tmp_path / "warm") == metrics(tmp_path / "cold")


def test_streamed_videos_list_unreadable_and_truncated_files(clips, tmp_path):
    """Without a cache a truncated file is met only when a clip reaches past its end; the cache's
    first epoch decodes every file whole, so it always finds it."""
    bad = clips / "train" / "left" / "zz_bad.avi"
    bad.write_bytes(b"not a video")
    full = write_clip(tmp_path / "full.avi", sum((moving_square(-1, 6, np.random.default_rng(1)) for _ in range(10)), []))
    cut = clips / "train" / "left" / "zz_cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    model, train = ModelConfig(name="lrcn", **TINY_MODEL), {**VIDEO_RUN, "epochs": 1}
    summary = fit(clips, model, TrainConfig(**train, load="disk", workers=2, cache=str(tmp_path / "cache")), out=tmp_path / "cached")
    assert summary["skipped"] == [str(bad)] and summary["truncated"] == [str(cut)]
    summary = fit(clips, model, TrainConfig(**train, load="disk", workers=2), out=tmp_path / "plain")
    assert summary["skipped"] == [str(bad)] and summary["truncated"] in ([], [str(cut)])


def test_workers_live_for_the_whole_run(bars, monkeypatch):
    """One DataLoader per run: the same worker processes serve every epoch (no start-up per epoch)."""

    def worker_pid(path, channels, size, fit="squash"):  # the "image" is the pid of the process that decoded it
        pid = os.getpid()
        return np.array([pid // 65536, pid // 256 % 256, pid % 256], dtype=np.uint8).reshape(3, 1, 1).repeat(2, 1).repeat(2, 2)

    monkeypatch.setattr(L, "load_image", worker_pid)
    split = split_folder(bars)["train"]
    data = L.disk_images(split, 3, (2, 2), workers=2)

    def pids(epoch_batches):
        found = set()
        for images, _ in data.batches(epoch_batches):
            p = images[:, :, 0, 0].long()
            found |= set((p[:, 0] * 65536 + p[:, 1] * 256 + p[:, 2]).tolist())
        return found

    order = torch.randperm(len(split.paths), generator=torch.Generator().manual_seed(0))
    first = pids([b.tolist() for b in order.split(8)])
    second = pids([b.tolist() for b in order.flip(0).split(8)])
    assert len(first) == 2 and first == second and os.getpid() not in first


def test_streamed_images_with_no_workers_decode_in_this_process(bars, tmp_path):
    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=2, batch_size=16, load="memory"), out=tmp_path / "memory")
    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=2, batch_size=16, load="disk", workers=0), out=tmp_path / "w0")
    assert metrics(tmp_path / "w0") == metrics(tmp_path / "memory")


def test_default_workers_share_the_cores_among_local_processes(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert L.default_workers() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert L.default_workers() == 2
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert L.default_workers() == 1
