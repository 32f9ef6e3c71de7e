
import json
import os

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN, moving_square, write_clip
from conftest import run_cli as run

from lstmimg import ModelConfig, TrainConfig, fit, load_checkpoint
from lstmimg.data import clips as V
from lstmimg.data.folders import VIDEO_EXTENSIONS, detect_kind, split_folder
from lstmimg.errors import LstmimgError


def ramp(length: int) -> torch.Tensor:
    """A fake decoded video (T, 1, 2, 2) whose frame t is filled with t."""
    return torch.arange(length, dtype=torch.uint8).view(length, 1, 1, 1).expand(length, 1, 2, 2)


def test_clip_at_repeats_the_last_frame_of_a_short_video():
    assert ramp(10)[V.clip_indices(2, 4, 2, 10)][:, 0, 0, 0].tolist() == [2, 4, 6, 8]
    assert ramp(3)[V.clip_indices(0, 5, 1, 3)][:, 0, 0, 0].tolist() == [0, 1, 2, 2, 2]


def test_uniform_clips_cover_the_video():
    clips = V.uniform_clips(ramp(20), 4, 1, 3)
    assert clips.shape == (3, 4, 1, 2, 2)
    assert clips[:, 0, 0, 0, 0].tolist() == [0, 8, 16]
    assert V.uniform_clips(ramp(2), 4, 1, 3).shape[0] == 1  # too short for several: one clip
    two = V.uniform_clips(ramp(16), 8, 2, 3)  # 16 frames, a clip spans 15: starts 0 and 1, not 0, 0, 1
    assert two.shape[0] == 2 and not torch.equal(two[0], two[1])


def test_random_clips_start_where_the_draws_say():
    data = V.VideoSet([ramp(12), ramp(5)], torch.tensor([0, 1]), ["a", "b"], [])
    a = V.random_clips(data, torch.tensor([0, 1]), torch.tensor([0.0, 0.5]), 4, 2)
    assert a.shape == (2, 4, 1, 2, 2)
    assert a[0, :, 0, 0, 0].tolist() == [0, 2, 4, 6]  # draw 0: the first frame
    assert a[1, :, 0, 0, 0].tolist() == [0, 2, 4, 4]  # shorter than the clip: starts at 0, last frame repeats
    late = V.random_clips(data, torch.tensor([0]), torch.tensor([0.9999]), 4, 2)
    assert late[0, :, 0, 0, 0].tolist() == [5, 7, 9, 11]  # the latest start that still fits


def test_clip_starts_cover_every_place_evenly():
    starts = [V.clip_start(u, 20, 4, 2) for u in torch.rand(7000, generator=torch.Generator().manual_seed(0)).tolist()]
    counts = torch.bincount(torch.tensor(starts))
    assert len(counts) == 14 and counts.min() > 400  # 20 - 7 + 1 places, each about 500 times


def test_shuffle_time_permutes_frames_only():
    clips = torch.stack([ramp(8), ramp(8)])
    shuffled = V.shuffle_time(clips, torch.Generator().manual_seed(0))
    assert not torch.equal(shuffled, clips)
    assert sorted(shuffled[0, :, 0, 0, 0].tolist()) == list(range(8))


def test_video_folders_are_found_and_decoded(clips):
    assert detect_kind(clips) == "video"
    splits = split_folder(clips, extensions=VIDEO_EXTENSIONS)
    assert len(splits["train"].paths) == 28 and splits["train"].classes == ["left", "right"]
    assert V.infer_video_size(splits["train"].paths) == (16, 16)
    bad = clips / "train" / "left" / "zz.mp4"
    bad.write_bytes(b"not a video")
    data = V.decode_videos(split_folder(clips, extensions=VIDEO_EXTENSIONS)["train"], (8, 8))
    assert len(data) == 28 and data.skipped == [bad]
    assert all(v.dtype == torch.uint8 and v.shape[1:] == (3, 8, 8) and 5 <= len(v) <= 6 for v in data.videos)


def test_empty_video_class_folder(clips):
    for p in (clips / "val" / "right").iterdir():
        p.unlink()
    with pytest.raises(LstmimgError, match="class folder has no videos"):
        fit(clips, None, TrainConfig(epochs=1))


