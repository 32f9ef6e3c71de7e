"""Several sources at once: batched across sources with results equal to each alone, live MJPEG streams
over HTTP that drop frames when the model is slow, reconnect after the server restarts, and a source
that never answers while the others go on."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import MjpegServer, moving_square, run_cli, write_clip

from lstmimg.data.sources import SourceEvent
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.engine.infer.streams import WindowEvent, follow
from lstmimg.engine.infer.timeline import classify_sources, classify_video
from lstmimg.runs import BUNDLED_MODELS


@pytest.fixture(scope="module")
def clips_model():
    return load_checkpoint(BUNDLED_MODELS["video"])


def long_clip(path, seed: int, repeats: int = 5, size: int = 32):
    rng = np.random.default_rng(seed)
    return write_clip(path, [f for i in range(repeats) for f in moving_square(1 if (i + seed) % 2 else -1, 8, rng, size=size)])


def test_several_files_at_once_equal_each_alone(clips_model, tmp_path):
    files = [long_clip(tmp_path / f"v{i}.avi", i, repeats=3 + i) for i in range(3)]  # different lengths: windows end apart
    windows = lambda events: [e for e in events if isinstance(e, WindowEvent)]  # noqa: E731
    alone = [windows(follow([f], clips_model, window="4", stride=1, device="cpu")) for f in files]
    together = windows(follow(files, clips_model, window="4", stride=1, device="cpu", drop=False))
    assert max(len({e.source for e in together[i : i + 3]}) for i in range(len(together))) == 3  # scored side by side
    for f, a in zip(files, alone):
        b = [e for e in together if e.source == str(f)]
        assert [w.label for w in a] == [w.label for w in b] and len(a) >= 6 and not any(w.dropped for w in b)
        assert max(abs(x - y) for wa, wb in zip(a, b) for x, y in zip(wa.probs, wb.probs)) <= 1e-5
    results = classify_sources(files, clips_model, window="4", device="cpu", drop=False)
    top = lambda r: [t["label"] for t in r["top"]]  # noqa: E731
    assert [top(r) for r in results] == [top(classify_video(f, clips_model, window="4", device="cpu")) for f in files]


def test_a_slow_model_on_a_live_stream_drops_frames_and_stays_current(clips_model):
    rng = np.random.default_rng(1)
    server = MjpegServer(moving_square(1, 8, rng, size=32), fps=25).start()
    inner = clips_model.model
    real_window = inner.forward_window

    def slow_window(clips, state=None):  # about 0.3 s a window: far slower than 25 fps brings them
        time.sleep(0.3)
        return real_window(clips, state)

    inner.forward_window = slow_window
    try:
        events = list(follow([server.url], clips_model, window="4", stride=1, device="cpu", max_seconds=3))
    finally:
        del inner.forward_window
        server.stop()
    windows = [e for e in events if isinstance(e, WindowEvent)]
    assert [e.event for e in events if isinstance(e, SourceEvent)] == ["opened", "ended"]
    assert sum(w.dropped for w in windows) > 20  # 75 frames came in 3 s; the model scored a few windows of 4
    assert max(w.latency_ms for w in windows) < 1000  # each label is of frames at most about one window old


def test_a_stream_that_drops_is_reopened_and_a_dead_one_does_not_stop_the_others(clips_model):
    rng = np.random.default_rng(2)
    server = MjpegServer(moving_square(1, 8, rng, size=32), fps=25).start()
    seen: list = []
    stop = threading.Event()

    def restart():
        time.sleep(1.0)
        server.stop()  # the camera goes away ...
        time.sleep(0.7)
        server.start()  # ... and comes back on the same address

    threading.Thread(target=restart, daemon=True).start()
    dead = "http://127.0.0.1:9/none.mjpg"
    try:
        for e in follow([server.url, dead], clips_model, window="4", stride=1, device="cpu", max_seconds=6, stop=stop):
            seen.append(e)
            if isinstance(e, SourceEvent) and e.event == "reopened":
                later = time.monotonic() + 1.0
            if any(isinstance(x, SourceEvent) and x.event == "reopened" for x in seen) and time.monotonic() > later:
                stop.set()
    finally:
        server.stop()
    live = [e.event for e in seen if isinstance(e, SourceEvent) and e.source == server.url]
    assert live[:3] == ["opened", "lost", "reopened"]
    assert [(e.event, e.detail) for e in seen if isinstance(e, SourceEvent) and e.source == dead] == [("failed", f"{dead}: cannot open the stream")]
    reopened_at = next(i for i, e in enumerate(seen) if isinstance(e, SourceEvent) and e.event == "reopened")
    after = [e for e in seen[reopened_at:] if isinstance(e, WindowEvent)]
    assert after and after[0].reset  # the state begins anew after a reconnect


def test_cli_follows_several_sources_into_json_csv_jsonl_and_saves(tmp_path):
    a, b = long_clip(tmp_path / "a.avi", 0), long_clip(tmp_path / "b.avi", 1)
    result = run_cli("video", a, b, "--window", "4", "--json", "--csv", tmp_path / "w.csv", "--jsonl", tmp_path / "e.jsonl",
                     "--save", tmp_path / "out.avi", "--device", "cpu")
    assert result.exit_code == 0, result.output
    objects = json.loads(result.stdout)
    assert [o["path"] for o in objects] == [str(a), str(b)] and all(o["dropped"] == 0 for o in objects)
    rows = (tmp_path / "w.csv").read_text().splitlines()
    assert rows[0].startswith("source,start,end,frames,label,prob") and {r.split(",")[0] for r in rows[1:]} == {str(a), str(b)}
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events if "event" in e} == {"opened", "ended"}
    windows = [e for e in events if "label" in e]
    assert len(windows) == len(rows) - 1 and set(windows[0]) == {"source", "start", "end", "frames", "label", "prob", "latency_ms", "dropped", "reset"}
    assert sorted(p.name for p in tmp_path.glob("out-*.avi")) == ["out-1-a.avi", "out-2-b.avi"]

    missing = tmp_path / "missing.avi"
    result = run_cli("video", a, missing, "--window", "4", "--json", "--device", "cpu")
    assert result.exit_code == 1 and len(json.loads(result.stdout)) == 1
    assert f"error: {missing}: no such file" in result.stderr and "Traceback" not in result.output


def test_sigterm_ends_a_live_run_normally_with_its_files_whole(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import cv2

    server = MjpegServer(moving_square(1, 8, np.random.default_rng(3), size=32), fps=25).start()
    out = [tmp_path / name for name in ("e.jsonl", "w.csv", "rec.avi")]
    cmd = [sys.executable, "-m", "lstmimg", "video", server.url, "--window", "4", "--device", "cpu", "--jsonl", out[0], "--csv", out[1], "--save", out[2]]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out[0].exists() or out[0].read_text().count('"label"') < 3):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        server.stop()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert "top labels" in stdout and "Traceback" not in stderr
    events = [json.loads(line) for line in out[0].read_text().splitlines()]  # every line whole
    windows = [e for e in events if "label" in e]
    assert events[0]["event"] == "opened" and len(windows) >= 3
    assert len(out[1].read_text().splitlines()) == len(windows) + 1
    cap = cv2.VideoCapture(str(out[2]))
    assert cap.isOpened() and cap.read()[0]  # the recording is a playable video
