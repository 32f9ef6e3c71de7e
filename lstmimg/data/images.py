"""Decoding images: any Pillow image to uint8 ``(C, H, W)``, whole splits into memory, channel statistics.

Training images are decoded once into one uint8 tensor ``(N, C, H, W)``; normalisation (``normalize``)
runs batched on the device, in the training loop and the one inference path.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lstmimg.data.folders import VIDEO_EXTENSIONS, Split, check_file
from lstmimg.errors import LstmimgError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}

EXIF_ORIENTATION = 0x0112  # values 5 to 8 turn the picture by 90 degrees (portrait phone photos)


def open_image(path: str | Path, draft: tuple[str, tuple[int, int]] | None = None) -> Image.Image:
    """Open and fully decode ``path`` (first frame of multi-frame files), or raise LstmimgError.

    Pillow's decompression-bomb guard stays on: a file that claims more than twice
    ``Image.MAX_IMAGE_PIXELS`` is refused. ``draft`` = (mode, (W, H)) lets JPEG decode at a reduced
    scale, so a legitimately huge photo is shrunk while it is read, in bounded memory.
    """
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        check_file(path, "an image")
        raise LstmimgError(f"{path}: a video, not an image (use `lstmimg video`)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd metadata; failures still raise
            img = Image.open(path)
            has_exif = img.format != "JPEG" or "exif" in img.info  # a JPEG without an Exif block has no orientation to read
            orientation = img.getexif().get(EXIF_ORIENTATION, 1) if has_exif else 1
            turned = orientation in (5, 6, 7, 8)
            if draft is not None and img.format == "JPEG":
                mode, (w, h) = draft
                img.draft(mode, (h, w) if turned else (w, h))  # the draft is of the file as stored
            img.load()
            if orientation != 1:
                img = ImageOps.exif_transpose(img)  # upright, as image viewers show it (no copy when it already is)
    except Image.DecompressionBombError as err:
        raise LstmimgError(f"{path}: refused: {err.args[0].split(' could be')[0].rstrip(',')} (decompression-bomb guard)") from None
    except UnidentifiedImageError:
        check_file(path, "an image")  # a missing, empty or folder path says so; the file is checked only when it failed
        raise LstmimgError(f"{path}: not an image Pillow can read") from None
    except Exception as err:
        check_file(path, "an image")
        raise LstmimgError(f"{path}: cannot decode image ({type(err).__name__}: {str(err)[:120]})") from None
    return img


PAD_GREY = 128  # letterbox bars: mid grey, near the mean of most photos (about 0 once normalised)


def to_array(img: Image.Image, channels: int, size: tuple[int, int], fit: str = "squash") -> np.ndarray:
    """Convert any Pillow image to uint8 ``(channels, H, W)`` at ``size`` = (H, W). ``fit`` "squash"
    stretches the image to ``size``; "letterbox" scales it to fit inside, keeping its aspect, and pads
    the rest with grey bars on both sides."""
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey: scale to 8 bits
        arr = np.asarray(img, dtype=np.float32)
        scale = 257.0 if arr.max(initial=0) > 255 else 1.0
        img = Image.fromarray(np.clip(arr / scale, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("L" if channels == 1 else "RGB")
    h, w = size
    if fit == "letterbox" and img.width * h != img.height * w:
        scale = min(w / img.width, h / img.height)
        inner = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR)
        img = Image.new(img.mode, (w, h), PAD_GREY if img.mode == "L" else (PAD_GREY,) * 3)
        img.paste(inner, ((w - inner.width) // 2, (h - inner.height) // 2))
    elif img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.array(img, dtype=np.uint8)  # a writable copy: (H, W) or (H, W, 3)
    return arr[None] if channels == 1 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_image(path: str | Path, channels: int, size: tuple[int, int], fit: str = "squash") -> np.ndarray:
    """Decode ``path`` to uint8 ``(channels, H, W)`` (``fit``: see ``to_array``); raises LstmimgError naming the file."""
    img = open_image(path, draft=("L" if channels == 1 else "RGB", (size[1], size[0])))
    try:
        return to_array(img, channels, size, fit)
    except (OSError, ValueError) as err:
        raise LstmimgError(f"{path}: cannot convert image ({err})") from None


HEADERS_READ = 10_000  # image headers read to choose the input size (a header is a few hundred bytes): every file of most sets


def infer_image_format(paths: Sequence[Path], samples: int = HEADERS_READ, counts: Counter | None = None) -> tuple[int, tuple[int, int]]:
    """Channels (1 if every image read is grey, else 3) and the most common size (H, W) as shown
    (EXIF orientation applied), from the headers of every image, or of ``samples`` spread over a longer
    list. ``counts``, when given, receives how many images have each size. Unreadable files
    (decompression bombs included) are passed over here; decoding lists them."""
    step = -(-len(paths) // samples) if len(paths) > samples else 1
    modes, sizes = set(), Counter()
    for path in paths[::step]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DecompressionBombWarning and notes on odd metadata
                with Image.open(path) as img:
                    turned = img.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
                    modes.add(img.mode)
                    sizes[(img.width, img.height) if turned else (img.height, img.width)] += 1
        except Exception:  # any failure means this header tells nothing
            continue
    if not sizes:
        raise LstmimgError(f"{paths[0].parent}: none of the sampled images could be read")
    if counts is not None:
        counts.update(sizes)
    return (1 if modes <= GRAY_MODES else 3), sizes.most_common(1)[0][0]


@dataclass
class ImageSet:
    """Decoded images in memory: ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    paths: list[Path]
    skipped: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why each skipped file was skipped


