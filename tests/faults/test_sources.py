"""`lstmimg video` and its sources under faults: bad options next to existing outputs, a source that never
opens, a camera that drops and comes back, a reader thread that raises, a stream with no frame rate,
stdout kept for JSON lines, a day-long stream's memory (issue 29, items 3, 5, 7, 8, 10-13, 24)."""

from __future__ import annotations

import csv
import json
import signal
import threading
import time

import numpy as np
import pytest
from conftest import VIDEO_MODEL, Command, MjpegServer, assert_one_line_error, moving_square, run_cli, write_clip

from lstmimg.data.sources import SourceEvent
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.engine.infer.streams import WindowEvent, follow

pytestmark = pytest.mark.timeout(90)  # a hang is a failure, found in 90 s, not in the suite's 600


@pytest.fixture(scope="module")
def clips_model():
    return load_checkpoint(VIDEO_MODEL)


@pytest.fixture
def clip(tmp_path):
    rng = np.random.default_rng(3)
    return write_clip(tmp_path / "clip.avi", [f for i in range(4) for f in moving_square(1 if i % 2 else -1, 8, rng, size=32)])


@pytest.mark.parametrize("window", ["abc", "0", "-3"])
def test_a_bad_window_leaves_an_existing_jsonl_whole(tmp_path, clip, window):
    """Item 3: the file used to be emptied before the option was checked."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"old": 1}\n')
    result = run_cli("video", clip, "--jsonl", events, "--window", window, "--overwrite")
    assert_one_line_error(result, "--window")
    assert events.read_text() == '{"old": 1}\n'


@pytest.mark.parametrize("option", ["--jsonl", "--csv", "--save", "--plot"])
def test_an_existing_output_is_refused_unless_overwrite(tmp_path, clip, option):
    """Item 3: `video` never refused an existing output file (predict does)."""
    target = tmp_path / {"--jsonl": "e.jsonl", "--csv": "w.csv", "--save": "s.avi", "--plot": "p.png"}[option]
    target.write_bytes(b"mine")
    assert_one_line_error(run_cli("video", clip, option, target), f"{target}: already exists (--overwrite replaces it)")
    assert target.read_bytes() == b"mine"
    result = run_cli("video", clip, option, target, "--overwrite")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() != b"mine"


def test_ctrl_c_of_a_file_run_leaves_the_old_jsonl_and_csv_whole(tmp_path, monkeypatch, clip):
    """Item 3: a Ctrl-C in the middle of a file used to leave --jsonl truncated."""
    import lstmimg.cli.video as cli_video

    jsonl, rows = tmp_path / "e.jsonl", tmp_path / "w.csv"
    jsonl.write_text("old events\n")
    rows.write_text("old rows\n")
    real_add = cli_video.EventLog.add
    seen = []

    def add(self, e):
        real_add(self, e)
        seen.append(e)
        if sum(isinstance(x, WindowEvent) for x in seen) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_video.EventLog, "add", add)
    result = run_cli("video", clip, "--jsonl", jsonl, "--csv", rows, "--window", "4", "--overwrite")
    assert result.exit_code == 130, result.output
    assert jsonl.read_text() == "old events\n" and rows.read_text() == "old rows\n"
    assert not list(tmp_path.glob(".*partial*"))


def test_sigterm_with_a_dead_and_a_live_source_ends_normally_with_every_output(tmp_path):
    """Item 5: a source that never opened used to make the whole run count as not live: exit 130, no
    summary, no line for the dead source, no --csv."""
    server = MjpegServer(moving_square(1, 8, np.random.default_rng(1), size=32), fps=25).start()
    try:
        cmd = Command("video", server.url, "rtsp://127.0.0.1:9/cam", "--csv", "w.csv", "--jsonl", "e.jsonl", "--window", "4", "--model", VIDEO_MODEL, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and '"start"' not in ((tmp_path / "e.jsonl").read_text() if (tmp_path / "e.jsonl").exists() else ""):
            time.sleep(0.1)
        cmd.signal(signal.SIGTERM)
        code = cmd.wait(60)
    finally:
        server.stop()
    assert code == 1, cmd.stderr  # the dead source is an error; the live one ended normally
    errors = [line for line in cmd.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "rtsp://127.0.0.1:9/cam" in errors[0] and "Traceback" not in cmd.stderr
    assert server.url in cmd.stdout  # the live source's summary
    rows = list(csv.reader(open(tmp_path / "w.csv")))
    assert rows[0][0] == "source" and len(rows) > 1 and {r[0] for r in rows[1:]} == {server.url}  # item 12: the source column stays
    assert cmd.survivors() == []


def test_a_camera_that_drops_and_comes_back_keeps_its_times_growing_and_its_last_window_state(clips_model):
    """Items 7 and 8: window times used to start again at 0 after a reconnect, and the last window of a
    connection was scored from a zero state and marked reset."""
    server = MjpegServer(moving_square(1, 8, np.random.default_rng(2), size=32), fps=25).start()
    stop = threading.Event()

    def restart():
        time.sleep(1.5)
        server.stop()
        time.sleep(0.8)
        server.start()
        time.sleep(2.0)
        stop.set()

    threading.Thread(target=restart, daemon=True).start()
    try:
        events = list(follow([server.url], clips_model, window="4", stride=1, device="cpu", stop=stop))
    finally:
        server.stop()
    kinds = [e.event if isinstance(e, SourceEvent) else "window" for e in events]
    assert "lost" in kinds and "reopened" in kinds, kinds
    windows = [e for e in events if isinstance(e, WindowEvent)]
    starts = [w.start for w in windows]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), starts  # monotonic across the reconnect
    lost, reopened = kinds.index("lost"), kinds.index("reopened")
    before = [e for e in events[:lost] if isinstance(e, WindowEvent)]
    after = [e for e in events[reopened:] if isinstance(e, WindowEvent)]
    assert before[0].reset and not any(w.reset for w in before[1:])  # the connection's last window reads on from its state
    assert after[0].reset and not any(w.reset for w in after[1:])  # the next connection begins anew, once


def test_a_reader_thread_that_raises_fails_its_source_and_the_others_go_on(clips_model, clip, tmp_path, monkeypatch):
    """Item 10: any error in a reader thread used to print a thread traceback and hang `video` forever."""
    import lstmimg.data.video_io as video_io

    real = video_io.FrameReader.__iter__

    def broken(self):
        if "bad" in self.info.source:
            raise RuntimeError("a decoder bug")
        yield from real(self)

    monkeypatch.setattr(video_io.FrameReader, "__iter__", broken)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(clip.read_bytes())
    started = time.monotonic()
    events = list(follow([clip, bad], clips_model, window="4", stride=1, device="cpu"))
    assert time.monotonic() - started < 30
    failed = [e for e in events if isinstance(e, SourceEvent) and e.event == "failed"]
    assert len(failed) == 1 and failed[0].source == str(bad) and "RuntimeError: a decoder bug" in failed[0].detail
    assert any(isinstance(e, WindowEvent) and e.source == str(clip) for e in events)


def test_a_webcam_index_too_large_for_opencv_is_one_line(tmp_path):
    """Item 10: `lstmimg video 99999999999999999999` used to hang after a thread traceback."""
    cmd = Command("video", "99999999999999999999", "--model", VIDEO_MODEL, cwd=tmp_path)
    assert cmd.wait(60) == 1
    errors = [line for line in cmd.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "99999999999999999999: cannot open the stream" in errors[0] and "Traceback" not in cmd.stderr


def test_window_in_seconds_on_a_source_without_a_rate_fails_that_source_only(clips_model, clip, monkeypatch):
    """Check-and-say: `--window 2s` with one source that has no frame rate used to end every source."""
    import lstmimg.data.video_io as video_io

    real = video_io.open_video

    def no_rate(source):
        cap, info = real(source)
        if str(source).endswith("norate.avi"):
            info.fps = 0.0
        return cap, info

    monkeypatch.setattr(video_io, "open_video", no_rate)
    other = clip.with_name("norate.avi")
    other.write_bytes(clip.read_bytes())
    events = list(follow([clip, other], clips_model, window="1s", stride=1, device="cpu"))
    failed = [e for e in events if isinstance(e, SourceEvent) and e.event == "failed"]
    assert [e.source for e in failed] == [str(other)] and "frame rate" in failed[0].detail
    assert sum(isinstance(e, WindowEvent) and e.source == str(clip) for e in events) >= 3


def test_ended_comes_after_the_last_window(clips_model, clip):
    """Issue 30, item 9: the `ended` event used to come before the source's last window."""
    events = list(follow([clip], clips_model, window="5", stride=1, device="cpu"))
    assert isinstance(events[-1], SourceEvent) and events[-1].event == "ended"
    assert isinstance(events[-2], WindowEvent)


