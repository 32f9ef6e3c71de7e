"""Shared fixtures: tiny, real image folders built in tmp_path with Pillow."""

from __future__ import annotations

import os
from pathlib import Path

# One torch thread per test process (before torch is imported here or in a child): the models under test
# are tiny, and the two pytest-xdist workers (pyproject.toml) share the cores instead of fighting for them
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from PIL import Image

SIZE = 12


def run_cli(*args):
    """``lstmimg ARGS`` in this process through typer's CliRunner (stderr kept apart)."""
    from typer.testing import CliRunner

    from lstmimg.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    """Exit 1 (or 2, the option parser's), one ``error:`` line on stderr naming every fragment (the
    ``model:`` info line aside), no traceback."""
    assert result.exit_code in (1, 2), result.output
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("model: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert str(fragment) in lines[0], lines[0]
    assert "Traceback" not in result.output


def pattern(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 12x12 grey image of a bar whose orientation is the class, at a random offset, with noise."""
    img = rng.integers(0, 40, (SIZE, SIZE)).astype(np.uint8)
    k = int(rng.integers(2, SIZE - 2))
    if kind == "horizontal":
        img[k - 1 : k + 1, 1:-1] = 230
    elif kind == "vertical":
        img[1:-1, k - 1 : k + 1] = 230
    else:
        for i in range(1, SIZE - 1):
            img[i, i] = img[i, min(SIZE - 1, i + 1)] = 230
    return img


def write_class_folders(root: Path, per_class: int, seed: int, classes=("diagonal", "horizontal", "vertical")) -> Path:
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern(name, rng), mode="L").save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def bars(tmp_path: Path) -> Path:
    """A data root with train/ (24 per class) and val/ (8 per class) of three bar orientations."""
    root = tmp_path / "bars"
    write_class_folders(root / "train", 24, seed=1)
    write_class_folders(root / "val", 8, seed=2)
    return root


@pytest.fixture
def flat_bars(tmp_path: Path) -> Path:
    """Class folders only (no train/val): 20 images per class."""
    return write_class_folders(tmp_path / "flat", 20, seed=3)


TINY_MODEL = {"hidden": 16, "cnn_channels": (8, 16), "embed": 16}
TINY_TRAIN = {"epochs": 2, "batch_size": 16}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A run folder of a tiny cnn_lstm trained for 2 epochs on a copy of ``bars``, made once for the
    whole session: tests read it and never change it."""
    from lstmimg import ModelConfig, TrainConfig, fit

    root = tmp_path_factory.mktemp("shared")
    write_class_folders(root / "bars" / "train", 24, seed=1)
    write_class_folders(root / "bars" / "val", 8, seed=2)
    summary = fit(root / "bars", ModelConfig(**TINY_MODEL), TrainConfig(**TINY_TRAIN), out=root / "run")
    return Path(summary["run_dir"])


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10) -> Path:
    """Write grey frames as a colour video (MJPG in .avi, mp4v in .mp4)."""
    import cv2

    codec = "MJPG" if path.suffix == ".avi" else "mp4v"
    h, w = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    for f in frames:
        writer.write(np.repeat(f[:, :, None], 3, axis=2))
    writer.release()
    return path


def moving_square(direction: int, length: int, rng: np.random.Generator, size: int = 16, speed: int = 2) -> list[np.ndarray]:
    """A bright 4x4 square sliding right (+1) or left (-1) ``speed`` pixels per frame on a noisy
    background; the columns it visits are alike for both directions, so only the order tells them apart."""
    travel = speed * (length - 1)
    row = int(rng.integers(0, size - 4))
    low = int(rng.integers(0, size - 4 - travel + 1))
    start = low if direction > 0 else low + travel
    frames = []
    for t in range(length):
        img = rng.integers(0, 30, (size, size)).astype(np.uint8)
        col = start + direction * speed * t
        img[row : row + 4, col : col + 4] = 240
        frames.append(img)
    return frames


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A video data root: train/ (14 per class) and val/ (10 per class) of squares sliding left or right."""
    return write_clips(tmp_path / "clips")


def write_clips(root: Path) -> Path:
    """The ``clips`` data root, written to ``root``."""
    rng = np.random.default_rng(7)
    for split, count in (("train", 14), ("val", 10)):
        for name, direction in (("left", -1), ("right", 1)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                write_clip(folder / f"{i:02d}.avi", moving_square(direction, int(rng.integers(5, 7)), rng))
    return root


TINY_VIDEO_TRAIN = {"epochs": 12, "batch_size": 4, "clip_len": 5, "frame_stride": 1, "lr": 1e-2, "augment": False}


@pytest.fixture
def frame_readers(monkeypatch) -> list:
    """Every ``FrameReader`` made during the test, to count the frames each decoded."""
    import lstmimg.data.video_io as video_io

    made = []

    class Counted(video_io.FrameReader):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(video_io, "FrameReader", Counted)
    return made


class MjpegServer:
    """A live MJPEG stream over HTTP on 127.0.0.1 (what IP cameras serve): ``frames`` (grey) sent as
    JPEGs at ``fps`` in a loop, to every client, until ``stop``; ``start`` again on the same port (a
    camera coming back). ``url`` is the stream's address."""

    def __init__(self, frames: list[np.ndarray], fps: float = 25.0):
        import cv2

        self.jpegs = [cv2.imencode(".jpg", np.repeat(f[:, :, None], 3, axis=2))[1].tobytes() for f in frames]
        self.fps, self.port, self.server = fps, 0, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        import http.server
        import threading
        import time

        stopped = threading.Event()
        jpegs, gap = self.jpegs, 1 / self.fps

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i, next_at = 0, time.monotonic()
                try:
                    while not stopped.is_set():
                        jpg = jpegs[i % len(jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpg), jpg))
                        i, next_at = i + 1, next_at + gap
                        time.sleep(max(0.0, next_at - time.monotonic()))
                except (BrokenPipeError, ConnectionResetError):
                    pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port, self.stopped = self.server.server_address[1], stopped
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.stopped.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# --- the fault suite's tools (tests/faults/): commands as whole processes, bounded in time ---