@pytest.mark.slow
def test_train_video_model_and_frame_order_matters(clips, tmp_path):
    """The LSTM uses frame order: the same model with its frames shuffled in time scores far lower.
    (RGB frames only: with flow input each frame carries its own motion, and shuffling keeps it.)"""
    model = ModelConfig(name="lrcn", motion="none", **TINY_MODEL)
    ordered = fit(clips, model, TrainConfig(**TINY_VIDEO_TRAIN), out=tmp_path / "ordered")
    shuffled = fit(clips, model, TrainConfig(**TINY_VIDEO_TRAIN, shuffle_frames=True), out=tmp_path / "shuffled")
    assert ordered["kind"] == "video" and ordered["val_samples"] == 20
    assert 0 <= ordered["val_clip_accuracy"] <= 1
    assert ordered["val_accuracy"] >= 0.9
    assert shuffled["val_accuracy"] <= 0.75
    assert ordered["val_accuracy"] - shuffled["val_accuracy"] >= 0.25


def test_default_model_follows_the_data(clips, tmp_path):
    summary = fit(clips, None, TrainConfig(epochs=1, clip_len=4), out=tmp_path / "r")
    assert summary["model"] == "lrcn"
    with pytest.raises(LstmimgError, match="holds videos, but model 'cnn_lstm' is an image model"):
        fit(clips, ModelConfig(name="cnn_lstm"), TrainConfig(epochs=1), out=tmp_path / "x")


def test_frame_cache_is_reused_and_invalidated(clips, tmp_path, monkeypatch):
    import numpy as np
    from conftest import moving_square, write_clip

    import lstmimg.data.video_io as video

    path = sorted((clips / "train" / "left").iterdir())[0]
    cache = tmp_path / "cache"
    first, _ = V.decode_cached(path, (8, 8), cache)
    assert len(list(cache.glob("*.npy"))) == 1 and not list(cache.glob("*.tmp"))

    calls = []
    original = video.read_video
    monkeypatch.setattr(video, "read_video", lambda *a, **k: calls.append(a) or original(*a, **k))
    again, _ = V.decode_cached(path, (8, 8), cache)
    assert np.array_equal(first, again) and calls == []  # served from the cache, no decoding
    V.decode_cached(path, (16, 16), cache)  # other decode settings: a new entry
    assert len(calls) == 1 and len(list(cache.glob("*.npy"))) == 2
    mapped, _ = V.decode_cached(path, (8, 8), cache, mmap=True)  # memory-mapped: only what is indexed is read
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, first) and len(calls) == 1
    write_clip(path, moving_square(1, 5, np.random.default_rng(9)))  # the file changes: decoded again
    changed, _ = V.decode_cached(path, (8, 8), cache)
    assert len(calls) == 2 and len(list(cache.glob("*.npy"))) == 3
    entry = cache / f"{V.cache_key(path, (8, 8))}.npy"
    entry.write_bytes(b"damaged")  # a damaged entry is decoded again and replaced
    again, _ = V.decode_cached(path, (8, 8), cache)
    assert len(calls) == 3 and np.array_equal(again, changed) and np.array_equal(np.load(entry), changed)


def test_frame_cache_filled_by_two_processes_at_once(clips, tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from lstmimg.data import clips as V; from lstmimg.data.folders import split_folder, VIDEO_EXTENSIONS;"
        "s = split_folder(sys.argv[1], extensions=VIDEO_EXTENSIONS)['train']; V.decode_videos(s, (8, 8), cache=sys.argv[2])"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(clips), str(tmp_path / "c")]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    entries = list((tmp_path / "c").glob("*.npy"))
    assert len(entries) == 28 and not list((tmp_path / "c").glob("*.tmp"))
    data = V.decode_videos(split_folder(clips, extensions=VIDEO_EXTENSIONS)["train"], (8, 8), cache=tmp_path / "c")
    assert len(data) == 28


def test_frame_cache_hashes_each_video_once_per_run(clips, tmp_path, monkeypatch):
    import hashlib

    calls = []
    original = hashlib.sha256
    monkeypatch.setattr(hashlib, "sha256", lambda *a: calls.append(1) or original(*a))
    train = TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 3}, load="disk", workers=0, cache=str(tmp_path / "cache"))
    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), train, out=tmp_path / "r")
    n_files = sum(1 for _ in clips.rglob("*.avi"))
    assert len(calls) == n_files


def test_frame_cache_entry_permissions_and_no_leak(tmp_path, monkeypatch):
    from lstmimg.data import clips as V

    video = write_clip(tmp_path / "v.avi", moving_square(1, 6, np.random.default_rng(0)))
    cache = tmp_path / "cache"
    old = os.umask(0o022)
    try:
        V.decode_cached(video, (16, 16), cache)
        entries = list(cache.iterdir())
        assert len(entries) == 1 and entries[0].stat().st_mode & 0o777 == 0o644
        entries[0].unlink()

        def broken_save(f, arr, *a, **k):
            f.write(b"partial")
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(np, "save", broken_save)
        with pytest.raises((OSError, LstmimgError)):
            V.decode_cached(video, (16, 16), cache)
        assert list(cache.iterdir()) == []
    finally:
        os.umask(old)


