"""A video's windows gathered into a timeline: top labels, windows, segments, and a labelled copy.

``classify_video`` follows one file or live stream through the scheduler of ``engine.infer.streams`` (its
one-source case) and ``classify_sources`` several at once; ``Timeline`` turns one source's window
events into the result ``lstmimg video`` prints: the top labels over the whole video (each window's
probabilities weighted by its frames), every window, and the segments where consecutive windows agree.
The LSTM state is carried from window to window, so memory stays constant however long the video is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lstmimg.checkpoint import Checkpoint
from lstmimg.data.sources import SourceEvent
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.engine.infer.streams import WindowEvent, follow
from lstmimg.errors import LstmimgError
from lstmimg.files import check_output_file
from lstmimg.runs import resolve_model


@dataclass
class Window:
    start: float  # seconds
    end: float
    frames: int  # sampled frames in this window
    label: str
    prob: float
    probs: list[float]  # one per class


def format_time(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def merge_segments(windows: list[Window]) -> list[dict]:
    """Consecutive windows with the same label -> ``{"start", "end", "label", "prob"}`` (mean prob)."""
    segments: list[dict] = []
    for w in windows:
        extend_segments(segments, w)
    return [public_segment(seg) for seg in segments]


def extend_segments(segments, w: Window) -> None:
    """Add window ``w`` to ``segments`` (a list or deque of segments being built): it lengthens the last
    one when it has the same label, else it starts one."""
    if segments and segments[-1]["label"] == w.label:
        seg = segments[-1]
        seg["end"], seg["prob_sum"], seg["windows"] = w.end, seg["prob_sum"] + w.prob, seg["windows"] + 1
    else:
        segments.append({"start": w.start, "end": w.end, "label": w.label, "prob_sum": w.prob, "windows": 1})


def public_segment(seg: dict) -> dict:
    return {"start": round(seg["start"], 3), "end": round(seg["end"], 3), "label": seg["label"], "prob": round(seg["prob_sum"] / seg["windows"], 4)}


LIVE_KEPT = 2000  # windows (and segments) a live source keeps for its result: a day-long stream stays in bounded memory


class Timeline:
    """One source's windows as they come, and its result at the end. ``save``: a copy of the video,
    every decoded frame at the source's rate, each labelled with its window's label (written as the
    windows come; kept at ``close(keep=True)``, else what was there before stays). A file keeps every
    window; a live source its last ``LIVE_KEPT`` windows and segments (the top labels and counts still
    cover all of them)."""

    def __init__(self, source: str, classes: Sequence[str], topk: int = 5, save: str | Path | None = None):
        from lstmimg.data.video_io import is_live

        self.source, self.classes, self.k = source, list(classes), max(1, min(topk, len(classes)))
        self.save, self.writer = save, None
        kept = LIVE_KEPT if is_live(source) else None
        self.windows: deque[Window] = deque(maxlen=kept)
        self.segments: deque[dict] = deque(maxlen=kept)
        self.sampled_frames = 0
        self.weighted = torch.zeros(len(classes))
        self.dropped = 0
        self.ended: SourceEvent | None = None
        self.info = None
        self.error = ""

    @property
    def live(self) -> bool:
        """A live source (once open, as it turned out; before, as its name says)."""
        from lstmimg.data.video_io import is_live

        return self.info.live if self.info is not None else is_live(self.source)

    @property
    def failed(self) -> bool:
        return self.ended is not None and self.ended.event == "failed"

    def event(self, e: SourceEvent) -> None:
        if e.info is not None:
            self.info = e.info
        if e.event in ("ended", "failed"):
            self.ended = e
            self.error = e.detail if e.event == "failed" else ""

    def add(self, w: WindowEvent) -> Window:
        from lstmimg.data.video_io import VideoWriter, draw_label

        window = Window(w.start, w.end, w.frames, w.label, w.prob, [round(p, 4) for p in w.probs])
        self.windows.append(window)  # first: a Ctrl-C while its frames are written does not score it again
        extend_segments(self.segments, window)
        self.sampled_frames += w.frames
        self.weighted += torch.tensor(w.probs) * w.frames
        self.dropped += w.dropped
        if self.save is not None:
            for frame in w.decoded:
                if self.writer is None:
                    self.writer = VideoWriter(self.save, (self.info.fps if self.info else 0) or 25.0, frame.original.shape[:2])
                self.writer.write(draw_label(frame.original, f"{w.label} {w.prob:.2f}"))
        return window

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.close(keep=keep and bool(self.windows))

    def result(self, model: str) -> dict:
        """``{"path", "label", "prob", "top", "frames", "sampled_frames", "expected_frames", "fps",
        "truncated", "dropped", "windows", "segments", "model"}``, times in seconds."""
        if not self.windows:
            raise LstmimgError(self.error or f"{self.source}: no decodable frame")
        probs = self.weighted / self.weighted.sum()
        top_p, top_i = probs.topk(self.k)
        top = [{"label": self.classes[i], "prob": round(float(p), 4)} for p, i in zip(top_p.tolist(), top_i.tolist())]
        info, ended = self.info, self.ended
        return {
            "path": self.source, "label": top[0]["label"], "prob": top[0]["prob"], "top": top,
            "frames": ended.frames if ended else self.sampled_frames, "sampled_frames": self.sampled_frames,
            "expected_frames": info.frame_count if info else 0, "fps": info.fps if info else 0.0, "truncated": bool(ended and ended.truncated),
            "dropped": self.dropped, "windows": [asdict(w) for w in self.windows], "segments": [public_segment(seg) for seg in self.segments], "model": model,
            "label_from": "windows",
        }


def classify_sources(
    sources: Sequence[str | Path],
    model: str | Path | Checkpoint | None = None,
    window: str | None = None,
    fps: float | None = None,
    stride: int | None = None,
    topk: int = 5,
    device: str = "auto",
    saves: Sequence[str | Path | None] | None = None,
    max_seconds: float | None = None,
    on_event: Callable[[WindowEvent | SourceEvent], None] | None = None,
    carry: bool = True,
    drop: bool | None = None,
    reset_every: float | None = None,
    reconnect: bool = True,
) -> list[dict | LstmimgError]:
    """Classify several videos or live sources at once (``engine.infer.streams.follow``): one result per
    source, as ``classify_video`` returns it, or the ``LstmimgError`` that source met (the others go on).
    ``saves``: a labelled copy per source (None: none). ``on_event`` sees every window and source event
    as it happens. Ctrl-C ends live sources normally (their results are returned); a file run stopped
    by Ctrl-C raises ``KeyboardInterrupt`` and leaves earlier ``saves`` files as they were."""
    saves = list(saves) if saves is not None else [None] * len(sources)
    for save in saves:
        if save is not None:
            check_output_file(save, "--save")
    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(resolve_model(model, "video")[0], kind="video")
    timelines = {str(s): Timeline(str(s), ckpt.classes, topk, save) for s, save in zip(sources, saves)}
    if len(timelines) < len(sources):
        raise LstmimgError("the same source is given twice")
    finished = False
    try:
        try:
            for e in follow(sources, ckpt, window, fps, stride, device, carry, drop, reset_every, max_seconds,
                            keep_original=any(s is not None for s in saves), reconnect=reconnect):
                timeline = timelines[e.source]
                if isinstance(e, SourceEvent):
                    timeline.event(e)
                else:
                    timeline.add(e)
                if on_event:
                    on_event(e)
        except KeyboardInterrupt:
            if not all(t.live for t in timelines.values() if not t.failed):  # a file still being read: the run is cut short
                raise
        finished = True
    finally:
        for timeline in timelines.values():
            timeline.close(keep=finished or timeline.live)
    out: list[dict | LstmimgError] = []
    for timeline in timelines.values():
        try:
            result = timeline.result(str(ckpt.path))
        except LstmimgError as err:
            out.append(err)
            continue
        if not timeline.live and max_seconds is None:
            result.update(file_label(timeline.source, ckpt, topk, device))
        out.append(result)
    return out


def file_label(path: str | Path, ckpt: Checkpoint, topk: int = 5, device: str = "auto") -> dict:
    """A whole file's label by the one rule for files: its clips scored as ``predict`` and ``eval``
    score them (``val_clips`` evenly spaced clips, their softmax averaged), ``{"label", "prob", "top",
    "label_from": "clips"}``; the windows' average stands where the file cannot be read so."""
    from lstmimg.engine.infer.collection import classify_files

    for batch in classify_files([Path(path)], ckpt, topk, 64, device, workers=0):
        for r in batch.results:
            return {"label": r["label"], "prob": round(r["prob"], 4), "top": [{"label": t["label"], "prob": round(t["prob"], 4)} for t in r["top"]], "label_from": "clips"}
    return {}


