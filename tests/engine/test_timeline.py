
import time

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, TINY_VIDEO_TRAIN, MjpegServer, moving_square, write_clip, write_clips
from conftest import assert_one_line_error as one_line_error
from conftest import run_cli as run

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.engine.infer.streams import parse_window
from lstmimg.engine.infer.timeline import Window, classify_video, format_time, merge_segments
from lstmimg.errors import LstmimgError


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    """A tiny lrcn trained once for this module on the ``clips`` data: tests read it and never change it."""
    root = tmp_path_factory.mktemp("timeline")
    return fit(write_clips(root / "clips"), ModelConfig(name="lrcn", **TINY_MODEL), TrainConfig(**TINY_VIDEO_TRAIN), out=root / "vrun")["run_dir"]


def test_parse_window_and_format_time():
    assert parse_window(None, 8, 10) == 8
    assert parse_window("16", 8, 10) == 16
    assert parse_window("1.5s", 8, 10) == 15
    with pytest.raises(LstmimgError, match="give frames"):
        parse_window("two", 8, 10)
    with pytest.raises(LstmimgError, match="does not say its frame rate"):
        parse_window("2s", 8, 0)
    assert format_time(4.25) == "00:04.2" and format_time(61) == "01:01.0"


def test_merge_segments():
    w = lambda s, label, p: Window(s, s + 1, 4, label, p, [])  # noqa: E731
    segments = merge_segments([w(0, "a", 0.9), w(1, "a", 0.7), w(2, "b", 0.6), w(3, "a", 1.0)])
    assert segments == [
        {"start": 0, "end": 2, "label": "a", "prob": 0.8},
        {"start": 2, "end": 3, "label": "b", "prob": 0.6},
        {"start": 3, "end": 4, "label": "a", "prob": 1.0},
    ]


def test_classify_a_long_video_window_by_window(video_run, tmp_path):
    """Right, then left: scored window by window, the timeline shows both, in order."""
    rng = np.random.default_rng(3)
    frames = sum((moving_square(1, 6, rng) for _ in range(4)), []) + sum((moving_square(-1, 6, rng) for _ in range(4)), [])
    path = write_clip(tmp_path / "long.avi", frames, fps=10)
    windows = []
    result = classify_video(path, video_run, window="6", stride=1, on_window=windows.append, carry=False)
    assert result["frames"] == 48 and result["sampled_frames"] == 48 and len(result["windows"]) == 8
    labels = [w.label for w in windows]
    assert labels[:4].count("right") >= 3 and labels[-4:].count("left") >= 3
    assert [s["label"] for s in result["segments"]][0] == "right" and result["segments"][-1]["label"] == "left"
    assert result["segments"][0]["start"] == 0.0 and result["segments"][-1]["end"] == pytest.approx(4.8)
    assert result["label"] in ("left", "right") and len(result["top"]) == 2
    assert abs(sum(t["prob"] for t in result["top"]) - 1) < 1e-3


def test_carried_state_keeps_a_long_video_of_one_class(video_run, tmp_path):
    rng = np.random.default_rng(4)
    path = write_clip(tmp_path / "right.avi", sum((moving_square(1, 6, rng) for _ in range(8)), []), fps=10)
    result = classify_video(path, video_run, window="6", stride=1)
    assert result["label"] == "right" and [w["label"] for w in result["windows"]].count("right") >= 7


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_carrying_state_equals_reading_the_whole_clip(pool):
    from lstmimg.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(name="lrcn", pool=pool, in_channels=3, img_size=(16, 16), num_classes=2, **TINY_MODEL)).eval()
    x = torch.randn(1, 10, 3, 16, 16)
    with torch.inference_mode():
        _, state = model.forward_window(x[:, :4])
        carried, (h, c) = model.forward_window(x[:, 4:], state)
        whole, (h_all, c_all) = model.forward_window(x)
    assert torch.allclose(h, h_all, atol=1e-5) and torch.allclose(c, c_all, atol=1e-5)
    if pool == "last":  # the last state summarises the whole history either way
        assert torch.allclose(carried, whole, atol=1e-5)


def test_save_writes_a_labelled_video(video_run, clips, tmp_path):
    source = next((clips / "val" / "right").iterdir())
    out = tmp_path / "labelled.mp4"
    result = classify_video(source, video_run, stride=1, save=out)
    from lstmimg.data.video_io import read_video

    frames, _ = read_video(out)
    assert len(frames) == result["sampled_frames"]


def test_truncated_video_is_classified_from_what_decodes(video_run, tmp_path):
    rng = np.random.default_rng(0)
    full = write_clip(tmp_path / "full.avi", sum((moving_square(1, 6, rng) for _ in range(10)), []))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    result = classify_video(cut, video_run, stride=1)
    assert result["truncated"] and 10 < result["frames"] < 60 and result["expected_frames"] == 60


def test_image_model_is_refused(trained_run, clips):
    with pytest.raises(LstmimgError, match="an image model, but this command needs a video model"):
        classify_video(next((clips / "val" / "left").iterdir()), trained_run)


