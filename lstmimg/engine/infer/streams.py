"""Following several video sources at once: the scheduler that batches ready windows across sources.

Each source (``data.sources.Source``) is decoded on its own thread. Every ``window`` sampled frames of a
source make a window; the windows ready across sources at a moment run through the model together, one
batch (grouped by length), each reading on from the recurrent state its own source's previous window
left (state rows follow their source). A live source whose windows come faster than the model can score
them keeps only its newest ready window: the older ones are dropped and counted, so the label stays
close to now. A file queues instead, and its decoding waits, so memory stays flat either way.

``follow`` yields ``WindowEvent``s and ``SourceEvent``s as they happen; ``lstmimg video`` with one source
is its one-source case (``engine.infer.timeline``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lstmimg.checkpoint import Checkpoint
from lstmimg.config import clip_settings, trained_on_segments, window_stride
from lstmimg.data.sources import Source, SourceEvent
from lstmimg.data.video_io import FrameReader
from lstmimg.engine.infer.inference import Predictor
from lstmimg.errors import LstmimgError


@dataclass
class WindowEvent:
    """One window of one source, scored: times in seconds of the source, ``frames`` sampled frames in
    it, ``latency_ms`` from its last frame being read to its label, ``dropped`` frames (and windows'
    frames) this source dropped since its previous window, ``reset``: the state began anew here."""

    source: str
    start: float
    end: float
    frames: int
    label: str
    prob: float  # rounded to 4 decimals
    probs: list[float]  # one per class, as the model gave them
    latency_ms: float
    dropped: int = 0
    reset: bool = False
    first_index: int = 0  # the source's frame number of the window's first frame
    last_index: int = 0
    decoded: list = field(default_factory=list, repr=False)  # every decoded frame of the window, with originals (keep_original)

    def public(self) -> dict:
        """The event as plain data (the JSON Lines form)."""
        return {"source": self.source, "start": round(self.start, 3), "end": round(self.end, 3), "frames": self.frames, "label": self.label,
                "prob": self.prob, "latency_ms": round(self.latency_ms, 1), "dropped": self.dropped, "reset": self.reset}


@dataclass
class _Follow:
    """What the scheduler keeps per source."""

    source: Source
    size: int = 0  # sampled frames per window
    gap: float = 0.0  # seconds between sampled frames
    sampled: list = field(default_factory=list)
    decoded: list = field(default_factory=list)
    ready: list = field(default_factory=list)  # complete windows: (sampled frames, decoded frames, first of a connection)
    state: object = None
    dropped_seen: int = 0  # the source's dropped count at its previous window
    dropped_windows: int = 0  # frames of ready windows dropped here
    reset_every: float | None = None  # seconds
    next_reset: float | None = None
    new_connection: bool = True  # the window being gathered is the first of a connection: it starts from a zero state
    finished: bool = False
    end: SourceEvent | None = None  # the source's ended / failed event, held until its last windows are scored

    def close_window(self) -> None:
        if self.sampled:
            self.ready.append((self.sampled, self.decoded, self.new_connection))
            self.new_connection = False
        self.sampled, self.decoded = [], []


def parse_window(text: str | None, default_frames: int, fps: float) -> int:
    """'16' (frames) or '2s' / '1.5s' (seconds, at the sampled rate) -> frames per window."""
    import re

    if text is None:
        return default_frames
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s?)\s*", text)
    if not match:
        raise LstmimgError(f"--window {text!r}: give frames (16) or seconds (2s)")
    value, seconds = float(match.group(1)), bool(match.group(2))
    if seconds and not fps:
        raise LstmimgError(f"--window {text!r}: the source does not say its frame rate; give the window in frames")
    frames = round(value * fps) if seconds else int(value)
    if frames < 1:
        raise LstmimgError(f"--window {text!r} is shorter than one frame")
    return frames


def follow(
    sources: Sequence[str | Path],
    ckpt: Checkpoint,
    window: str | None = None,
    fps: float | None = None,
    stride: int | None = None,
    device: str | torch.device = "auto",
    carry: bool = True,
    drop: bool | None = None,
    reset_every: float | None = None,
    max_seconds: float | None = None,
    keep_original: bool = False,
    reconnect: bool = True,
    stop: threading.Event | None = None,
) -> Iterator[WindowEvent | SourceEvent]:
    """Classify ``sources`` (files, webcam indices, stream URLs) window by window, all at once.

    Yields each source's events (``opened``, ``lost``, ``reopened``, ``ended``, ``failed``) and each
    scored window as they happen, until every source has ended or ``stop`` is set. ``window`` is frames
    ("16") or seconds ("2s"), default the model's clip length; ``stride`` / ``fps`` sample frames as
    ``FrameReader`` does (default stride: the model's). ``carry`` passes each source's state from window to
    window; ``reset_every`` (seconds) starts it anew at fixed times. ``drop`` (default: live sources
    only) keeps only the newest ready window of a source the model cannot keep up with; ``reconnect``
    reopens a live source that drops. A source that cannot be opened yields ``failed`` and the others go on. ``keep_original`` hands every decoded frame
    of a window, with its original pixels, in ``WindowEvent.decoded`` (to write a labelled copy).
    """
    if stride is not None and stride < 1:
        raise LstmimgError(f"--stride must be >= 1, got {stride}")
    if reset_every is not None and reset_every <= 0:
        raise LstmimgError(f"--reset-every must be > 0, got {reset_every}")
    predictor = Predictor.from_checkpoint(ckpt, device)
    clip_len, train_stride, _ = clip_settings(ckpt.meta)
    stride = stride if stride is not None else window_stride(ckpt.meta)  # a model trained on segments: the spacing of its training frames
    classes = ckpt.classes
    wakeup = threading.Event()
    parse_window(window, clip_len, 25.0)  # a malformed --window fails here, before any source opens
    follows = [_Follow(Source(s, ckpt.config.img_size, fps, stride, ckpt.config.motion, drop, queue_frames=max(16, 2 * clip_len * (stride if keep_original else 1)),
                              reconnect=reconnect, keep_original=keep_original, max_seconds=max_seconds, wakeup=wakeup, motion_before=trained_on_segments(ckpt.meta))) for s in sources]
    try:
        while not (stop is not None and stop.is_set()):
            wakeup.clear()
            for f in follows:
                if f.finished or (not f.source.drop and f.ready):
                    continue  # a file waits until its ready window is scored: its queue, then its decoding, holds
                for item in f.source.poll():
                    if isinstance(item, SourceEvent):
                        try:
                            _on_event(f, item, window, clip_len, reset_every)
                        except LstmimgError as err:  # e.g. --window 2s on a source with no frame rate: this source fails, the others go on
                            f.source.stop()
                            f.finished, f.sampled, f.decoded, f.ready = True, [], [], []
                            yield item
                            yield SourceEvent(f.source.name, "failed", f"{f.source.name}: {err}", info=item.info)
                            break
                        if item.event in ("ended", "failed") and f.ready:
                            f.end = item  # said once the source's last windows are scored
                        else:
                            yield item
                        continue
                    if item.sampled and len(f.sampled) == f.size:  # complete once the next begins: the frames between belong to it
                        f.close_window()
                        if f.source.drop and len(f.ready) > 1:  # the model is behind: keep the newest window
                            f.dropped_windows += sum(len(s) for s, _, _ in f.ready[:-1])
                            fresh = any(first for _, _, first in f.ready)  # a dropped first window of a connection: the kept one begins anew
                            del f.ready[:-1]
                            f.ready[0] = (*f.ready[0][:2], fresh)
                    f.decoded.append(item)
                    if item.sampled:
                        f.sampled.append(item)
            batch = [f for f in follows if f.ready]
            if batch:
                yield from _score(batch, predictor, classes, carry)
                for f in batch:
                    if f.end is not None and not f.ready:
                        yield f.end
                        f.end = None
                continue
            if all(f.finished for f in follows):
                return
            wakeup.wait(0.05)
    finally:
        for f in follows:  # all asked to stop first, then waited for together: a stuck source costs its time once
            f.source.stop()
        deadline = time.monotonic() + FrameReader.CLOSE_TIMEOUT
        for f in follows:
            f.source.close(deadline)


def _on_event(f: _Follow, event: SourceEvent, window: str | None, clip_len: int, reset_every: float | None) -> None:
    if event.event in ("opened", "reopened"):
        rate = event.output_fps  # this connection's, as the event tells: the source may be on a later one by now
        f.size = parse_window(window, clip_len, rate)
        f.gap = 1 / rate if rate else 0.0
        f.sampled, f.decoded, f.new_connection = [], [], True  # a new connection: its frames do not continue the old ones
        f.reset_every = f.next_reset = reset_every
    elif event.event == "lost":
        f.close_window()  # the connection's last window, scored on from its own state
    elif event.event in ("ended", "failed"):
        f.close_window()
        f.finished = True


def _score(batch: list[_Follow], predictor: Predictor, classes: list[str], carry: bool) -> Iterator[WindowEvent]:
    """Score the oldest ready window of each source in ``batch``, one model call per window length."""
    windows = [(f, *f.ready.pop(0)) for f in batch]
    for length in sorted({len(sampled) for _, sampled, _, _ in windows}):
        group = [w for w in windows if len(w[1]) == length]
        resets = []
        for f, sampled, _, first in group:
            due = f.next_reset is not None and sampled[0].time >= f.next_reset  # --reset-every: a fixed time has passed
            while due and f.next_reset <= sampled[0].time:
                f.next_reset += f.reset_every
            resets.append(first or not carry or due)
        clips = torch.from_numpy(np.stack([np.stack([x.rgb for x in sampled]) for _, sampled, _, _ in group])).permute(0, 1, 4, 2, 3)  # (B, T, C, H, W)
        state = _join([None if reset else f.state for (f, _, _, _), reset in zip(group, resets)])
        probs, new_state = predictor.probs_carried(clips, state)
        done = time.monotonic()
        for i, ((f, sampled, decoded, _), reset) in enumerate(zip(group, resets)):
            f.state = _row(new_state, i)
            best = int(probs[i].argmax())
            dropped = f.source.dropped - f.dropped_seen + f.dropped_windows
            f.dropped_seen, f.dropped_windows = f.source.dropped, 0
            yield WindowEvent(f.source.name, sampled[0].time, sampled[-1].time + f.gap, len(sampled), classes[best], round(float(probs[i][best]), 4),
                              probs[i].tolist(), (done - sampled[-1].read_at) * 1000, dropped, reset,
                              decoded[0].index, decoded[-1].index, decoded)


def _join(states: list):
    """One batched state from per-source states (None: zeros); None when all are None."""
    template = next((s for s in states if s is not None), None)
    if template is None:
        return None
    if isinstance(template, tuple | list):
        parts = [_join([None if s is None else s[k] for s in states]) if any(s is not None for s in states) else None for k in range(len(template))]
        return tuple(parts) if isinstance(template, tuple) else parts
    return torch.cat([s if s is not None else torch.zeros_like(template) for s in states], dim=1)  # (layers, B, hidden)


def _row(state, i: int):
    """Source ``i``'s rows of a batched state."""
    if isinstance(state, tuple | list):
        rows = [_row(s, i) for s in state]
        return tuple(rows) if isinstance(state, tuple) else rows
    return state[:, i : i + 1].clone()