def test_video_eval_uses_the_runs_val_clips_and_lrcn_is_one_way(clips, tmp_path, monkeypatch):
    from lstmimg import evaluate
    from lstmimg.engine.infer import inference

    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 1}, val_clips=2), out=tmp_path / "v")
    assert load_checkpoint(tmp_path / "v").config.bidirectional is False
    assert json.loads((tmp_path / "v" / "config.json").read_text())["model"]["bidirectional"] is False
    counts = []
    original = inference.uniform_clips
    monkeypatch.setattr(inference, "uniform_clips", lambda video, clip_len, stride, count: counts.append(count) or original(video, clip_len, stride, count))
    evaluate(clips, tmp_path / "v")
    assert counts and set(counts) == {2}
    result = run("eval", clips, "--model", tmp_path / "v")
    assert "20 videos" in result.stdout and "images" not in result.stdout


def test_segment_clips_spread_over_the_whole_video():
    """--frame-stride 0: a clip takes one frame of each of clip_len equal segments, at the drawn place
    in training and at the middle of each clip's share when scored; a short video repeats frames."""
    data = V.VideoSet([ramp(30), ramp(5)], torch.tensor([0, 1]), ["a", "b"], [])
    first = V.random_clips(data, torch.tensor([0, 0]), torch.tensor([0.0, 0.9999]), 6, V.SEGMENTS)[:, :, 0, 0, 0]
    assert first.tolist() == [[0, 5, 10, 15, 20, 25], [4, 9, 14, 19, 24, 29]]  # the first and the last frame of each segment
    assert V.random_clips(data, torch.tensor([1]), torch.tensor([0.5]), 8, V.SEGMENTS)[0, :, 0, 0, 0].tolist() == [0, 0, 1, 2, 2, 3, 4, 4]
    scored = V.scored_frames(30, 6, V.SEGMENTS, 3)
    assert scored == [[0, 5, 10, 15, 20, 25], [2, 7, 12, 17, 22, 27], [4, 9, 14, 19, 24, 29]]
    assert V.uniform_clips(ramp(30), 6, V.SEGMENTS, 3)[:, :, 0, 0, 0].tolist() == scored
    assert len(V.scored_frames(3, 6, V.SEGMENTS, 3)) == 1  # every place gives the same frames: scored once


def test_segment_draws_reach_every_frame_of_a_long_video():
    seen = {f for u in torch.rand(400, generator=torch.Generator().manual_seed(0)).tolist() for f in V.drawn_frames(u, 40, 8, V.SEGMENTS).tolist()}
    assert seen == set(range(40))


def test_clip_motion_is_at_the_stride_and_segment_motion_from_the_neighbouring_frame():
    assert [V.motion_stride(s) for s in (V.SEGMENTS, 1, 2, 4)] == [1, 1, 2, 4]


def test_a_model_trained_on_segments_is_scored_and_streamed_as_it_was_trained(clips, tmp_path):
    """--frame-stride 0 end to end: the checkpoint records segments and the spacing of its frames; eval
    scores val as training did; predict reads each whole file; a stream is read at that spacing."""
    from lstmimg import evaluate

    run_dir = tmp_path / "seg"
    summary = fit(clips, ModelConfig(name="lrcn", motion="diff", **TINY_MODEL), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 4, "clip_len": 3, "frame_stride": 0}), out=run_dir)
    meta = load_checkpoint(run_dir).meta
    assert meta["frame_stride"] == V.SEGMENTS and meta["segment_gap"] == 2  # videos of 5-6 frames over 3-frame clips
    assert meta["motion"]["stride"] == 1  # motion from the neighbouring frame
    assert evaluate(clips, run_dir)["accuracy"] == pytest.approx(summary["val_accuracy"])
    result = run("predict", clips / "val" / "left" / "00.avi", "--model", run_dir, "--json")
    assert result.exit_code == 0, result.output
    long = write_clip(tmp_path / "long.avi", [f for d in (1, -1, 1) for f in moving_square(d, 6, np.random.default_rng(d + 2))])
    result = run("video", long, "--model", run_dir, "--jsonl", tmp_path / "w.jsonl")
    assert result.exit_code == 0, result.output
    windows = [row for row in map(json.loads, (tmp_path / "w.jsonl").read_text().splitlines()) if "start" in row]
    assert windows[0]["frames"] == 3 and windows[0]["end"] - windows[0]["start"] == pytest.approx(0.6)  # 3 frames 2 apart at 10 fps