def serve(folder):
    """A loopback HTTP server for ``folder``: URLs of files in it are live sources."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_video_file_served_over_http_is_read_once_like_the_file(video_run, tmp_path):
    """A URL to a video file (its container gives a length) is finite: read once and ended, with the
    windows the same file gives from disk, even with reconnecting on (it used to be read again forever)."""
    rng = np.random.default_rng(5)
    write_clip(tmp_path / "served.avi", sum((moving_square(1, 6, rng) for _ in range(6)), []))
    server = serve(tmp_path)
    events = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.avi"
        started = time.monotonic()
        result = classify_video(url, video_run, window="6", stride=1, on_window=events.append, reconnect=True)
        took = time.monotonic() - started
    finally:
        server.shutdown()
    local = classify_video(tmp_path / "served.avi", video_run, window="6", stride=1)
    assert took < 20 and result["path"] == url and result["expected_frames"] == 36 and not result["truncated"]
    assert [w["label"] for w in result["windows"]] == [w["label"] for w in local["windows"]] and len(events) == 6
    assert [w["start"] for w in result["windows"]] == [w["start"] for w in local["windows"]]  # video time, not wall-clock


def test_video_save_writes_every_frame_at_the_source_rate(tmp_path):
    import cv2

    from lstmimg.sample import sample_data_dir

    source = write_clip(tmp_path / "src.avi", moving_square(1, 30, np.random.default_rng(0), size=32, speed=0), fps=10)
    result = run("video", source, "--fps", "5", "--save", tmp_path / "out.avi")
    assert result.exit_code == 0, result.output
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    n = 0
    while cap.grab():
        n += 1
    assert n == 30
    assert sample_data_dir()
    one_line_error(run("video", source, "--stride", "0"), "--stride must be >= 1")


def test_classify_video_leaves_torch_threads_alone(monkeypatch):
    from lstmimg.engine.infer.timeline import classify_video
    from lstmimg.sample import sample_data_dir

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    classify_video(sorted((sample_data_dir() / "clips" / "val" / "left").iterdir())[0])
    assert calls == []


def test_an_interrupted_file_run_keeps_the_old_save_file_whole(video_run, tmp_path):
    """Ctrl-C on a file source: the recording the user had stays as it was, and no partial file is left
    (a live source, where Ctrl-C is the normal end, keeps its recording: the next test)."""
    rng = np.random.default_rng(3)
    source = write_clip(tmp_path / "long.avi", sum((moving_square(1, 6, rng) for _ in range(8)), []))
    out = tmp_path / "labelled.mp4"
    out.write_bytes(b"the user's earlier recording")

    def stop(window):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        classify_video(source, video_run, window="6", stride=1, save=out, on_window=stop)
    assert out.read_bytes() == b"the user's earlier recording"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.mp4", "long.avi"]


def test_ctrl_c_on_a_live_source_scores_no_window_twice_and_keeps_the_recording(video_run, tmp_path, monkeypatch):
    """A Ctrl-C while --save writes a window's frames ends a live source; the frames of that window are
    not scored again (each window's start appears once) and the recording is kept."""
    import lstmimg.data.video_io as video_io

    rng = np.random.default_rng(5)
    writes = []
    original = video_io.VideoWriter.write

    def write(self, bgr):
        writes.append(1)
        if len(writes) == 9:  # inside the second window's frames
            raise KeyboardInterrupt
        original(self, bgr)

    monkeypatch.setattr(video_io.VideoWriter, "write", write)
    server = MjpegServer(sum((moving_square(1, 6, rng) for _ in range(6)), []), fps=25).start()  # a live stream
    try:
        result = classify_video(server.url, video_run, window="6", stride=1, save=tmp_path / "rec.avi", max_seconds=20, reconnect=False)
    finally:
        server.stop()
    starts = [w["start"] for w in result["windows"]]
    assert len(starts) == len(set(starts)) == 2
    assert (tmp_path / "rec.avi").is_file() and not list(tmp_path.glob(".rec*"))


def test_max_seconds_on_a_file_means_seconds_of_the_video(video_run, tmp_path):
    """--max-seconds on a file reads that much of the video, whatever the machine's speed, and is no
    truncation."""
    rng = np.random.default_rng(4)
    source = write_clip(tmp_path / "ten_s.avi", sum((moving_square(1, 5, rng) for _ in range(20)), []), fps=10)  # 100 frames, 10 s
    result = classify_video(source, video_run, stride=1, max_seconds=3)
    assert result["frames"] == 30 and result["sampled_frames"] == 30 and not result["truncated"]
    assert result["windows"][-1]["end"] == pytest.approx(3.0)
    cli = run("video", source, "--model", video_run, "--max-seconds", "3")
    assert cli.exit_code == 0 and "truncated" not in cli.stderr


def test_output_paths_are_checked_before_the_work(video_run, clips, tmp_path):
    """A --save, --csv or --plot that cannot be written fails at once, in one line, leaving nothing."""
    source = next((clips / "val" / "right").iterdir())
    folder = tmp_path / "outdir"
    folder.mkdir()
    one_line_error(run("video", source, "--model", video_run, "--save", folder), str(folder), "is a folder; --save takes a file name")
    one_line_error(run("video", source, "--model", video_run, "--csv", tmp_path / "no" / "w.csv"), "no folder", "to write --csv into")
    one_line_error(run("video", source, "--model", video_run, "--plot", folder), "is a folder; --plot takes a file name")
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob(".*"))
