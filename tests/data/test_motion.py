"""Motion input: OpenCV flow and frame differences beside the frames, the same in every path that
computes it (whole videos, clips read from disk, streams), turned with augmentation, and recorded in
the checkpoint."""

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN, assert_one_line_error, moving_square, run_cli, write_clip

from lstmimg.data import motion as M


def textured(size=48, seed=0) -> np.ndarray:
    """A smooth random texture (RGB uint8), something optical flow can follow."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size // 4, size // 4, 3), dtype=np.uint8)
    return cv2.resize(small, (size * 2, size * 2), interpolation=cv2.INTER_CUBIC)


def panned(shift: float, frames: int = 6, side: int = 48) -> np.ndarray:
    """Frames ``(T, side, side, 3)`` of a camera over ``textured()`` whose view moves ``shift`` px a
    frame to the left, so the content moves ``shift`` px a frame to the right."""
    import cv2

    big = textured(side)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -side / 2 + shift * t], [0, 1, -side / 2]])
        out.append(cv2.warpAffine(big, m, (side, side), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def decoded_flow(frames_with_motion: np.ndarray) -> np.ndarray:
    return (frames_with_motion[..., 3:5].astype(np.float32) - M.ZERO) / M.FLOW_SCALE


def test_flow_measures_the_shift_in_pixels_and_first_frames_have_none():
    frames = panned(2.0)
    out = M.with_motion(frames, "flow", stride=2)
    assert out.shape == (6, 48, 48, 5) and out.dtype == np.uint8
    assert np.array_equal(out[..., :3], frames)
    flow = decoded_flow(out)
    assert np.abs(flow[:2]).max() == 0  # nothing before the first two frames
    centre = flow[2:, 12:36, 12:36]
    assert np.median(centre[..., 0]) == pytest.approx(4.0, abs=0.5)  # 2 px a frame, 2 frames apart
    assert np.median(centre[..., 1]) == pytest.approx(0.0, abs=0.3)
    diff = M.with_motion(frames, "diff", stride=1)
    assert diff.shape == (6, 48, 48, 4) and np.all(diff[0, ..., 3] == M.ZERO) and np.abs(diff[1:, ..., 3].astype(int) - M.ZERO).max() > 5


def test_a_stream_fed_window_by_window_gives_the_whole_video_motion():
    frames = panned(1.5, frames=11)
    whole = M.with_motion(frames, "flow", stride=2)[::2]  # what training cuts at --frame-stride 2
    stream = M.MotionStream("flow")
    windows = [frames[0:6:2], frames[6:11:2]]  # sampled frames, in two windows
    assert np.array_equal(np.concatenate([[stream.add(f) for f in w] for w in windows]), whole)


def test_clips_read_from_disk_match_the_decoded_video(tmp_path):
    """A clip read alone (only its frames and the ones before them decoded) has the motion the whole
    decoded video gives those frames, wherever it starts, also when it runs past the end."""
    from lstmimg.data import clips as V
    from lstmimg.data.folders import Split
    from lstmimg.data.loaders import VideoClips

    rng = np.random.default_rng(0)
    path = write_clip(tmp_path / "v.avi", moving_square(1, 12, rng, size=32))
    whole, _ = V.decode_cached(path, (32, 32), None, motion="flow", stride=2)
    dataset = VideoClips(Split([path], [0], ["a"]), (32, 32), clip_len=4, stride=2, cache=None, motion="flow")
    for draw in (0.0, 0.3, 0.99):
        clip, *_ = dataset[(0, draw)]
        start = V.clip_start(draw, len(whole), 4, 2)
        assert torch.equal(clip, torch.from_numpy(whole[V.clip_indices(start, 4, 2, len(whole)).numpy()]).permute(0, 3, 1, 2))
    long_clip = VideoClips(Split([path], [0], ["a"]), (32, 32), clip_len=8, stride=2, cache=None, motion="flow")[(0, 0.5)][0]
    assert torch.equal(long_clip, torch.from_numpy(whole[V.clip_indices(0, 8, 2, len(whole)).numpy()]).permute(0, 3, 1, 2))


def test_frame_cache_keys_the_motion_and_its_stride(tmp_path):
    from lstmimg.data import clips as V

    path = write_clip(tmp_path / "v.avi", moving_square(1, 6, np.random.default_rng(0)))
    keys = {V.cache_key(path, (16, 16)), V.cache_key(path, (16, 16), "flow", 1), V.cache_key(path, (16, 16), "flow", 2), V.cache_key(path, (16, 16), "diff", 2)}
    assert len(keys) == 4
    frames, _ = V.decode_cached(path, (16, 16), tmp_path / "cache", motion="flow", stride=2)
    again, _ = V.decode_cached(path, (16, 16), tmp_path / "cache", motion="flow", stride=2)
    assert frames.shape[-1] == 5 and np.array_equal(frames, again) and len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_augmentation_turns_flow_with_the_frame():
    """Rotating a clip 90 degrees and then computing its flow gives (about) the flow of the clip,
    turned by random_affine: the vectors rotate with the pixels; the empty border has no motion."""
    from lstmimg.data.augment import _warp

    frames = panned(2.0, frames=2)
    x = torch.from_numpy(M.with_motion(frames, "flow", 1)).permute(0, 3, 1, 2).float().div(255)  # (2, 5, H, W)

    theta = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]).repeat(2, 1, 1)
    turned = _warp(x, theta, "flow")
    rgb = (turned[:, :3] * 255).round().byte().permute(0, 2, 3, 1).numpy()
    recomputed = decoded_flow(M.with_motion(rgb, "flow", 1))[1, 12:36, 12:36]
    carried = (turned[1, 3:5, 12:36, 12:36].permute(1, 2, 0).numpy() * 255 - M.ZERO) / M.FLOW_SCALE
    assert np.median(np.abs(carried[..., 0] - recomputed[..., 0])) < 0.5 and np.median(np.abs(carried[..., 1] - recomputed[..., 1])) < 0.5
    assert abs(np.median(carried[..., 1])) > 1.5 and abs(np.median(carried[..., 0])) < 0.5  # (2, 0) turned to (0, +-2)
    shrunk = _warp(x, torch.tensor([[[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]]).repeat(2, 1, 1), "flow")  # zoom out: a border
    assert torch.allclose(shrunk[1, 3:, 0, 0], torch.full((2,), M.ZERO / 255))


def test_train_with_flow_records_it_and_video_eval_compute_the_same(clips, tmp_path):
    from lstmimg import ModelConfig, TrainConfig, evaluate, fit, load_checkpoint
    from lstmimg.engine.infer.timeline import classify_video

    for fusion in ("early", "two-stream"):
        run = tmp_path / fusion
        summary = fit(clips, ModelConfig(name="lrcn", motion="flow", fusion=fusion, **TINY_MODEL), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 3, "augment": True}), out=run)
        ckpt = load_checkpoint(run)
        assert ckpt.config.motion == "flow" and ckpt.config.in_channels == 5
        assert ckpt.meta["motion"]["method"] == "flow" and ckpt.meta["motion"]["stride"] == 1 and ckpt.meta["motion"]["preset"] == M.PRESET
        assert ckpt.mean[3:] == pytest.approx(M.normalization("flow")[0]) and ckpt.std[3:] == pytest.approx(M.normalization("flow")[1])
        assert evaluate(clips, run)["accuracy"] == pytest.approx(summary["val_accuracy"])
    video = sorted((clips / "val").rglob("*.avi"))[0]
    result = classify_video(video, tmp_path / "two-stream", window="3")
    assert result["windows"] and len(result["windows"][0]["probs"]) == 2


def test_motion_is_for_video_models(bars, tmp_path):
    assert_one_line_error(run_cli("train", bars, "--motion", "flow", "--out", tmp_path / "r"), "--motion flow is for videos")
    assert_one_line_error(run_cli("train", bars, "--motion", "optical", "--out", tmp_path / "r"), "--motion 'optical' is not one of: auto, none, diff, flow")


def test_videos_default_to_flow_images_to_none_and_older_checkpoints_read_as_none(clips, bars, tmp_path):
    from lstmimg import ModelConfig, TrainConfig, fit, load_checkpoint
    from lstmimg.checkpoint import save_checkpoint
    from lstmimg.files import load_tensors

    fit(clips, ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**{**TINY_VIDEO_TRAIN, "epochs": 1}), out=tmp_path / "v")
    fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=1, batch_size=16), out=tmp_path / "i")
    assert load_checkpoint(tmp_path / "v").config.motion == "flow" and load_checkpoint(tmp_path / "i").config.motion == "none"
    old = load_tensors(tmp_path / "i" / "best.pt")  # as written before motion input existed
    del old["model"]["motion"], old["model"]["fusion"]
    ckpt = load_checkpoint(tmp_path / "i")
    save_checkpoint(tmp_path / "old.pt", ckpt.model, ckpt.config, ckpt.classes, ckpt.mean, ckpt.std)
    payload = load_tensors(tmp_path / "old.pt")
    payload["model"] = old["model"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").config.motion == "none"


def test_a_reader_for_a_segment_model_gives_each_sampled_frame_its_neighbours_motion(tmp_path):
    """A model trained on segments (--frame-stride 0) saw motion from the frame just before each of its
    frames; a stream read every 3rd frame for it (``motion_before``) gives the same, not the motion
    over 3 frames."""
    from lstmimg.data import clips as V
    from lstmimg.data.video_io import FrameReader

    rng = np.random.default_rng(0)
    path = write_clip(tmp_path / "v.avi", moving_square(1, 12, rng, size=32))
    whole, _ = V.decode_cached(path, (32, 32), None, motion="diff", stride=V.SEGMENTS)  # (12, 32, 32, 4)
    for before, expected in ((True, whole[::3]), (False, M.with_motion(whole[:, :, :, :3], "diff", 3)[::3])):
        with FrameReader(path, size=(32, 32), stride=3, transform=M.MotionStream("diff").add, motion_before=before) as reader:
            got = np.stack([f.rgb for f in reader if f.sampled])
        assert np.array_equal(got, expected)
    assert not np.array_equal(whole[::3], M.with_motion(whole[:, :, :, :3], "diff", 3)[::3])  # the two differ on this video
