"""Classify a video file or a live stream window by window into a timeline, carrying the LSTM state
from window to window.

The video is read once, in order, by ``video.FrameReader``; every ``window`` sampled frames become one
clip ``(1, T, C, H, W)`` that the model reads on from the state the previous window left
(``inference.Predictor.probs_carried``), so memory stays constant however long the video is.
Consecutive windows with the same label are merged into segments of the timeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lstmimg.checkpoint import Checkpoint
from lstmimg.engine.loading import load_checkpoint
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


def parse_window(text: str | None, default_frames: int, fps: float) -> int:
    """'16' (frames) or '2s' / '1.5s' (seconds, at the sampled rate) -> frames per window."""
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


def format_time(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def merge_segments(windows: list[Window]) -> list[dict]:
    """Consecutive windows with the same label -> ``{"start", "end", "label", "prob"}`` (mean prob)."""
    segments: list[dict] = []
    for w in windows:
        if segments and segments[-1]["label"] == w.label:
            seg = segments[-1]
            seg["end"], seg["_probs"] = w.end, seg["_probs"] + [w.prob]
        else:
            segments.append({"start": w.start, "end": w.end, "label": w.label, "_probs": [w.prob]})
    for seg in segments:
        probs = seg.pop("_probs")
        seg.update(start=round(seg["start"], 3), end=round(seg["end"], 3), prob=round(sum(probs) / len(probs), 4))
    return segments


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
) -> dict:
    """Classify a video file, webcam index ("0") or stream URL.

    Returns ``{"path", "label", "prob", "top", "frames", "sampled_frames", "fps", "truncated",
    "windows", "segments"}`` with times in seconds. ``window`` is frames ("16") or seconds ("2s"),
    default the model's training clip length; frames are sampled every ``stride`` (default: the model's
    training stride) or at about ``fps``. ``save`` writes a copy of the video, every frame at the
    source's rate, each labelled with the window it belongs to. A live source runs until Ctrl-C or
    ``max_seconds``. ``carry`` passes the LSTM state from each window to the next (context spans
    windows); without it every window is scored on its own, which follows changes of label faster with
    a model trained on short clips.
    """
    from lstmimg.data.motion import MotionStream
    from lstmimg.data.video_io import FrameReader, VideoWriter, draw_label
    from lstmimg.engine.inference import Predictor

    if stride is not None and stride < 1:
        raise LstmimgError(f"--stride must be >= 1, got {stride}")
    if save is not None:
        check_output_file(save, "--save")
    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(resolve_model(model, "video")[0], kind="video")
    predictor = Predictor.from_checkpoint(ckpt, device)
    classes, k = ckpt.classes, max(1, min(topk, len(ckpt.classes)))
    stride = stride if stride is not None else ckpt.meta.get("frame_stride", 1)
    motion = MotionStream(ckpt.config.motion)  # motion between consecutive sampled frames, carried across windows like (h, c)
    reader = FrameReader(source, size=ckpt.config.img_size, fps=fps, stride=stride, keep_original=save is not None, max_seconds=max_seconds, transform=motion.add)
    writer = None
    windows: list[Window] = []
    weighted = torch.zeros(len(classes))
    state = None
    sampled: list = []  # this window's sampled frames
    pending: list = []  # every frame since the last window, to write with its label
    frame_gap = 1 / reader.output_fps if reader.output_fps else 0.0

    def run_window() -> None:
        nonlocal state, weighted, writer
        frames, labelled = sampled[:], pending[:]
        sampled.clear()  # first: a Ctrl-C from here on (a live source's normal end) cannot score these frames again
        pending.clear()
        clip = torch.from_numpy(np.stack([f.rgb for f in frames])).permute(0, 3, 1, 2)[None]  # (1, T, 3 + motion, H, W)
        probs, state = predictor.probs_carried(clip, state if carry else None)
        probs = probs[0]
        best = int(probs.argmax())
        w = Window(frames[0].time, frames[-1].time + frame_gap, len(frames), classes[best], round(float(probs[best]), 4), [round(float(p), 4) for p in probs])
        windows.append(w)
        weighted += probs * len(frames)
        if save is not None:
            for f in labelled:
                if writer is None:
                    writer = VideoWriter(save, reader.info.fps or 25.0, f.original.shape[:2])
                writer.write(draw_label(f.original, f"{w.label} {w.prob:.2f}"))
        if on_window:
            on_window(w)

    finished = False  # a file read to its end (or to max_seconds); a live source: stopped by Ctrl-C too
    try:
        size = parse_window(window, ckpt.meta.get("clip_len", 8), reader.output_fps)
        try:
            for frame in reader:
                if frame.sampled and len(sampled) == size:
                    run_window()  # the window is complete once the next one begins, so frames between belong to it
                if save is not None:
                    pending.append(frame)
                if frame.sampled:
                    sampled.append(frame)
                if on_progress:
                    on_progress(frame.index + 1, reader.info.frame_count)
        except KeyboardInterrupt:
            if not reader.info.live:
                raise
        if sampled:
            run_window()
        finished = True
    finally:
        reader.close()
        if writer is not None:
            writer.close(keep=finished and bool(windows))  # an interrupted file run leaves the old --save file as it was
    if not windows:
        raise LstmimgError(f"{source}: no decodable frame")
    probs = weighted / weighted.sum()
    top_p, top_i = probs.topk(k)
    top = [{"label": classes[i], "prob": round(float(p), 4)} for p, i in zip(top_p.tolist(), top_i.tolist())]
    return {
        "path": str(source), "label": top[0]["label"], "prob": top[0]["prob"], "top": top,
        "frames": reader.frames_decoded, "sampled_frames": sum(w.frames for w in windows),
        "expected_frames": reader.info.frame_count, "fps": reader.info.fps, "truncated": reader.truncated,
        "windows": [asdict(w) for w in windows], "segments": merge_segments(windows), "model": str(ckpt.path),
    }
