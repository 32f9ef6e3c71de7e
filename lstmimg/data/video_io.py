"""Reading and writing video: the only module that knows OpenCV.

``FrameReader`` decodes a file, a webcam (``"0"``) or a stream URL (rtsp://, http://, ...) on a
background thread into a bounded queue, so decoding overlaps the model's work and memory stays flat
however long the video is. Frames come out RGB uint8 ``(H, W, 3)``, resized when asked, sampled by a
target rate (``fps``) or a ``stride``. Skipped frames are only grabbed: FFmpeg still decodes them, but
the colour conversion, resize and copy are saved.

Importing this module changes no process-wide setting; the CLI quiets OpenCV's logging, and
DataLoader workers turn off OpenCV's thread pool in their own processes (``loaders``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lstmimg.data.folders import IMAGE_EXTENSIONS, check_file
from lstmimg.errors import LstmimgError

CODECS = {".avi": "MJPG", ".webm": "VP80"}  # everything else: mp4v (OpenCV's wheels cannot encode H.264)


def is_live(source: str) -> bool:
    """A webcam index ("0") or a URL, as opposed to a file: what a source is taken for before it opens.
    Once open, a URL whose container gives a length (a video file served over HTTP) is finite
    (``VideoInfo.live``)."""
    return source.isdigit() or "://" in source


@dataclass
class VideoInfo:
    source: str
    fps: float  # frames per second the container or device reports (0 when unknown)
    frame_count: int  # frames the container claims (0 for live sources or when unknown)
    width: int
    height: int
    live: bool


@dataclass
class Frame:
    index: int  # position in the source, counting every decoded frame
    time: float  # seconds from the start (wall clock for live sources)
    rgb: np.ndarray | None  # (H, W, 3) uint8, resized if the reader was given a size; None: not a sampled frame
    original: np.ndarray | None = None  # (H0, W0, 3) BGR as decoded, when keep_original
    read_at: float = 0.0  # time.monotonic() when a Source handed it on (the start of its latency)

    @property
    def sampled(self) -> bool:
        return self.rgb is not None


def open_video(source: str | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a file, webcam index or stream URL; raises LstmimgError naming the source and the problem."""
    source = str(source)
    live = is_live(source)
    if not live:
        path = check_file(source, "a video")
        if path.suffix.lower() in IMAGE_EXTENSIONS:  # FFmpeg would open it as a one-frame video
            raise LstmimgError(f"{source}: an image, not a video (use `lstmimg predict`)")
    what = "cannot open the stream" if live else "not a video OpenCV can read"
    try:  # files and URLs through FFmpeg only: OpenCV's fallback parsers print to stderr on bad input
        cap = cv2.VideoCapture(int(source)) if source.isdigit() else cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    except (cv2.error, OverflowError, ValueError) as err:  # e.g. a webcam index too large for OpenCV
        raise LstmimgError(f"{source}: {what} ({str(err).strip().splitlines()[-1].lstrip('> -')})") from None
    if not cap.isOpened():
        cap.release()
        raise LstmimgError(f"{source}: {what}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    if live and not source.isdigit() and 0 < count < 2**31:  # a URL to a video file (it has a length): finite, read once
        live = False
    info = VideoInfo(
        source=source,
        fps=fps if 0 < fps < 1000 else 0.0,
        frame_count=0 if live else max(0, int(count)) if count < 2**31 else 0,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        live=live,
    )
    return cap, info


def to_rgb(bgr: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """BGR frame -> RGB uint8 at ``size`` = (H, W): resize first, so the colour conversion is cheap.

    Large reductions first take every k-th pixel (a free view) and then area-average the rest:
    INTER_AREA straight from 1280x720 to 32x32 costs about 3 ms a frame here, this about 0.1 ms.
    """
    if size is not None and bgr.shape[:2] != tuple(size):
        h, w = size
        factor = min(bgr.shape[0] / h, bgr.shape[1] / w)
        if factor >= 4:
            k = int(factor // 2)
            bgr = bgr[::k, ::k]
        shrink = h < bgr.shape[0] and w < bgr.shape[1]
        bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


_END = object()


class FrameReader:
    """Iterate over the frames of a video on a decoding thread.

    ``size`` (H, W) resizes; ``fps`` keeps frames at about that rate (when the source's rate is known);
    ``stride`` keeps every n-th frame; ``max_seconds`` stops after that many seconds: of the video for
    a file whose frame rate is known (the same frames on any machine), of wall-clock time for a live
    source. ``keep_original`` yields every decoded frame with its ``original`` pixels (to write a
    labelled copy of the video); frames between the sampled ones then come with ``rgb=None``.
    ``transform`` (e.g. ``motion.MotionStream.add``) is applied to each sampled frame's ``rgb`` on the
    decoding thread, in order, so it runs beside the model; with ``motion_before`` it is fed the frame
    just before each sampled one too (its result dropped), so a sampled frame's motion is from its
    neighbour, as a model trained on segments (``clips.SEGMENTS``) saw it. After iteration, ``frames_decoded`` counts
    every frame FFmpeg produced and ``truncated`` says whether a file ended before the frame count its
    container claims (not one stopped by ``max_seconds``). The capture is released by the decoding
    thread when it ends, never while it is inside FFmpeg.
    """

    CLOSE_TIMEOUT = 5.0  # seconds ``close`` waits for the decoding thread

    def __init__(
        self,
        source: str | Path,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        stride: int = 1,
        keep_original: bool = False,
        max_seconds: float | None = None,
        queue_size: int = 32,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        motion_before: bool = False,
    ):
        if stride < 1:
            raise LstmimgError(f"--stride must be >= 1, got {stride}")
        if fps is not None and fps <= 0:
            raise LstmimgError(f"--fps must be > 0, got {fps}")
        self.cap, self.info = open_video(source)
        self.size, self.keep_original, self.max_seconds, self.transform = size, keep_original, max_seconds, transform
        self.motion_before = motion_before and transform is not None
        self.step = stride
        if fps is not None and self.info.fps > 0:
            self.step = max(1, round(self.info.fps / fps))
        self.frames_decoded = 0
        self.frames_read = 0
        self.stopped = False  # ended by max_seconds, not by the end of the source
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, name="lstmimg-decode", daemon=True)
        self._thread.start()

    @property
    def output_fps(self) -> float:
        """Rate of the frames this reader yields (0 when the source's rate is unknown)."""
        return self.info.fps / self.step if self.info.fps else 0.0

    @property
    def truncated(self) -> bool:
        """A file that ended before the frame count its container claims (not one stopped on purpose)."""
        return not self.stopped and bool(self.info.frame_count) and self.frames_decoded < self.info.frame_count - 1

    def _past_limit(self, index: int, elapsed: float) -> bool:
        """Whether frame ``index`` lies beyond ``max_seconds``: video time for a file with a known frame
        rate, else wall-clock time since decoding began."""
        if self.max_seconds is None:
            return False
        if not self.info.live and self.info.fps:
            return index / self.info.fps >= self.max_seconds
        return elapsed >= self.max_seconds

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        started = time.monotonic()
        try:
            index = 0
            while not self._stop.is_set():
                keep = index % self.step == 0
                before = self.motion_before and self.step > 1 and (index + 1) % self.step == 0
                if not self.cap.grab():
                    break
                elapsed = time.monotonic() - started
                if self._past_limit(index, elapsed):
                    self.stopped = True
                    break
                self.frames_decoded += 1
                if keep or before or self.keep_original:
                    ok, bgr = self.cap.retrieve()
                    if not ok or bgr is None:
                        break
                    t = elapsed if self.info.live or not self.info.fps else index / self.info.fps
                    rgb = to_rgb(bgr, self.size) if keep or before else None
                    if rgb is not None and self.transform is not None:
                        rgb = self.transform(rgb)
                    if before and not keep:
                        rgb = None  # fed to the transform only
                    if (keep or self.keep_original) and not self._put(Frame(index, t, rgb, bgr if self.keep_original else None)):
                        return
                index += 1
        except Exception as err:  # handed to the reading thread, which raises it
            self._put(err)
        finally:
            self.cap.release()  # here, by the thread that uses it: never while a grab() is running
            self._put(_END)

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set() and not self._thread.is_alive():
                    return  # closed: the decoding thread ended without handing over its end
                continue
            if item is _END:
                break
            if isinstance(item, Exception):
                raise LstmimgError(f"{self.info.source}: decoding failed ({item})")
            self.frames_read += 1
            yield item
        if self.frames_decoded == 0:
            raise LstmimgError(f"{self.info.source}: no decodable frame")

    def stop(self) -> None:
        """Ask decoding to stop, without waiting (``close`` waits)."""
        self._stop.set()

    def close(self, timeout: float | None = None) -> None:
        """Stop decoding; the thread releases the capture as it ends (at once, or when a blocked grab
        returns). Waits for it at most ``timeout`` seconds (default ``CLOSE_TIMEOUT``)."""
        self._stop.set()
        self._thread.join(timeout=self.CLOSE_TIMEOUT if timeout is None else max(0.0, timeout))

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_video(path: str | Path, size: tuple[int, int] | None = None, stride: int = 1) -> tuple[np.ndarray, FrameReader]:
    """All (kept) frames of a file as one uint8 array ``(T, H, W, 3)``, and the finished reader
    (for ``truncated`` and ``frames_decoded``)."""
    with FrameReader(path, size=size, stride=stride) as reader:
        frames = [f.rgb for f in reader if f.sampled]
    return np.stack(frames), reader


def read_frames(path: str | Path, pick: Callable[[int], Sequence[int]], size: tuple[int, int] | None = None, info_out: list | None = None) -> np.ndarray:
    """Only some frames of a file, ``(len(picked), H, W, 3)``: ``pick(frame_count)``, given the count
    from the container's header, names them (ascending, repeats allowed). Frames up to the last one
    named are decoded, but only the named ones are converted and resized, and none after them are read.
    Raises LstmimgError when the file cannot be opened, its header has no frame count, or it ends
    before a frame named (then ``read_video`` decodes what there is). ``info_out``: a list the file's
    ``VideoInfo`` is appended to."""
    cap, info = open_video(path)
    if info_out is not None:
        info_out.append(info)  # the header, for a caller that wants its rate and count too
    try:
        if info.frame_count <= 0:
            raise LstmimgError(f"{path}: no frame count in its header")
        picked = list(pick(info.frame_count))
        wanted, found = set(picked), {}
        for index in range(max(picked) + 1):
            if not cap.grab():
                break
            if index in wanted:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    break
                found[index] = to_rgb(bgr, size)
        if len(found) < len(wanted):
            raise LstmimgError(f"{path}: ended before frame {max(picked)} of the {info.frame_count} its header claims")
        return np.stack([found[i] for i in picked])
    finally:
        cap.release()


def probe_info(path: str | Path) -> VideoInfo:
    """What a video file's header says (frame rate, frame count, size)."""
    cap, info = open_video(path)
    cap.release()
    return info


def probe_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of a video file's frames, from its header."""
    info = probe_info(path)
    return info.height, info.width


class VideoWriter:
    """Write BGR frames to a video file atomically: to a temporary name beside it, renamed on close."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower() or ".mp4"
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        codec = CODECS.get(suffix, "mp4v")
        h, w = size
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*codec), fps or 25.0, (w, h))
        if not self.writer.isOpened():
            raise LstmimgError(f"{self.path}: cannot write a {suffix} video here")

    def write(self, bgr: np.ndarray) -> None:
        self.writer.write(bgr)

    def close(self, keep: bool = True) -> None:
        self.writer.release()
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def draw_label(bgr: np.ndarray, text: str) -> np.ndarray:
    """The frame with ``text`` in a dark band at the top-left."""
    out = bgr.copy()
    scale = max(0.4, out.shape[0] / 720)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
