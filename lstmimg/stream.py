"""Classify a video file or a live stream window by window, carrying the LSTM state across windows.

The video is read once, in order, by ``video.FrameReader``; every ``window`` sampled frames become one
clip ``(1, T, C, H, W)`` that the model reads on from the state the previous window left, so memory
stays constant however long the video is. Consecutive windows with the same label are merged into
segments of the timeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lstmimg.checkpoint import Checkpoint, load_checkpoint, resolve_model
from lstmimg.data import normalize
from lstmimg.errors import LstmimgError


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
    device: str = "cpu",
    save: str | Path | None = None,
    max_seconds: float | None = None,
    on_window: Callable[[Window], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    carry: bool = True,
) -> dict:
    """Classify a video file, webcam index ("0") or stream URL.

    Returns ``{"path", "label", "prob", "top", "frames", "sampled_frames", "fps", "truncated",
    "windows", "segments"}`` with times in seconds. ``window`` is frames ("16") or seconds ("2s"),
    default the model's training clip length; ``stride`` / ``fps`` sample frames (default: the
    model's training stride). ``save`` writes the video with the current label drawn on each frame.
    A live source runs until Ctrl-C or ``max_seconds``. ``carry`` passes the LSTM state from each
    window to the next (context spans windows); without it every window is scored on its own, which
    follows changes of label faster with a model trained on short clips.
    """
    from lstmimg.engine import resolve_device
    from lstmimg.video import FrameReader, VideoWriter, draw_label

    ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(resolve_model(model, "video")[0], kind="video")
    dev = resolve_device(device)
    net = ckpt.model.to(dev).eval()
    classes, k = ckpt.classes, max(1, min(topk, len(ckpt.classes)))
    stride = stride or ckpt.meta.get("frame_stride", 1)
    reader = FrameReader(source, size=ckpt.config.img_size, fps=fps, stride=stride, keep_original=save is not None, max_seconds=max_seconds)
    writer = None
    windows: list[Window] = []
    weighted = torch.zeros(len(classes))
    state = None
    buffer: list = []
    frame_gap = 1 / reader.output_fps if reader.output_fps else 0.0

    def run_window() -> None:
        nonlocal state, weighted, writer
        clip = torch.from_numpy(np.stack([f.rgb for f in buffer])).permute(0, 3, 1, 2)[None]  # (1, T, 3, H, W)
        with torch.inference_mode():
            logits, state = net.stream(normalize(clip.to(dev), ckpt.mean, ckpt.std), state if carry else None)
        probs = logits.float().softmax(1)[0].cpu()
        best = int(probs.argmax())
        w = Window(buffer[0].time, buffer[-1].time + frame_gap, len(buffer), classes[best], round(float(probs[best]), 4), [round(float(p), 4) for p in probs])
        windows.append(w)
        weighted += probs * len(buffer)
        if save is not None:
            for f in buffer:
                if writer is None:
                    writer = VideoWriter(save, reader.info.fps / stride if reader.info.fps else 25.0, f.original.shape[:2])
                writer.write(draw_label(f.original, f"{w.label} {w.prob:.2f}"))
        if on_window:
            on_window(w)
        buffer.clear()

    threads = torch.get_num_threads()
    if dev.type == "cpu":  # the decoder needs the other cores; one thread runs these small windows faster (measured)
        torch.set_num_threads(1)
    try:
        size = parse_window(window, ckpt.meta.get("clip_len", 8), reader.output_fps)
        try:
            for frame in reader:
                buffer.append(frame)
                if len(buffer) == size:
                    run_window()
                if on_progress:
                    on_progress(frame.index + 1, reader.info.frame_count)
        except KeyboardInterrupt:
            if not reader.info.live:
                raise
        if buffer:
            run_window()
    finally:
        torch.set_num_threads(threads)
        reader.close()
        if writer is not None:
            writer.close(keep=bool(windows))
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
