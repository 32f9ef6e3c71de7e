"""Several video sources read at once: one ``Source`` per file, webcam or stream, each on its own thread.

A source decodes through ``video_io.FrameReader`` (sampling, resizing, its own motion stream) into a
bounded queue the scheduler (``engine.infer.streams``) polls without waiting. When the model cannot keep up,
a live source drops its oldest frames (``drop``), so what is classified stays close to now and memory
stays flat; a file queues instead (nothing is lost, decoding waits). Dropped frames are counted. A live
source that stops answering is reopened with a growing pause (0.5 s to 10 s); the events
``opened``, ``lost``, ``reopened``, ``ended`` and ``failed`` say what happened, in order with the frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from lstmimg.data import video_io
from lstmimg.data.video_io import Frame, VideoInfo, is_live
from lstmimg.errors import LstmimgError

BACKOFF = (0.5, 1.0, 2.0, 4.0, 10.0)  # seconds before each further attempt to reopen a live source


@dataclass
class SourceEvent:
    """Something that happened to a source: ``opened``, ``lost`` (a live source stopped answering),
    ``reopened``, ``ended`` (a file read to its end, or the source closed) or ``failed`` (never opened;
    ``detail`` says why)."""

    source: str
    event: str
    detail: str = ""
    info: VideoInfo | None = None
    frames: int = 0  # ended: frames decoded over every connection
    truncated: bool = False  # ended: a file that stopped before the frame count its header claims
    output_fps: float = 0.0  # opened, reopened: the rate of the sampled frames of this connection (0: unknown)

    def public(self) -> dict:
        """The event as plain data (the JSON Lines form)."""
        return {"source": self.source, "event": self.event, **({"detail": self.detail} if self.detail else {})}


class Source:
    """Frames of one video source, decoded on a thread into a queue of at most ``queue_frames``.

    ``drop`` (default: for live sources) drops the oldest queued frame when the queue is full, counted in
    ``dropped``; without it decoding waits for the consumer. ``reconnect`` reopens a live source that
    drops. ``size``, ``fps``, ``stride``, ``keep_original``, ``max_seconds``, ``motion_before`` and ``motion`` are
    ``FrameReader``'s (``motion``: a ``data.motion`` method, its stream begun anew on every opening).
    ``poll`` hands out what is queued, frames (each with ``read_at``, the monotonic time it was read)
    and ``SourceEvent``s, without waiting; ``done`` is true once the last item has been handed out.
    """

    def __init__(self, source: str | Path, size: tuple[int, int] | None = None, fps: float | None = None, stride: int = 1,
                 motion: str = "none", drop: bool | None = None, queue_frames: int = 64, reconnect: bool = True,
                 keep_original: bool = False, max_seconds: float | None = None, wakeup: threading.Event | None = None, motion_before: bool = False):
        self.name = str(source)
        self.live = is_live(self.name)  # until it opens: then a URL to a video file turns out finite
        self.drop_given, self.reconnect_given = drop, reconnect
        self.drop = self.live if drop is None else drop
        self.reconnect = reconnect and self.live
        self.options = dict(size=size, fps=fps, stride=stride, keep_original=keep_original, max_seconds=max_seconds, motion_before=motion_before)
        self.motion = motion
        self.queue: deque = deque()
        self.capacity = max(1, queue_frames)
        self.dropped = 0
        self.frames_read = 0
        self.frames_decoded = 0  # by every connection, each frame FFmpeg produced (sampled or not)
        self.reader: video_io.FrameReader | None = None
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self.wakeup = wakeup or threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lstmimg-source-{self.name[:20]}", daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        with self._lock:
            return self._finished and not self.queue

    def poll(self) -> list:
        """Everything queued now, in order (frames and events); never waits."""
        with self._lock:
            items = list(self.queue)
            self.queue.clear()
            self._lock.notify_all()  # room again for a file's decoding
        return items

    def stop(self) -> None:
        """Ask reading to stop, without waiting: stopping many sources then waiting for them all
        (``close``) takes as long as the slowest, not the sum."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        reader = self.reader
        if reader is not None:
            reader.stop()

    def close(self, deadline: float | None = None) -> None:
        """Stop reading and wait, until the monotonic ``deadline`` at most (default: ``CLOSE_TIMEOUT``
        from now), for the decoding threads to end and release their captures."""
        self.stop()
        deadline = time.monotonic() + video_io.FrameReader.CLOSE_TIMEOUT if deadline is None else deadline
        reader = self.reader
        if reader is not None:
            reader.close(deadline - time.monotonic())
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _put(self, item, is_frame: bool) -> None:
        with self._lock:
            if is_frame:
                while len(self.queue) >= self.capacity and not self._stop.is_set():
                    if self.drop:
                        oldest = next((i for i, x in enumerate(self.queue) if isinstance(x, Frame)), None)
                        if oldest is None:
                            break
                        del self.queue[oldest]
                        self.dropped += 1
                    else:
                        self._lock.wait(0.1)
            self.queue.append(item)
        self.wakeup.set()

    def _opened(self, reader: video_io.FrameReader) -> None:
        """What a new connection tells: a URL that turns out to be a video file is read once, queued."""
        self.live = reader.info.live
        self.reconnect = self.reconnect_given and self.live
        self.drop = self.live if self.drop_given is None else self.drop_given

    def _run(self) -> None:
        try:
            self._read()
        except Exception as err:  # anything unexpected ends this source with a reason, never silently
            self._put(SourceEvent(self.name, "failed", f"{self.name}: reading failed ({err.__class__.__name__}: {err})", frames=self.frames_decoded), False)
        finally:
            with self._lock:
                self._finished = True
            self.wakeup.set()

    def _read(self) -> None:
        from lstmimg.data.motion import MotionStream

        attempt, opened_once, started = 0, False, time.monotonic()
        limit = self.options["max_seconds"]
        while not self._stop.is_set():
            options = dict(self.options)
            if self.live and limit is not None:  # a live source's --max-seconds spans its reconnections
                options["max_seconds"] = limit - (time.monotonic() - started)
                if options["max_seconds"] <= 0:
                    self._put(SourceEvent(self.name, "ended", info=self.reader.info if self.reader else None, frames=self.frames_decoded), False)
                    return
            offset = time.monotonic() - started  # a live connection's times count from the source's start, not its own
            try:
                reader = video_io.FrameReader(self.name, transform=MotionStream(self.motion).add, queue_size=8, **options)
            except LstmimgError as err:
                if not opened_once or not self.reconnect:
                    self._put(SourceEvent(self.name, "failed", str(err)), False)
                    return
                self._stop.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            self.reader = reader
            self._opened(reader)
            self._put(SourceEvent(self.name, "reopened" if opened_once else "opened", info=reader.info, output_fps=reader.output_fps), False)
            opened_once, attempt = True, 0
            try:
                for frame in reader:
                    frame.read_at = time.monotonic()
                    if reader.info.live:
                        frame.time += offset
                    self.frames_read += 1
                    self._put(frame, True)
                    if self._stop.is_set():
                        break
            except LstmimgError as err:  # nothing decodable, or a stream that broke mid-way (lost, like one that ends)
                if not self.reconnect:
                    failed = reader.frames_decoded == 0
                    self._put(SourceEvent(self.name, "failed" if failed else "ended", str(err), reader.info, self.frames_decoded + reader.frames_decoded), False)
                    return
            finally:
                reader.close()
                self.frames_decoded += reader.frames_decoded
            if not self.reconnect or self._stop.is_set() or reader.stopped:
                self._put(SourceEvent(self.name, "ended", info=reader.info, frames=self.frames_decoded, truncated=reader.truncated), False)
                return
            self._put(SourceEvent(self.name, "lost"), False)
            self._stop.wait(BACKOFF[0])
