"""Image folders: finding files, decoding any Pillow image, splitting, augmenting.

Datasets use the ImageFolder layout: one folder per class. A data root either holds ``train/`` and
``val/`` (``test/`` optional) with class folders inside, or holds class folders directly (then a
stratified, seeded split makes val). Training images are decoded once into one uint8 tensor
``(N, C, H, W)``; augmentation and normalisation run batched on the device inside the training loop.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lstmimg.errors import LstmimgError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
MIN_BATCH = 2  # a training batch of one sample breaks batch norm: such a batch is dropped
EXIF_ORIENTATION = 0x0112  # values 5 to 8 turn the picture by 90 degrees (portrait phone photos)


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` or a folder between it and ``root`` is hidden (``.DS_Store``, macOS ``._*``
    files, ``.git``): such files are no one's data, and are passed over as users expect."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def files_under(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Files with these extensions under ``folder`` (recursive, sorted), hidden ones passed over."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in extensions and not is_hidden(p, folder) and p.is_file())


def check_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path, if it is a non-empty file; else LstmimgError naming it and the problem."""
    path = Path(path)
    if not path.exists():
        raise LstmimgError(f"{path}: no such file")
    if path.is_dir():
        raise LstmimgError(f"{path}: is a folder, not {what}")
    if path.stat().st_size == 0:
        raise LstmimgError(f"{path}: empty file")
    return path