IMAGE_MODEL = Path(__file__).resolve().parent.parent / "lstmimg" / "assets" / "digits.pt"
VIDEO_MODEL = Path(__file__).resolve().parent.parent / "lstmimg" / "assets" / "clips.pt"


class Command:
    """``lstmimg ARGS`` started as its own process in ``cwd``, its output to files, every process it
    starts marked by an environment variable so that none can hide from ``survivors`` (whatever process
    group or session it is in)."""

    def __init__(self, *args, cwd: Path, env: dict | None = None):
        import subprocess
        import sys
        import uuid

        self.marker = uuid.uuid4().hex
        self.cwd = Path(cwd)
        self.out_path, self.err_path = self.cwd / f".out-{self.marker}", self.cwd / f".err-{self.marker}"
        environ = {**os.environ, "LSTMIMG_FAULT_CASE": self.marker, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "lstmimg", *[str(a) for a in args]], cwd=cwd, stdout=out, stderr=err, env=environ)

    def wait(self, timeout: float = 120) -> int:
        """The exit code; a command still running after ``timeout`` seconds is a hang: killed, and the test fails."""
        import subprocess

        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"hung for {timeout} s: {self.proc.args}\n{self.stderr[-2000:]}")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_text(self, text: str, timeout: float = 60, stream: str = "stderr") -> None:
        """Wait until ``text`` shows in the command's output (or fail: it never came, or the command ended)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in getattr(self, stream):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"ended (exit {self.proc.returncode}) before {text!r} showed:\n{self.stderr[-2000:]}")
            time.sleep(0.05)
        self.kill_all()
        pytest.fail(f"{text!r} did not show within {timeout} s:\n{self.stderr[-2000:]}")

    def survivors(self, grace: float = 40) -> list[int]:
        """Processes this command started that are still alive after up to ``grace`` seconds."""
        import time

        deadline = time.monotonic() + grace
        while True:
            alive = marked(self.marker)
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def kill_all(self) -> None:
        import signal

        for pid in marked(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def marked(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``LSTMIMG_FAULT_CASE=marker``."""
    found = []
    needle = f"LSTMIMG_FAULT_CASE={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and "Z" not in (entry / "stat").read_text().split(")")[-1].split()[:1]:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` first: pytest-xdist hands tests out in this order, so the two processes start
    on the longest ones together and short ones fill the end, instead of a 50-s docs test starting last."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the order within each group is kept