def decode_split(
    split: Split,
    channels: int,
    size: tuple[int, int],
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    fit: str = "squash",
) -> ImageSet:
    """Decode every image of ``split`` on ``workers`` threads (None: chosen by image size), resized by
    ``fit`` (``to_array``); unreadable files are skipped and listed in ``skipped``."""
    arrays: list[np.ndarray | str] = []  # an array, or why the file could not be read

    def decode(path: Path) -> np.ndarray | str:
        try:
            return load_image(path, channels, size, fit)
        except LstmimgError as err:
            return str(err)

    # Pillow holds the GIL for small images, so threads only pay off for larger ones (measured).
    threads = max(1, workers) if workers is not None else (min(4, os.cpu_count() or 1) if size[0] * size[1] >= 96 * 96 else 1)
    with ThreadPoolExecutor(threads) as pool:
        for done, arr in enumerate(pool.map(decode, split.paths, chunksize=64), 1):
            arrays.append(arr)
            if progress and (done % 256 == 0 or done == len(split.paths)):
                progress(done, len(split.paths))
    ok = [i for i, a in enumerate(arrays) if not isinstance(a, str)]
    bad = [i for i, a in enumerate(arrays) if isinstance(a, str)]
    if not ok:
        raise LstmimgError(f"{split.paths[0].parent.parent}: no readable images ({arrays[0]})")
    images = torch.from_numpy(np.stack([arrays[i] for i in ok]))
    labels = torch.tensor([split.labels[i] for i in ok], dtype=torch.long)
    return ImageSet(images, labels, split.classes, [split.paths[i] for i in ok], [split.paths[i] for i in bad], [arrays[i] for i in bad])


def channel_stats(images: torch.Tensor, chunk_values: int = 1 << 22) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images ``(N, C, H, W)`` (or frames ``(N, T, C, H, W)``), on
    the 0..1 scale. Summed in float64 over chunks of about ``chunk_values`` values, so the extra memory
    is a chunk's, not a float copy of the whole set."""
    c = images.shape[-3]
    flat = images.reshape(-1, c, images.shape[-2] * images.shape[-1])  # a view: (N', C, H*W)
    step = max(1, chunk_values // max(1, c * flat.shape[2]))
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    buffer = torch.empty(min(step, len(flat)), c, flat.shape[2], dtype=torch.float64)  # one float64 chunk, reused: a new one per chunk let the allocator's peak grow to the set's size
    for i in range(0, len(flat), step):
        x = buffer[: len(flat[i : i + step])]
        x.copy_(flat[i : i + step])
        total += x.sum(2).sum(0)  # (n, C) then (C,): no temporary the size of the chunk
        squares += x.square_().sum(2).sum(0)  # in place
    n = flat.shape[0] * flat.shape[2]
    mean = total / n
    var = (squares - n * mean.square()) / max(1, n - 1)
    return (mean / 255).tolist(), (var.clamp_min(0).sqrt() / 255).clamp_min(1e-3).tolist()


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 or 0..1 float images ``(..., C, H, W)`` (``(B, C, H, W)`` or clips ``(B, T, C, H, W)``)
    -> normalised float32."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x.div_(255)
    m = torch.tensor(mean, device=x.device).view(-1, 1, 1)
    s = torch.tensor(std, device=x.device).view(-1, 1, 1)
    return (x - m) / s