def test_jsonl_to_stdout_carries_json_lines_only(clip):
    """Item 11: the summary and timeline used to follow the JSON lines on stdout."""
    result = run_cli("video", clip, "--jsonl", "-", "--window", "4")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) >= 5 and all(isinstance(json.loads(line), dict) for line in lines)
    assert "top labels" in result.stderr


def test_video_and_predict_give_a_file_the_same_label(tmp_path):
    """Item 13: `video` read one window from frame 0 and could disagree with `predict`/`eval` on short files."""
    from conftest import write_clips

    root = write_clips(tmp_path / "clips")
    files = sorted((root / "val").rglob("*.avi"))[::3]
    predicted = run_cli("predict", *files, "--model", VIDEO_MODEL, "--json", "--workers", "0")
    assert predicted.exit_code == 0, predicted.output
    by_path = {r["path"]: r for r in json.loads(predicted.stdout)}
    video = run_cli("video", *files, "--model", VIDEO_MODEL, "--json")
    assert video.exit_code == 0, video.output
    for r in json.loads(video.stdout):
        p = by_path[r["path"]]
        assert r["label"] == p["label"] and abs(r["prob"] - p["prob"]) <= 1e-4


def test_a_live_sources_timeline_stays_bounded(tmp_path):
    """Item 24: a live run kept every window (and, without a status line, every latency): 135,000 windows
    a day of one source."""
    from lstmimg.cli.video import EventLog
    from lstmimg.engine.infer.timeline import LIVE_KEPT, Timeline

    source = "rtsp://127.0.0.1/cam"
    timeline = Timeline(source, ["a", "b"])
    log = EventLog(None, None, [source], ["a", "b"], True, None, False, False)
    for i in range(3 * LIVE_KEPT):
        e = WindowEvent(source, i * 0.5, i * 0.5 + 0.5, 8, "ab"[(i // 3) % 2], 0.9, [0.9, 0.1], 12.0)
        timeline.add(e)
        log.add(e)
    result = timeline.result("m")
    assert len(result["windows"]) == LIVE_KEPT and len(result["segments"]) == LIVE_KEPT
    assert result["sampled_frames"] == 8 * 3 * LIVE_KEPT and result["windows"][-1]["start"] == (3 * LIVE_KEPT - 1) * 0.5
    assert log.stats[source]["latency"] == []
    assert Timeline(str(tmp_path / "f.avi"), ["a", "b"]).windows.maxlen is None  # a file keeps every window


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and then sends ``reply`` (None: nothing, ever:
    a camera that stalls)."""

    def __init__(self, reply: bytes | None):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.reply, self.conns, self.done = reply, [], threading.Event()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/cam.mjpg"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.reply is not None:
                try:
                    conn.sendall(self.reply)
                    conn.close()
                except OSError:
                    pass

    def stop(self):
        self.done.set()
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("reply", [pytest.param(None, marks=pytest.mark.long), b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n" + bytes(range(256)) * 64],
                         ids=["stalls", "garbage"])
def test_a_source_that_stalls_or_sends_garbage_does_not_hold_the_others(tmp_path, reply):
    """A camera that accepts and never answers, or answers with garbage bytes, beside a live one: the live
    one's windows come, SIGTERM ends the run in bounded time, the bad source is named, nothing is left."""
    bad = SilentServer(reply)
    good = MjpegServer(moving_square(1, 8, np.random.default_rng(4), size=32), fps=25).start()
    try:
        cmd = Command("video", good.url, bad.url, "--jsonl", "e.jsonl", "--window", "4", "--no-reconnect", "--model", VIDEO_MODEL, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (tmp_path / "e.jsonl").exists() or (tmp_path / "e.jsonl").read_text().count('"start"') < 3:
            assert time.monotonic() < deadline and cmd.proc.poll() is None, cmd.stderr
            time.sleep(0.1)
        cmd.signal(signal.SIGTERM)
        code = cmd.wait(40)
    finally:
        good.stop()
        bad.stop()
    assert code in (0, 1) and "Traceback" not in cmd.stderr, cmd.stderr
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert sum(e.get("source") == good.url and "start" in e for e in events) >= 3
    if reply is not None:
        assert any(e.get("source") == bad.url and e.get("event") == "failed" for e in events) and bad.url in cmd.stderr
    assert cmd.survivors() == []
