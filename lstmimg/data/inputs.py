"""Decoding unlabelled files for classification, one file an item, ready for DataLoader workers.

``ImageInputs`` decodes an image to the model's input, ``VideoInputs`` a video to the clips that
validation and ``lstmimg eval`` score it by (``val_clips`` evenly spaced clips at the model's size,
motion channels at the run's stride; only the clips' frames are kept): so ``predict`` gives a video exactly
the probabilities ``eval`` gives it. An unreadable file becomes an item that carries the reason instead
of raising, so one bad file never stops a collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from lstmimg.errors import LstmimgError


@dataclass
class Decoded:
    """One decoded input: ``x`` uint8, an image ``(C, H, W)`` or a video's clips ``(n, T, C, H, W)``,
    or None with ``error`` saying why. Videos also give ``frames`` decoded and ``seconds``."""

    path: Path
    x: torch.Tensor | None
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None


@dataclass
class DecodedImages:
    """A batch of decoded images: ``x`` uint8 ``(B, C, H, W)`` of the readable ones (None if none is),
    their ``paths`` in order, and ``(path, reason)`` for the unreadable ones. One tensor a batch, so a
    DataLoader worker hands the batch over in one piece of shared memory, not one per image."""

    x: torch.Tensor | None
    paths: list[str]  # text, not Path objects: a batch crosses from a worker in one cheap pickle
    errors: list[tuple[str, str]]


def collate_images(items: list[Decoded]) -> DecodedImages:
    good = [d for d in items if d.x is not None]
    return DecodedImages(torch.stack([d.x for d in good]) if good else None, [str(d.path) for d in good], [(str(d.path), d.error) for d in items if d.x is None])


def kind_of(path: Path, kind: str) -> str:
    """The kind a model of ``kind`` should take ``path`` for: its extension decides when it names
    the other kind; any other file is tried as the model's kind (and is refused by the decoder if it
    is not)."""
    other, extensions = ("video", VIDEO_EXTENSIONS) if kind == "image" else ("image", IMAGE_EXTENSIONS)
    return other if path.suffix.lower() in extensions else kind


class ImageInputs(torch.utils.data.Dataset):
    """Item ``i``: image file ``i`` decoded to uint8 ``(channels, H, W)`` at ``size`` (``fit``: images.to_array)."""

    def __init__(self, paths: Sequence[Path], channels: int, size: tuple[int, int], fit: str = "squash"):
        self.paths, self.channels, self.size, self.fit = list(paths), channels, size, fit

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Decoded:
        from lstmimg.data.images import load_image

        path = self.paths[i]
        try:
            return Decoded(path, torch.from_numpy(load_image(path, self.channels, self.size, self.fit)))
        except LstmimgError as err:
            return Decoded(path, None, str(err))


class VideoInputs(torch.utils.data.Dataset):
    """Item ``i``: video file ``i`` as ``clips`` evenly spaced clips of ``clip_len`` frames every
    ``stride``, uint8 ``(clips, clip_len, 3 + k, H, W)`` at ``size``, ``motion``'s k channels computed
    at ``stride`` over the whole video (as training and validation compute them)."""

    def __init__(self, paths: Sequence[Path], size: tuple[int, int], clip_len: int, stride: int, clips: int, motion: str = "none"):
        self.paths, self.size, self.clip_len, self.stride, self.clips, self.motion = list(paths), size, clip_len, stride, clips, motion

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Decoded:
        """Only the frames the clips use are converted and kept (placed by the header's frame count), so
        a long video costs no more memory than a short one; a file whose header has no count, or that
        ends early, is decoded whole, which tells the two apart."""
        from lstmimg.data.clips import read_picked, scored_frames
        from lstmimg.data.video_io import read_video

        path = self.paths[i]
        scored: list[list[int]] = []

        def picked(length: int) -> list[int]:  # every clip's frame numbers, clip after clip
            scored[:] = scored_frames(length, self.clip_len, self.stride, self.clips)
            return [f for clip in scored for f in clip]

        try:
            try:
                header: list = []
                frames = read_picked(path, picked, self.size, self.motion, self.stride, header)  # (clips * clip_len, H, W, 3 + k)
                count, fps = header[0].frame_count, header[0].fps
                clips = torch.from_numpy(frames).permute(0, 3, 1, 2).reshape(len(scored), self.clip_len, frames.shape[-1], *frames.shape[1:3])
            except LstmimgError:
                whole, reader = read_video(path, self.size)
                count, fps = len(whole), reader.info.fps
                clips = scored_clips(whole, self.clip_len, self.stride, self.clips, self.motion)
        except LstmimgError as err:
            return Decoded(path, None, str(err))
        return Decoded(path, clips.contiguous(), None, count, round(count / fps, 3) if fps else None)


def scored_clips(frames, clip_len: int, stride: int, clips: int, motion: str = "none") -> torch.Tensor:
    """The clips a video is scored by: RGB frames ``(T, H, W, 3)`` at the model's size, with ``motion``'s
    channels at ``stride``, cut into ``clips`` evenly spaced clips, uint8 ``(clips, clip_len, 3 + k, H, W)``."""
    from lstmimg.data.clips import motion_stride, uniform_clips
    from lstmimg.data.motion import with_motion

    video = torch.from_numpy(with_motion(frames, motion, motion_stride(stride))).permute(0, 3, 1, 2).contiguous()  # (T, 3 + k, H, W)
    return uniform_clips(video, clip_len, stride, clips)
