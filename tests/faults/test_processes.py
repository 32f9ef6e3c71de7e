"""Commands as whole processes under signals: SIGINT, SIGTERM and kill -9 at a random point, one process
and `--devices 2`; afterwards the outputs are whole (the old ones, or complete new ones), the command says
what to do next, and no process it started is left running (issue 29, items 14-16, and the fault suite)."""

from __future__ import annotations

import json
import random
import signal
import time

import numpy as np
import pytest
from conftest import IMAGE_MODEL, VIDEO_MODEL, Command, MjpegServer, moving_square, write_class_folders, write_clip

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture
def many_images(tmp_path):
    """600 small images: enough for a predict to be stopped half-way."""
    return write_class_folders(tmp_path / "many", 200, seed=4)


@pytest.fixture
def some_images(tmp_path):
    """120 small images, for a sharded run that is not stopped."""
    return write_class_folders(tmp_path / "some", 40, seed=4)


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.long  # 14 s: beyond CI's budget (test_two_processes_give_the_results_of_one runs sharded predict in CI)
def test_sharded_predict_with_an_unreadable_file_in_the_second_share(tmp_path, some_images):
    """Item 14: a torchrun traceback, the file's error never shown, a false "a process stopped", and a
    --resume that failed the same way forever."""
    bad = some_images / "vertical" / "zzz_bad.png"  # sorted last: in rank 1's share
    bad.write_bytes(b"not an image")
    cmd = Command("predict", some_images, "--jsonl", "r.jsonl", "--devices", "2", "--model", IMAGE_MODEL, "--workers", "0", cwd=tmp_path)
    assert cmd.wait(150) == 1, cmd.stderr
    errors = [line for line in cmd.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {bad}: not an image Pillow can read"], cmd.stderr
    assert "Traceback" not in cmd.stderr and "a process stopped" not in cmd.stderr
    rows = lines(tmp_path / "r.jsonl")
    assert len(rows) == 121 and [r["path"] for r in rows if "error" in r] == [str(bad)] and not list(tmp_path.glob(".r.jsonl.part*"))
    assert cmd.survivors() == []


def test_sharded_commands_check_their_inputs_before_starting_processes(tmp_path):
    """Item 15: the error twice, then 48 lines of torchrun traceback."""
    data = write_class_folders(tmp_path / "bars", 2, seed=1)
    for args, fragment in ((("train", "nodata", "--devices", "2"), "nodata: no such folder"),
                           (("predict", data, "--jsonl", "x.jsonl", "--devices", "2", "--model", "nope.pt"), "nope.pt: no such checkpoint"),
                           (("train", data, "--devices", "2", "--out", "/proc/lstmimg-run"),  # rank 1 printed a traceback after rank 0's error
                            "/proc/lstmimg-run: cannot create this folder (--out): /proc is not a folder that can be written")):
        cmd = Command(*args, cwd=tmp_path)
        assert cmd.wait(60) == 1
        assert [line[: len(fragment) + 7] for line in cmd.stderr.strip().splitlines()] == [f"error: {fragment}"], cmd.stderr
        assert not (tmp_path / "x.jsonl").exists() and not list(tmp_path.glob(".x.jsonl*"))


@pytest.mark.long  # 18.5 s a case: beyond CI's budget (test_ranks_decide_together runs two training processes in CI)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_sharded_training_stops_every_process_with_last_pt(tmp_path, signum):
    """Item 16: SIGTERM killed only the launcher; torchrun and both workers trained on, orphaned."""
    data = write_class_folders(tmp_path / "bars", 60, seed=1)
    cmd = Command("train", data, "--devices", "2", "--epochs", "200", "--out", "run", "--no-tensorboard", "--workers", "0", cwd=tmp_path)
    cmd.wait_for_text("epoch   2/200", timeout=120)
    cmd.signal(signum)
    code = cmd.wait(90)
    assert code == 128 + signum, cmd.stderr
    assert (tmp_path / "run" / "last.pt").is_file()
    assert "resume with: lstmimg train --resume run" in cmd.stderr and cmd.stderr.count("interrupted:") == 1
    assert cmd.survivors() == []


@pytest.mark.long
def test_kill_9_of_the_launcher_leaves_no_worker_running(tmp_path, many_images):
    """The launcher killed outright: Linux's parent-death signal stops torchrun, which stops its workers."""
    cmd = Command("predict", many_images, "--jsonl", "r.jsonl", "--devices", "2", "--model", IMAGE_MODEL, "--batch-size", "2", "--workers", "0", cwd=tmp_path)
    cmd.wait_for_text("starting 2 processes", timeout=60)
    time.sleep(random.uniform(3.0, 6.0))
    cmd.signal(signal.SIGKILL)
    cmd.wait(30)
    assert cmd.survivors(grace=60) == []
    done = {r["path"] for part in tmp_path.glob(".r.jsonl.part*") for r in lines(part)}
    resumed = Command("predict", many_images, "--jsonl", "r.jsonl", "--devices", "2", "--model", IMAGE_MODEL, "--resume", cwd=tmp_path)
    assert resumed.wait(150) == 0, resumed.stderr
    results = lines(tmp_path / "r.jsonl")
    assert len(results) == len({r["path"] for r in results}) == 600 and done <= {r["path"] for r in results}


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, marks=pytest.mark.long), signal.SIGTERM, pytest.param(signal.SIGKILL, marks=pytest.mark.long)])
def test_one_process_predict_stopped_at_a_random_point_resumes_to_the_whole_file(tmp_path, many_images, signum):
    cmd = Command("predict", many_images, "--jsonl", "r.jsonl", "--model", IMAGE_MODEL, "--batch-size", "4", "--workers", "0", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while len(lines_so_far := (tmp_path / "r.jsonl").read_text().splitlines() if (tmp_path / "r.jsonl").exists() else []) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.uniform(0.0, 0.3))
    cmd.signal(signum)
    code = cmd.wait(60)
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[signum] or code == 0, cmd.stderr  # 0: it finished first
    assert "Traceback" not in cmd.stderr and len(lines_so_far) >= 8
    if signum != signal.SIGKILL and code:
        assert "--resume" in cmd.stderr
    resumed = Command("predict", many_images, "--jsonl", "r.jsonl", "--model", IMAGE_MODEL, "--resume", cwd=tmp_path)
    assert resumed.wait(90) == 0, resumed.stderr
    paths = [r["path"] for r in lines(tmp_path / "r.jsonl")]
    assert len(paths) == len(set(paths)) == 600
    assert cmd.survivors() == [] and resumed.survivors() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.long), pytest.param(signal.SIGKILL, marks=pytest.mark.long)])