def classify_video(
    source: str | Path,
    model: str | Path | Checkpoint | None = None,
    window: str | None = None,
    fps: float | None = None,
    stride: int | None = None,
    topk: int = 5,
    device: str = "auto",
    save: str | Path | None = None,
    max_seconds: float | None = None,
    on_window: Callable[[Window], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    carry: bool = True,
    drop: bool | None = None,
    reset_every: float | None = None,
    reconnect: bool = True,
) -> dict:
    """Classify a video file, webcam index ("0") or stream URL.

    Returns ``{"path", "label", "prob", "top", "label_from", "frames", "sampled_frames", "expected_frames",
    "fps", "truncated", "dropped", "windows", "segments", "model"}`` with times in seconds. A file read
    whole gets the label ``predict`` and ``eval`` give it (its ``val_clips`` clips, ``label_from``
    "clips"); a live source, or a file cut by ``max_seconds``, the windows' average weighted by their
    frames ("windows"). ``window`` is frames
    ("16") or seconds ("2s"), default the model's training clip length; frames are sampled every
    ``stride`` (default: the model's training stride) or at about ``fps``. ``save`` writes a copy of the
    video, every frame at the source's rate, each labelled with the window it belongs to. A live source
    runs until Ctrl-C or ``max_seconds`` and is reopened when it drops (``reconnect``); when the model
    cannot keep up it drops its oldest frames (``drop``, default for live sources only), counted in
    ``dropped``. ``carry`` passes the LSTM state from each window to the next (context spans windows);
    without it every window is scored on its own; ``reset_every`` (seconds) starts it anew at fixed times.
    """
    source = str(source)

    def on_event(e) -> None:
        if isinstance(e, WindowEvent):
            if on_window:
                on_window(Window(e.start, e.end, e.frames, e.label, e.prob, [round(p, 4) for p in e.probs]))
            if on_progress:
                on_progress(e.last_index + 1, expected[0])
        elif e.info is not None:
            expected[0] = e.info.frame_count

    expected = [0]
    result = classify_sources([source], model, window, fps, stride, topk, device, [save], max_seconds, on_event, carry, drop, reset_every, reconnect)[0]
    if isinstance(result, LstmimgError):
        raise result
    return result
