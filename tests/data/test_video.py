
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import write_clip

from lstmimg.data.video_io import FrameReader, VideoWriter, draw_label, is_live, open_video, read_video
from lstmimg.errors import LstmimgError


@pytest.fixture
def clip(tmp_path):
    """20 frames, 10 fps, where frame t has brightness 10*t (so order and sampling are checkable)."""
    frames = [np.full((24, 32), 10 * t, np.uint8) for t in range(20)]
    return write_clip(tmp_path / "ramp.avi", frames)


def test_reads_every_frame_in_order_as_rgb(clip):
    frames, reader = read_video(clip)
    assert frames.shape == (20, 24, 32, 3) and frames.dtype == np.uint8
    means = frames.mean(axis=(1, 2, 3))
    assert np.all(np.diff(means) > 5)  # in order
    assert reader.frames_decoded == 20 and not reader.truncated
    assert reader.info.fps == pytest.approx(10) and reader.info.frame_count == 20


def test_resize_and_stride(clip):
    frames, _ = read_video(clip, size=(8, 12), stride=3)
    assert frames.shape == (7, 8, 12, 3)  # frames 0, 3, ..., 18
    assert abs(frames[1].mean() - 30) < 4


def test_fps_sampling_and_timestamps(clip):
    with FrameReader(clip, fps=5) as reader:
        frames = list(reader)
    assert [f.index for f in frames] == list(range(0, 20, 2))
    assert [round(f.time, 2) for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert reader.output_fps == pytest.approx(5)


def test_short_clip(tmp_path):
    path = write_clip(tmp_path / "one.avi", [np.zeros((16, 16), np.uint8)])
    frames, _ = read_video(path)
    assert frames.shape[0] == 1


def test_read_frames_reads_only_the_frames_picked(tmp_path):
    from lstmimg.data.video_io import read_frames

    rng = np.random.default_rng(3)
    path = write_clip(tmp_path / "v.avi", [rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in range(20)])
    whole, _ = read_video(path, (12, 16))
    counts = []
    picked = read_frames(path, lambda n: counts.append(n) or [3, 5, 5, 19], (12, 16))
    assert counts == [20] and picked.shape == (4, 12, 16, 3)
    assert np.array_equal(picked, whole[[3, 5, 5, 19]])
    with pytest.raises(LstmimgError, match="v.avi: ended before frame 25 of the 20 its header claims"):
        read_frames(path, lambda n: [0, 25])
    cut = tmp_path / "cut.avi"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(LstmimgError, match="cut.avi: ended before frame 19"):
        read_frames(cut, lambda n: [n - 1])


def test_truncated_file_yields_the_frames_that_decode(tmp_path):
    rng = np.random.default_rng(0)
    full = write_clip(tmp_path / "full.avi", [rng.integers(0, 255, (48, 64), dtype=np.uint8) for _ in range(30)])
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    frames, reader = read_video(cut)
    assert 5 <= len(frames) < 30
    assert reader.truncated and reader.info.frame_count == 30


@pytest.mark.parametrize(
    "content, message",
    [(None, "no such file"), (b"", "empty file"), (b"this is text, not a video" * 20, "not a video OpenCV can read")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LstmimgError, match=f"{path}: {message}"):
        open_video(path)


def test_an_image_is_not_a_video(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "still.png")
    with pytest.raises(LstmimgError, match="still.png: an image, not a video"):
        open_video(tmp_path / "still.png")


def test_stream_that_cannot_be_opened():
    assert is_live("0") and is_live("rtsp://127.0.0.1:9/none") and not is_live("clip.mp4")
    with pytest.raises(LstmimgError, match="rtsp://127.0.0.1:9/none: cannot open the stream"):
        open_video("rtsp://127.0.0.1:9/none")


def test_bad_sampling_options(clip):
    with pytest.raises(LstmimgError, match="--stride must be >= 1"):
        FrameReader(clip, stride=0)
    with pytest.raises(LstmimgError, match="--fps must be > 0"):
        FrameReader(clip, fps=-1)


def test_closing_early_stops_the_decoding_thread(clip):
    reader = FrameReader(clip, queue_size=2)
    next(iter(reader))
    reader.close()
    assert not reader._thread.is_alive()


def test_writer_is_atomic_and_readable(tmp_path):
    out = tmp_path / "labelled.mp4"
    writer = VideoWriter(out, 10, (32, 48))
    for _ in range(8):
        writer.write(draw_label(np.zeros((32, 48, 3), np.uint8), "right 0.99"))
    assert not out.exists()  # still being written under a temporary name
    writer.close()
    frames, _ = read_video(out)
    assert frames.shape == (8, 32, 48, 3)
    assert frames[0, :10, :20].max() > 100  # the label band's text is there
    assert [p.name for p in tmp_path.iterdir()] == ["labelled.mp4"]


def test_frame_reader_close_never_releases_during_grab(tmp_path, monkeypatch):
    import lstmimg.data.video_io as VV

    entered, proceed = threading.Event(), threading.Event()
    log = []

    class SlowCapture:
        grabbing = False

        def grab(self):
            self.grabbing = True
            entered.set()
            proceed.wait(10)
            self.grabbing = False
            return False

        def retrieve(self):
            return False, None

        def release(self):
            log.append("release during grab" if self.grabbing else "release")

    info = VV.VideoInfo("fake", 10.0, 5, 16, 16, False)
    monkeypatch.setattr(VV, "open_video", lambda source: (SlowCapture(), info))
    monkeypatch.setattr(VV.FrameReader, "CLOSE_TIMEOUT", 0.2, raising=False)
    reader = VV.FrameReader("fake")
    assert entered.wait(3)
    reader.close()
    proceed.set()
    reader._thread.join(3)
    assert log == ["release"]


def test_importing_video_changes_no_process_state():
    code = (
        "import os, cv2\nn = cv2.getNumThreads(); env = dict(os.environ)\n"
        "import lstmimg.data.video_io, lstmimg.data.clips, lstmimg.data.loaders\n"
        "print(cv2.getNumThreads() == n and dict(os.environ) == env)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
