"""Video datasets: class folders of clips decoded into memory, clip sampling, video-level scoring.

Every video is decoded once (``lstmimg.data.video_io``) to uint8 frames ``(T, C, H, W)`` at the model's size.
Training draws one random clip of ``clip_len`` frames at ``frame_stride`` per video per epoch;
validation takes ``val_clips`` uniformly spaced clips per video and averages their softmax. A video
shorter than a clip repeats its last frame.

With ``frame_stride`` 0 (``SEGMENTS``) a clip covers the whole video instead (segment sampling, as in
TSN, Wang et al. 2016): the video is cut into ``clip_len`` equal segments and the clip takes one frame
from each, at the same place in every segment (the draw in training; the middle of its share for each
scored clip). Motion input is then computed between neighbouring frames (``motion_stride``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lstmimg.data.folders import Split
from lstmimg.errors import LstmimgError

SEGMENTS = 0  # the frame stride that means segment sampling: a clip's frames spread over the whole video


def motion_stride(stride: int) -> int:
    """The frame distance motion input is computed over for clips cut at ``stride``: the stride itself,
    or 1 (neighbouring frames) under segment sampling."""
    return max(1, stride)


@dataclass
class VideoSet:
    """Decoded videos: ``videos[i]`` is uint8 ``(T_i, C, H, W)``; ``labels`` int64 ``(N,)``."""

    videos: list[torch.Tensor]
    labels: torch.Tensor
    classes: list[str]
    paths: list[Path]
    skipped: list[Path] = field(default_factory=list)
    truncated: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why each skipped file was skipped

    def __len__(self) -> int:
        return len(self.videos)


def infer_video_size(paths: Sequence[Path], samples: int = 20) -> tuple[int, int]:
    """The most common frame size (H, W) among a spread of videos."""
    from lstmimg.data.video_io import probe_size  # OpenCV only where videos are read

    sizes: Counter = Counter()
    for path in paths[:: max(1, len(paths) // samples)]:
        try:
            sizes[probe_size(path)] += 1
        except LstmimgError:
            continue
    if not sizes:
        raise LstmimgError(f"{paths[0].parent}: none of the sampled videos could be opened")
    return sizes.most_common(1)[0][0]


def cache_key(path: Path, size: tuple[int, int], motion: str = "none", stride: int = 1) -> str:
    """Content hash of the file plus the decode settings (size, motion input and the stride it is
    computed at): a changed file or setting is a new key."""
    from lstmimg.data.motion import FLOW_SCALE, PRESET
    from lstmimg.files import content_hash

    extra = "" if motion == "none" else f"-{motion}{motion_stride(stride)}" + (f"-{PRESET}-{FLOW_SCALE:g}" if motion == "flow" else "")
    return f"{content_hash(path)}-{size[0]}x{size[1]}-rgb{extra}-v2"


def decode_cached(path: Path, size: tuple[int, int], cache: str | Path | None, mmap: bool = False, key: str | None = None,
                  motion: str = "none", stride: int = 1) -> tuple[np.ndarray, bool]:
    """Frames ``(T, H, W, 3 + k)`` of ``path`` (RGB, then ``motion``'s channels from frame ``t - motion_stride(stride)``)
    and whether it was truncated, from the frame cache when it holds them; else decoded, and stored there. An entry is one ``.npy`` file (``KEY.npy``, or
    ``KEY.truncated.npy``), so ``mmap`` can map it and read only the frames a clip needs. Entries are
    written atomically (``files.atomic_write``), so two processes filling the cache at once never leave
    a half-written entry, and a failed write leaves nothing. ``key``: ``cache_key(path, size, motion,
    stride)`` when the caller has it already (DataLoader workers get the keys from the main process)."""
    from lstmimg.data.motion import with_motion
    from lstmimg.data.video_io import read_video

    key = (key or cache_key(path, size, motion, stride)) if cache else None
    if key is not None:
        for truncated in (False, True):
            entry = Path(cache) / f"{key}{'.truncated' if truncated else ''}.npy"
            if entry.is_file():
                try:
                    return np.load(entry, mmap_mode="r" if mmap else None), truncated
                except (OSError, ValueError):
                    pass  # a damaged entry is decoded again and replaced
    frames, reader = read_video(path, size)
    frames = with_motion(frames, motion, motion_stride(stride))
    if key is not None:
        from lstmimg.files import atomic_write

        entry = Path(cache) / f"{key}{'.truncated' if reader.truncated else ''}.npy"
        entry.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(entry) as f:
            np.save(f, frames)
    return frames, reader.truncated


def first_frames(path: Path, size: tuple[int, int], count: int, motion: str = "none", stride: int = 1, motion_before: bool = False) -> np.ndarray:
    """The first ``count`` frames of ``path`` sampled every ``stride`` frames, ``(T, H, W, 3 + k)``, with
    ``motion``'s channels between consecutive sampled frames (what ``decode_cached`` gives for them), or
    with ``motion_before`` from the frame before each (a model trained on segments).
    Decoding stops there: memory and time are those of ``count`` frames, however long the video."""
    from lstmimg.data.motion import MotionStream
    from lstmimg.data.video_io import FrameReader

    frames = []
    with FrameReader(path, size=size, stride=stride, transform=MotionStream(motion).add, queue_size=4, motion_before=motion_before) as reader:
        for frame in reader:
            if frame.sampled:
                frames.append(frame.rgb)
                if len(frames) == count:
                    break
    return np.stack(frames)


def frame_counts(paths: Sequence[Path], samples: int = 20) -> list[int]:
    """The frame counts of a spread of ``samples`` of ``paths``, from their headers (those that
    cannot be opened, or do not say, left out)."""
    from lstmimg.data.video_io import open_video

    counts = []
    for path in paths[:: max(1, len(paths) // samples)]:
        try:
            cap, info = open_video(path)
            cap.release()
        except LstmimgError:
            continue
        if info.frame_count > 0:
            counts.append(info.frame_count)
    return counts


def decoded_bytes(paths: Sequence[Path], size: tuple[int, int], samples: int = 20) -> int:
    """About how many bytes ``paths`` take decoded at ``size``: the mean frame count of a spread of
    them (from their headers) times their number."""
    counts = frame_counts(paths, samples)
    mean = sum(counts) / len(counts) if counts else 0
    return int(mean * len(paths) * 3 * size[0] * size[1])


def decode_videos(
    split: Split,
    size: tuple[int, int],
    progress: Callable[[int, int], None] | None = None,
    cache: str | Path | None = None,
    workers: int | None = None,
    motion: str = "none",
    stride: int = 1,
) -> VideoSet:
    """Decode every video of ``split`` (RGB, at ``size``, with ``motion`` input at ``stride``) on
    ``workers`` threads (None: one per core, up to 4; FFmpeg and OpenCV's flow run outside the GIL),
    through the frame cache when given; unreadable ones are skipped and listed."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def decode(path: Path):
        try:
            return decode_cached(path, size, cache, motion=motion, stride=stride)
        except LstmimgError as err:
            return str(err)

    videos, labels, paths, skipped, truncated, errors = [], [], [], [], [], []
    threads = max(1, workers) if workers is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(threads) as pool:
        for done, (path, label, result) in enumerate(zip(split.paths, split.labels, pool.map(decode, split.paths)), 1):
            if isinstance(result, str):
                skipped.append(path)
                errors.append(result)
                continue
            frames, was_truncated = result
            if was_truncated:
                truncated.append(path)
            videos.append(torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous())  # (T, 3 + k, H, W)
            labels.append(label)
            paths.append(path)
            if progress:
                progress(done, len(split.paths))
    if not videos:
        raise LstmimgError(f"{split.paths[0].parent.parent}: no readable videos ({errors[0]})")
    return VideoSet(videos, torch.tensor(labels, dtype=torch.long), split.classes, paths, skipped, truncated, errors)


def video_stats(videos: Sequence[torch.Tensor], max_frames: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) over a spread of frames of the videos."""
    frames = torch.cat([v[:: max(1, len(v) // 8)] for v in videos])
    frames = frames[:: max(1, len(frames) // max_frames)].float().div_(255)
    flat = frames.transpose(0, 1).reshape(frames.shape[1], -1)
    return flat.mean(dim=1).tolist(), flat.std(dim=1).clamp_min(1e-3).tolist()


def clip_indices(start: int, clip_len: int, stride: int, length: int) -> torch.Tensor:
    """Frame numbers of a clip: ``clip_len`` from ``start`` every ``stride``; past the end of a video
    of ``length`` frames, the last frame repeats."""
    return (start + torch.arange(clip_len) * stride).clamp(max=length - 1)


def segment_indices(place: float, clip_len: int, length: int) -> torch.Tensor:
    """Frame numbers of a clip spread over a whole video of ``length`` frames: the frame at ``place``
    (0 to 1) of each of ``clip_len`` equal segments. A video shorter than the clip repeats frames."""
    return ((torch.arange(clip_len) + place) * (length / clip_len)).long().clamp(0, length - 1)


def clip_start(draw: float, length: int, clip_len: int, stride: int) -> int:
    """Where a random clip starts in a video of ``length`` frames, for a uniform ``draw`` in [0, 1)."""
    span = (clip_len - 1) * stride + 1
    return int(draw * max(1, length - span + 1))


def drawn_frames(draw: float, length: int, clip_len: int, stride: int) -> torch.Tensor:
    """Frame numbers of the training clip a uniform ``draw`` in [0, 1) picks in a video of ``length``
    frames: the clip starting where the draw puts it, or with ``stride`` ``SEGMENTS`` the frame at that
    place of every segment."""
    if stride == SEGMENTS:
        return segment_indices(draw, clip_len, length)
    return clip_indices(clip_start(draw, length, clip_len, stride), clip_len, stride, length)


def random_clips(data: VideoSet, videos: torch.Tensor, draws: torch.Tensor, clip_len: int, stride: int) -> torch.Tensor:
    """One clip from each of ``videos`` (indices into ``data``, repeats allowed), each where its uniform
    draw in ``draws`` (one per clip) puts it (``drawn_frames``): uint8 ``(B, clip_len, C, H, W)``."""
    clips = []
    for i, draw in zip(videos.tolist(), draws.tolist()):
        video = data.videos[i]
        clips.append(video[drawn_frames(draw, len(video), clip_len, stride)])
    return torch.stack(clips)


def scored_frames(length: int, clip_len: int, stride: int, count: int) -> list[list[int]]:
    """Frame numbers of the up to ``count`` clips a video of ``length`` frames is scored by, clip by
    clip: evenly spaced starts covering the video, or with ``SEGMENTS`` the middle of each of ``count``
    equal shares of every segment. A video too short for ``count`` different clips gives fewer: the same
    clip twice would cost a model call and count twice in the average."""
    if stride == SEGMENTS:
        clips = [segment_indices((j + 0.5) / count, clip_len, length).tolist() for j in range(count)]
    else:
        span = (clip_len - 1) * stride + 1
        starts = np.linspace(0, max(0, length - span), num=count).round().astype(int).tolist()
        clips = [clip_indices(s, clip_len, stride, length).tolist() for s in starts]
    return [c for j, c in enumerate(clips) if c not in clips[:j]]


def uniform_clips(video: torch.Tensor, clip_len: int, stride: int, count: int) -> torch.Tensor:
    """The clips ``scored_frames`` names, cut from ``video`` ``(T, C, H, W)``: ``(n, clip_len, C, H, W)``."""
    return torch.stack([video[f] for f in scored_frames(len(video), clip_len, stride, count)])


def read_picked(path: Path, picked: Callable[[int], Sequence[int]], size: tuple[int, int], motion: str = "none", stride: int = 1, info_out: list | None = None) -> np.ndarray:
    """Only the frames ``picked(frame_count)`` names (the header's count), ``(len(picked), H, W, 3 + k)``
    uint8 at ``size``, decoding up to the last of them and converting only those. With ``motion``, the
    frame ``stride`` before each is read too, so its motion is what the whole video's
    (``motion.with_motion``) gives it. Raises LstmimgError when the header has no count or the file ends
    early (decode it whole then) or cannot be read. ``info_out`` as ``video_io.read_frames``."""
    from lstmimg.data.motion import MotionStream
    from lstmimg.data.video_io import read_frames  # OpenCV only where videos are read

    if motion == "none":
        return read_frames(path, picked, size, info_out)
    stride = motion_stride(stride)
    clip: list[int] = []
    needed: list[int] = []

    def pick(length: int) -> list[int]:  # read_frames calls it once, with the header's frame count
        clip[:] = picked(length)
        needed[:] = sorted(set(clip) | {f - stride for f in clip if f >= stride})
        return needed

    read = read_frames(path, pick, size, info_out)  # (len(needed), H, W, 3)
    at = {f: n for n, f in enumerate(needed)}
    out = {}
    for f in set(clip):
        stream = MotionStream(motion)
        stream.add(read[at[f - stride] if f >= stride else at[f]])
        out[f] = stream.add(read[at[f]])
    return np.stack([out[f] for f in clip])


def shuffle_time(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each clip ``(B, T, ...)`` with its frames in a random order (the order-blind ablation)."""
    order = torch.stack([torch.randperm(clips.shape[1], generator=generator) for _ in range(clips.shape[0])])
    return clips[torch.arange(clips.shape[0])[:, None], order]