def test_a_file_video_stopped_leaves_earlier_outputs_whole(tmp_path, signum):
    rng = np.random.default_rng(0)
    write_clip(tmp_path / "long.avi", [f for i in range(600) for f in moving_square(1 if i % 2 else -1, 8, rng, size=32)])  # long enough that the run is still going when the signal comes, loaded machine or not
    for name in ("w.csv", "e.jsonl"):
        (tmp_path / name).write_text("earlier\n")
    cmd = Command("video", "long.avi", "--csv", "w.csv", "--jsonl", "e.jsonl", "--overwrite", "--window", "4", "--model", VIDEO_MODEL, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (tmp_path / ".e.jsonl.partial").exists() or len((tmp_path / ".e.jsonl.partial").read_text().splitlines()) < 5:
        assert time.monotonic() < deadline and cmd.proc.poll() is None, cmd.stderr
        time.sleep(0.02)
    cmd.signal(signum)
    code = cmd.wait(60)
    if code == 0:  # it finished first (a loaded machine can hold this process back past the whole run): then both files are complete
        assert json.loads((tmp_path / "e.jsonl").read_text().splitlines()[-1])["event"] == "ended", cmd.stderr
        assert len((tmp_path / "w.csv").read_text().splitlines()) > 5 and not list(tmp_path.glob(".*.partial"))
        return
    assert code in {signal.SIGINT: (130,), signal.SIGTERM: (143, 130), signal.SIGKILL: (-9,)}[signum], cmd.stderr
    assert (tmp_path / "w.csv").read_text() == "earlier\n" and (tmp_path / "e.jsonl").read_text() == "earlier\n"
    assert "Traceback" not in cmd.stderr and cmd.survivors() == []
    if signum != signal.SIGKILL:
        assert not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize("signum", [pytest.param(signal.SIGINT, marks=pytest.mark.long), signal.SIGTERM])
def test_a_live_video_stopped_keeps_every_window_once(tmp_path, signum):
    server = MjpegServer(moving_square(1, 8, np.random.default_rng(2), size=32), fps=25).start()
    try:
        cmd = Command("video", server.url, "--csv", "w.csv", "--jsonl", "e.jsonl", "--window", "4", "--model", VIDEO_MODEL, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (tmp_path / "e.jsonl").exists() or (tmp_path / "e.jsonl").read_text().count('"start"') < 3:
            assert time.monotonic() < deadline and cmd.proc.poll() is None, cmd.stderr
            time.sleep(0.05)
        cmd.signal(signum)
        assert cmd.wait(60) == 0, cmd.stderr
    finally:
        server.stop()
    windows = [e for e in lines(tmp_path / "e.jsonl") if "start" in e]
    rows = (tmp_path / "w.csv").read_text().splitlines()[1:]
    assert len(windows) == len(rows) >= 3 and len({w["start"] for w in windows}) == len(windows)
    assert cmd.survivors() == []


@pytest.mark.parametrize("command", ["eval", pytest.param("explain", marks=pytest.mark.long), pytest.param("export", marks=pytest.mark.long)])
def test_commands_that_write_a_folder_or_file_leave_nothing_half_written_when_killed(tmp_path, command):
    data = write_class_folders(tmp_path / "data", 150, seed=3, classes=("0", "1"))
    for signum in (signal.SIGTERM, signal.SIGKILL):
        args = {"eval": ("eval", data, "--out", f"report{signum}", "--model", IMAGE_MODEL),
                "explain": ("explain", *sorted(data.rglob("*.png"))[:60], "--out", f"pics{signum}", "--model", IMAGE_MODEL),
                "export": ("export", IMAGE_MODEL, "--out", "m.onnx", "--no-verify", "--overwrite")}[command]
        cmd = Command(*args, cwd=tmp_path)
        time.sleep(random.uniform(3.5, 5.0))  # past the imports, inside the work
        cmd.signal(signum)
        code = cmd.wait(60)
        assert code in (0, 130, 143, -9, -15), cmd.stderr  # -15: the signal came after the work, as the process ended
        assert "Traceback" not in cmd.stderr and cmd.survivors() == []
        assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".unverified"))]  # no temporary file left
        if command == "export" and (tmp_path / "m.onnx").exists():
            from lstmimg.engine.infer.onnx import load_onnx

            load_onnx(tmp_path / "m.onnx")  # whole, or not there


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm", "kill -9"])
def test_check_stopped_while_its_workers_read_leaves_no_process_and_no_traceback(tmp_path, how):
    """check reads many small files in forked worker processes: Ctrl-C and SIGTERM stop it with one line
    (exit 130, 143), even when they land while a worker is being forked (the signal is sent as soon as the
    first workers are seen, while the last may be starting: it was once swallowed there and check went on
    to exit 0), and kill -9 of the command leaves no worker behind (they die with it)."""
    from conftest import marked
    from PIL import Image

    from lstmimg.engine.health.scan import FORK_FROM

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(FORK_FROM // 2 + 100):  # just enough files to fork
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / "data" / name / f"{i:04d}.png")
    cmd = Command("check", tmp_path / "data", "--out", "c", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while len(marked(cmd.marker)) < 2 and cmd.proc.poll() is None and time.monotonic() < deadline:  # the command and its first worker: the next may be forking
        time.sleep(0.01)
    assert cmd.proc.poll() is None, f"check ended before its workers were seen:\n{cmd.stderr[-2000:]}"
    cmd.signal({"ctrl-c": signal.SIGINT, "sigterm": signal.SIGTERM, "kill -9": signal.SIGKILL}[how])
    code = cmd.wait(60)
    assert cmd.survivors() == []
    if how != "kill -9":
        assert code == {"ctrl-c": 130, "sigterm": 143}[how] and "Traceback" not in cmd.stderr and len(cmd.stderr.strip().splitlines()) == 1, cmd.stderr
    assert not (tmp_path / "c" / "index.html").exists() and not (tmp_path / "c" / "duplicates.csv").exists()  # nothing half written
