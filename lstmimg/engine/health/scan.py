"""Reading every file of a data folder once, for ``lstmimg check`` (check.py): each file's bytes hashed
(exact duplicates), its size and channels from the header, and its 32x32 grey picture(s) (an image's,
decoded small: a JPEG at a reduced scale; a video's three frames spread over it) with their perceptual
hashes (copies.py). Many small files are read by forked worker processes, a chunk a task, which read
plain JPEGs through data/jpeg.py rather than Pillow and hash their chunk; larger files by threads. The
same readers later compare near pairs again at the files' own size.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError  # not lstmimg.data.images: a forked worker would import torch for a constant

from lstmimg.data import jpeg
from lstmimg.engine.health.copies import perceptual, same_pairs
from lstmimg.errors import LstmimgError, die_with_parent
from lstmimg.files import content_hash

VIDEO_FRAMES = 3  # frames hashed per video, spread over it


def _small(img) -> np.ndarray:
    """The 32x32 grey picture of a Pillow image, uint8 ``(1024,)``."""
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR)).ravel()


def _image_facts(path: Path, fast: bool = False) -> dict:
    """An image's facts from one read of its bytes: their hash, its size as shown and mode from the
    header, and its 32x32 grey picture from a decode at a reduced scale where the format allows (JPEG:
    the grey channel only, at the smallest scale that still holds 32x32). ``fast``: a plain JPEG is read
    by data/jpeg.py (the same picture, a quarter of the time for small files; libjpeg then prints its
    warnings on a damaged file to stderr, so only the scan's workers, whose stderr is closed, ask for it)."""
    with open(path, "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()[:32]
    facts = _jpeg_facts(data) if fast else None
    if facts is not None:
        facts["sha"] = sha
        return facts
    try:
        img = Image.open(io.BytesIO(data))
        turned = (img.format != "JPEG" or "exif" in img.info) and img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
        size, mode = ((img.width, img.height) if turned else (img.height, img.width)), img.mode
        if img.format == "JPEG":
            side = _draft_side(*img.size)
            img.draft("L", (side, side))
        img.load()  # the full decode: a truncated file fails here
        small = _small(img)
    except Image.DecompressionBombError:
        raise LstmimgError(f"{path}: refused: too many pixels (decompression-bomb guard)") from None
    except UnidentifiedImageError:
        raise LstmimgError(f"{path}: not an image Pillow can read") from None
    except Exception as err:
        raise LstmimgError(f"{path}: cannot decode image ({type(err).__name__}: {str(err)[:120]})") from None
    return {"size": size, "mode": mode, "small": small, "sha": sha}


def _draft_side(w: int, h: int) -> int:
    """The side a JPEG is drafted to: twice the picture where the file has it (a coarser draft aliases
    textures, so a resized copy then differs), else the picture's 32."""
    return 64 if min(w, h) >= 128 else 32


def _jpeg_facts(data: bytes) -> dict | None:
    """``_image_facts`` of a plain JPEG's bytes through data/jpeg.py (all but ``sha``), or None where Pillow must read them."""
    head = jpeg.header(data)
    if head is None or head[0] * head[1] > (Image.MAX_IMAGE_PIXELS or np.inf):
        return None
    h, w, components = head
    grey = jpeg.grey_at_scale(data, jpeg.draft_scale(h, w, _draft_side(w, h)))
    if grey is None:
        return None
    if grey.shape != (32, 32):  # Pillow's resize to the same size is a copy
        grey = np.asarray(Image.fromarray(grey).resize((32, 32), Image.Resampling.BILINEAR))
    return {"size": (h, w), "mode": "L" if components == 1 else "RGB", "small": grey.ravel()}


def _video_facts(path: Path) -> dict:
    from lstmimg.data.video_io import probe_info, read_frames

    info = probe_info(path)
    facts = {"size": (info.height, info.width), "fps": round(info.fps, 2), "frames": info.frame_count}
    if info.frame_count < 1:
        raise LstmimgError(f"{path}: no frames")
    picked = np.linspace(0, info.frame_count - 1, VIDEO_FRAMES + 2)[1:-1].round().astype(int).tolist()  # inside the clip, not its first and last frames
    frames = read_frames(path, lambda count: picked, (64, 64))
    facts["small"] = np.concatenate([_small(Image.fromarray(np.ascontiguousarray(f[..., :3]))) for f in frames])
    return facts


FORK_FROM = 2000  # files: from this many small ones, scan forks worker processes (starting them costs less than it saves)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _quiet_worker(parent: int) -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL, parent)
    with open(os.devnull, "w") as null:  # C libraries' warnings would land between the parent's lines; a file's problem comes back as its line
        os.dup2(null.fileno(), 2)


@contextmanager
def signals_deferred(when: bool = True):
    """Ctrl-C and SIGTERM are handled when the block ends, not inside it: an exception raised while
    ``fork`` runs its handlers is swallowed there ("Exception ignored in _releaseLock") and the command
    would go on; a worker forked in the block is only told, and ignores both from its first line on."""
    if not when or threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: came.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for sig in dict.fromkeys(came):
        if callable(previous[sig]):
            previous[sig](sig, None)  # KeyboardInterrupt, or the CLI's Terminated
        else:
            signal.raise_signal(sig)


def _facts_or_why(kind: str, path: Path, fast: bool = False) -> dict | str:
    """One file's facts, or the line that says why it cannot be read (the caller keeps Pillow's warnings quiet)."""
    try:
        if kind == "video":
            facts = _video_facts(path)
            facts["sha"] = content_hash(path)
            return facts
        return _image_facts(path, fast)
    except LstmimgError as err:
        return str(err)
    except OSError as err:
        return f"{path}: cannot read ({err.strerror or err})"


CHUNK = 64  # files a worker reads per task


def _pictures(kind: str) -> int:
    """32x32 grey pictures a file has: one an image, ``VIDEO_FRAMES`` a video."""
    return VIDEO_FRAMES if kind == "video" else 1


def _chunk_facts(kind: str, paths: Sequence[Path]) -> tuple[list[dict | str], np.ndarray, np.ndarray]:
    """A worker's task: the facts of ``paths`` (plain JPEGs read through data/jpeg.py) without their
    pictures, which come as one array ``(k, P)`` uint8 (zeros where a file is unreadable), and their
    perceptual hashes ``(k, F)`` uint64: two arrays to pickle instead of one a file halves what handing
    results back costs the parent, and the hashes are computed on the workers' cores."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        facts = [_facts_or_why(kind, p, fast=True) for p in paths]
    pictures = np.zeros((len(paths), _pictures(kind) * 1024), np.uint8)
    for row, f in zip(pictures, facts):
        if isinstance(f, dict):
            row[:] = f.pop("small")
    return facts, pictures, perceptual(pictures.reshape(-1, 1024)).reshape(len(paths), -1)


@contextmanager
def readers(paths: Sequence[Path], workers: int | None = None):
    """The pool that reads ``paths`` (and later confirms near pairs at their own size), as ``(pool, forked)``:
    forked processes for many small files, threads for larger ones (Pillow holds the GIL for small images,
    so threads pay off only for larger files, as in decode_split), or None (one reader). A forked worker
    ignores Ctrl-C and SIGTERM (this process stops the work) and dies with this process, even by kill -9."""
    auto = workers is None
    workers = min(4, os.cpu_count() or 1) if auto else max(1, workers)
    sample = [p.stat().st_size for p in paths[:: max(1, len(paths) // 50)] if p.is_file()]
    small_files = not sample or np.median(sample) <= 64 * 1024
    forked = workers > 1 and small_files and len(paths) >= FORK_FROM and "fork" in multiprocessing.get_all_start_methods()
    if auto and small_files and not forked:
        workers = 1
    if forked:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_quiet_worker, initargs=(os.getpid(),))
    else:
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        yield pool, forked
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)  # after Ctrl-C: the tasks not started are dropped, not run


def scan(paths: Sequence[Path], kind: str, workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[list[dict | str], np.ndarray, np.ndarray]:
    """Each file's facts (``sha``, ``size``, ``mode``; videos ``fps``, ``frames``) or why it cannot be
    read, with its 32x32 grey pictures ``(N, P)`` uint8 (P = 1024 a picture; zeros where unreadable)
    and their perceptual hashes ``(N, F)`` uint64."""
    with readers(paths, workers) as (pool, forked):
        return scan_on(paths, kind, pool, forked, progress)


def scan_on(paths: Sequence[Path], kind: str, pool, forked: bool, progress: Callable[[int, int], None] | None) -> tuple[list[dict | str], np.ndarray, np.ndarray]:
    """``scan`` on ``readers``' ``(pool, forked)``, which the caller keeps for ``confirm_alike``."""
    facts: list[dict | str] = []
    pictures = np.zeros((len(paths), _pictures(kind) * 1024), np.uint8)
    hashes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's warnings on odd files: the file's line says what matters
        with signals_deferred(forked):  # the first submit forks the workers
            if forked:  # a chunk of files a task, its pictures and hashes handed back as arrays
                chunks = pool.map(partial(_chunk_facts, kind), [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)])
            else:
                chunks = ([f] for f in (pool.map(partial(_facts_or_why, kind), paths) if pool else map(partial(_facts_or_why, kind), paths)))
        for chunk in chunks:
            if forked:
                chunk, block, chunk_hashes = chunk
                pictures[len(facts) : len(facts) + len(chunk)] = block
                hashes.append(chunk_hashes)
            elif isinstance(chunk[0], dict):
                pictures[len(facts)] = chunk[0].pop("small")
            facts += chunk
            if progress and (len(facts) % 256 < len(chunk) or len(facts) == len(paths)):
                progress(len(facts), len(paths))
    if not forked:  # hashed here, a few thousand at a time
        hashes = [perceptual(pictures[s : s + 4096].reshape(-1, 1024)).reshape(-1, _pictures(kind)) for s in range(0, len(paths), 4096)]
    return facts, pictures, np.concatenate(hashes) if hashes else np.zeros((0, _pictures(kind)), np.uint64)


VERIFY_TASK = 16  # near pairs a reader confirms at their own size per task
SAME_ASPECT = 1.15  # ... of files whose aspects differ by at most this ratio: a resized or re-encoded copy keeps its aspect (a
# slightly cropped one nearly), and comparing other shapes squeezes one, as the 32x32 pictures did (2,650 of 20,000 crops of 14 photos
# were compared again, 1.2 ms a pair on one core, and none was a copy; the copies of benchmarks/check.py differ by under 3%)


def confirm_alike(pool, forked: bool, paths: Sequence[Path], sizes: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """Whether each near pair (indices into ``paths``; ``sizes`` ``(N, 2)`` their (H, W)) shows the same
    picture at its own size: pairs of other aspects (``SAME_ASPECT``) are not, the rest ``_confirm``'s."""
    aspect = sizes[:, 1] / np.maximum(sizes[:, 0], 1)
    alike = np.maximum(aspect[ii], aspect[jj]) <= SAME_ASPECT * np.minimum(aspect[ii], aspect[jj])
    same = np.zeros(len(ii), dtype=bool)
    same[alike] = _confirm(pool, forked, [(paths[i], paths[j]) for i, j in zip(ii[alike], jj[alike])])
    return same


def _confirm(pool, forked: bool, pairs: Sequence[tuple[Path, Path]]) -> list[bool]:
    """copies.same_pairs over the readers, a few pairs a task (forked workers decode plain JPEGs through
    data/jpeg.py, as in the scan)."""
    tasks = [pairs[k : k + VERIFY_TASK] for k in range(0, len(pairs), VERIFY_TASK)]
    done = pool.map(partial(same_pairs, fast=forked), tasks) if pool and len(tasks) > 1 else map(same_pairs, tasks)
    return [same for task in done for same in task]