def open_image(path: str | Path, draft: tuple[str, tuple[int, int]] | None = None) -> Image.Image:
    """Open and fully decode ``path`` (first frame of multi-frame files), or raise LstmimgError.

    Pillow's decompression-bomb guard stays on: a file that claims more than twice
    ``Image.MAX_IMAGE_PIXELS`` is refused. ``draft`` = (mode, (W, H)) lets JPEG decode at a reduced
    scale, so a legitimately huge photo is shrunk while it is read, in bounded memory.
    """
    path = check_file(path, "an image")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        raise LstmimgError(f"{path}: a video, not an image (use `lstmimg video`)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd metadata; failures still raise
            img = Image.open(path)
            turned = img.getexif().get(EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
            if draft is not None and img.format == "JPEG":
                mode, (w, h) = draft
                img.draft(mode, (h, w) if turned else (w, h))  # the draft is of the file as stored
            img.load()
            img = ImageOps.exif_transpose(img)  # upright, as image viewers show it
    except Image.DecompressionBombError as err:
        raise LstmimgError(f"{path}: refused: {err.args[0].split(' could be')[0].rstrip(',')} (decompression-bomb guard)") from None
    except UnidentifiedImageError:
        raise LstmimgError(f"{path}: not an image Pillow can read") from None
    except Exception as err:
        raise LstmimgError(f"{path}: cannot decode image ({type(err).__name__}: {str(err)[:120]})") from None
    return img


def to_array(img: Image.Image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Convert any Pillow image to uint8 ``(channels, H, W)`` at ``size`` = (H, W)."""
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
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR)
    arr = np.array(img, dtype=np.uint8)  # a writable copy: (H, W) or (H, W, 3)
    return arr[None] if channels == 1 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_image(path: str | Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Decode ``path`` to uint8 ``(channels, H, W)``; raises LstmimgError naming the file."""
    img = open_image(path, draft=("L" if channels == 1 else "RGB", (size[1], size[0])))
    try:
        return to_array(img, channels, size)
    except (OSError, ValueError) as err:
        raise LstmimgError(f"{path}: cannot convert image ({err})") from None


def find_classes(folder: Path) -> list[str]:
    """Sorted names of the class folders in ``folder`` (hidden folders ignored)."""
    if not folder.is_dir():
        raise LstmimgError(f"{folder}: no such folder")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise LstmimgError(f"{folder}: no class folders (expected one sub-folder of images per class)")
    return classes


def list_class_images(folder: Path, classes: Sequence[str], extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[list[Path], list[int]]:
    """Files with these extensions under ``folder/<class>/`` (recursive, sorted) and their class indices."""
    paths, labels = [], []
    noun = "videos" if extensions == VIDEO_EXTENSIONS else "images"
    for index, name in enumerate(classes):
        class_dir = folder / name
        found = files_under(class_dir, extensions) if class_dir.is_dir() else []
        if not found:
            raise LstmimgError(f"{class_dir}: class folder has no {noun} ({', '.join(extensions)})")
        paths += found
        labels += [index] * len(found)
    return paths, labels


@dataclass
class Split:
    """File lists of one split: paths, class indices, and the class names they index."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]


def detect_kind(root: str | Path) -> str:
    """"video" when the data root's class folders hold video files, else "image"."""
    root = Path(root)
    base = root / "train" if (root / "train").is_dir() else root
    if base.is_dir():
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for path in files_under(class_dir, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS):
                if path.suffix.lower() in VIDEO_EXTENSIONS:
                    return "video"
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    return "image"
    return "image"


def split_folder(root: str | Path, val_split: float = 0.1, seed: int = 0, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> dict[str, Split]:
    """Find the splits of a data root: ``{"train", "val"}`` and ``"test"`` when present.

    Classes are those of ``train/``; a val or test class that train lacks is an error.
    """
    root = Path(root)
    if not root.exists():
        raise LstmimgError(f"{root}: no such folder")
    if not root.is_dir():
        raise LstmimgError(f"{root}: not a folder (expected an image folder with one sub-folder per class)")
    if (root / "train").is_dir():
        classes = _two_or_more(find_classes(root / "train"), root / "train")
        splits = {"train": Split(*list_class_images(root / "train", classes, extensions), classes)}
        for name in ("val", "test"):
            if (root / name).is_dir():
                extra = sorted(set(find_classes(root / name)) - set(classes))
                if extra:
                    raise LstmimgError(f"{root / name}: classes not in {root / 'train'}: {', '.join(extra)}")
                present = [c for c in classes if (root / name / c).is_dir()]
                paths, labels = list_class_images(root / name, present, extensions)
                labels = [classes.index(present[i]) for i in labels]
                splits[name] = Split(paths, labels, classes)
        if "val" in splits:
            return splits
        pool = splits.pop("train")
    else:
        classes, splits = _two_or_more(find_classes(root), root), {}
        pool = Split(*list_class_images(root, classes, extensions), classes)
    train, val = stratified_split(pool, val_split, seed)
    return {**splits, "train": train, "val": val}


def _two_or_more(classes: list[str], folder: Path) -> list[str]:
    if len(classes) < 2:
        raise LstmimgError(f"{folder}: only one class folder ({classes[0]!r}); a classifier needs at least 2")
    return classes


def missing_classes(split: Split) -> list[str]:
    """Classes with no sample in this split (train has them, val or test does not)."""
    present = set(split.labels)
    return [c for i, c in enumerate(split.classes) if i not in present]


def stratified_split(data: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Deterministically move ``fraction`` of each class (at least one image) into a second split."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    held = []
    for index in range(len(data.classes)):
        members = np.flatnonzero(labels == index)
        if len(members) < 2:
            raise LstmimgError(f"class {data.classes[index]!r} has {len(members)} image; need 2 or more to split off val")
        held += rng.permutation(members)[: max(1, round(len(members) * fraction))].tolist()
    held_set = set(held)
    keep = [i for i in range(len(labels)) if i not in held_set]
    held.sort()
    pick = lambda idx: Split([data.paths[i] for i in idx], [data.labels[i] for i in idx], data.classes)  # noqa: E731
    return pick(keep), pick(held)


def infer_image_format(paths: Sequence[Path], samples: int = 100) -> tuple[int, tuple[int, int]]:
    """Channels (1 if every sampled image is grey, else 3) and the most common size (H, W) as shown
    (EXIF orientation applied), from the headers of up to ``samples`` images spread over the list.
    Unreadable files (decompression bombs included) are passed over here; decoding lists them."""
    step = max(1, len(paths) // samples)
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
) -> ImageSet:
    """Decode every image of ``split`` on ``workers`` threads (None: chosen by image size); unreadable
    files are skipped and listed in ``skipped``."""
    arrays: list[np.ndarray | str] = []  # an array, or why the file could not be read

    def decode(path: Path) -> np.ndarray | str:
        try:
            return load_image(path, channels, size)
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


def channel_stats(images: torch.Tensor, chunk_values: int = 1 << 24) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images ``(N, C, H, W)`` (or frames ``(N, T, C, H, W)``), on
    the 0..1 scale. Summed in float64 over chunks of about ``chunk_values`` values, so the extra memory
    is a chunk's, not a float copy of the whole set."""
    c = images.shape[-3]
    flat = images.reshape(-1, c, images.shape[-2] * images.shape[-1])  # a view: (N', C, H*W)
    step = max(1, chunk_values // max(1, c * flat.shape[2]))
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(flat), step):
        x = flat[i : i + step].double()
        total += x.sum(dim=(0, 2))
        squares += x.square().sum(dim=(0, 2))
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


AFFINE_RANGES = (10.0, 0.1, (0.9, 1.1))  # rotation degrees, shift (fraction of size), zoom range


def random_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    degrees: float = AFFINE_RANGES[0],
    translate: float = AFFINE_RANGES[1],
    scale: tuple[float, float] = AFFINE_RANGES[2],
    motion: str = "none",
) -> torch.Tensor:
    """Randomly rotate, shift and scale each image of a float batch ``(B, C, H, W)``; the area brought
    in from outside is the image's reflection.

    Clips ``(B, T, C, H, W)`` get one transform per clip, the same for all its frames, so motion is kept.
    Frames with ``motion`` channels (0..1 like the rest, motion.py) get their flow vectors turned and
    scaled with the frame, and no motion in the empty area.
    """
    if x.dim() == 5:
        b, t = x.shape[:2]
        theta = _random_theta(b, generator, degrees, translate, scale).to(x.device).repeat_interleave(t, dim=0)
        return _warp(x.flatten(0, 1), theta, motion).view(x.shape)
    return _warp(x, _random_theta(x.shape[0], generator, degrees, translate, scale).to(x.device), motion)


def random_affine_draws(batch: int, generator: torch.Generator) -> None:
    """Consume the random draws ``random_affine`` makes for a batch, without transforming anything
    (replaying an interrupted epoch)."""
    _random_theta(batch, generator, *AFFINE_RANGES)


def _warp(x: torch.Tensor, theta: torch.Tensor, motion: str = "none") -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` warped by ``theta``. The area the warp brings in from outside the image is
    its reflection: a photo has no black border, and a black edge the model could learn from never
    appears at inference (measured: benchmarks/image_defaults.py). Motion channels get no motion there."""
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    if motion == "none":
        return torch.nn.functional.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    from lstmimg.motion import ZERO, warp_motion

    rgb = torch.nn.functional.grid_sample(x[:, :3], grid, padding_mode="reflection", align_corners=False)
    moved = torch.nn.functional.grid_sample(x[:, 3:] - ZERO / 255, grid, padding_mode="zeros", align_corners=False)  # no motion is 0 outside
    out = warp_motion(torch.cat([rgb, moved], 1), theta, motion)
    return torch.cat([out[:, :3], out[:, 3:] + ZERO / 255], dim=1)


def _random_theta(b: int, generator: torch.Generator, degrees: float, translate: float, scale: tuple[float, float]) -> torch.Tensor:
    """(B, 2, 3) affine matrices: rotation within +-degrees, shift within +-translate, zoom in scale."""
    rand = lambda: torch.rand(b, generator=generator)  # noqa: E731
    angle = (rand() * 2 - 1) * math.radians(degrees)
    zoom = scale[0] + rand() * (scale[1] - scale[0])
    tx, ty = (rand() * 2 - 1) * 2 * translate, (rand() * 2 - 1) * 2 * translate  # grid units: 2 = full width
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)


def expand_image_paths(sources: Iterable[str]) -> list[Path]:
    """Files, folders (recursive, image files only) and glob patterns -> a sorted-per-source path list."""
    import glob

    out: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = files_under(path, IMAGE_EXTENSIONS)
            if not found:
                raise LstmimgError(f"{path}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif path.exists():
            out.append(path)
        elif glob.has_magic(source):
            found = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
            if not found:
                raise LstmimgError(f"{source}: pattern matches no files")
            out += found
        else:
            raise LstmimgError(f"{path}: no such file or folder")
    return out
