"""Near copies among many pictures: 64-bit perceptual hashes, candidate pairs by hash distance (flat
pictures by their means), confirmed on the 32x32 grey pictures or, short of that, at the files' own size,
and the groups the pairs join. ``lstmimg check`` (check.py) reads the files; this finds the copies."""

from __future__ import annotations

import io
import itertools
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lstmimg.data import jpeg

NEAR_BITS = 8  # perceptual hashes at most this many bits apart are a candidate pair
SAME_PICTURE = 2.0  # ... confirmed when their 32x32 grey pictures differ by at most this much on average (of 255)
SAME_SHAPE = 0.99  # ... and correlate at least this much (two handwritten 1s on black differ by little on average, but not in shape)
CLOSE_PICTURE, CLOSE_SHAPE = 3.0, 0.993  # ... or differ a little more with nearly the same shape (a small image resized: 48 px against 96 px
# differed by 2.2-2.7 at a correlation of 0.994-0.997; among the bundled digits' 44,657 candidate pairs the highest correlation is 0.989)
FLAT = 8.0  # a 32x32 picture whose grey levels spread (standard deviation) less than this is flat: its hash says little
MAYBE_PICTURE, MAYBE_SHAPE = 8.0, 0.9  # a pair short of that but within these is compared again at the smaller file's own size
VERIFY_SIDE = 128  # ... at most this many pixels a side
_DCT = np.cos(np.pi / 64 * np.outer(np.arange(32), 2 * np.arange(32) + 1)).astype(np.float32)  # (32, 32) DCT-II basis


def perceptual(grey32: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes of 32x32 grey pictures ``(N, 1024)`` (or one ``(32, 32)``), all at once:
    the signs of each one's lowest 8x8 DCT frequencies against their median (the DC term left out of the
    median). Returns ``(N,)`` uint64."""
    pictures = np.asarray(grey32, dtype=np.float32).reshape(-1, 32, 32)
    low = (_DCT[:8] @ pictures @ _DCT[:8].T).reshape(len(pictures), 64)  # (N, 64): only the 8x8 block is computed
    median = np.partition(low[:, 1:], 31, axis=1)[:, 31:32]  # the median of the 63 (the 32nd smallest)
    return np.packbits(low > median, axis=1).view(">u8")[:, 0].astype(np.uint64)


def _hash_candidates(hashes: np.ndarray, chunk: int):
    """(i, j) arrays, i < j, of the samples whose perceptual hashes are each at most ``NEAR_BITS`` apart, a
    block of rows at a time (blocks on two threads: NumPy lets go of the GIL over whole arrays)."""

    def block_pairs(start: int) -> tuple[np.ndarray, np.ndarray]:
        block = hashes[start : start + chunk]  # (b, F): compared with the samples after it only
        distance = np.bitwise_count(block[:, :1] ^ hashes[None, start:, 0])  # (b, n - start) uint8
        for f in range(1, hashes.shape[1]):
            np.maximum(distance, np.bitwise_count(block[:, f : f + 1] ^ hashes[None, start:, f]), out=distance)
        ii, jj = np.divmod(np.flatnonzero(distance <= NEAR_BITS), distance.shape[1])  # one pass over the block (a row-wise pass and then the rows' is 3x dearer)
        later = jj > ii  # not a sample and itself, nor a pair twice within the block
        return ii[later] + start, jj[later] + start

    starts = range(0, len(hashes), chunk)
    if len(starts) < 4 or (os.cpu_count() or 1) < 2:
        yield from map(block_pairs, starts)
        return
    with ThreadPoolExecutor(2) as pool:
        yield from pool.map(block_pairs, starts)


def _flat_candidates(stds: np.ndarray, means: np.ndarray, within: float):
    """(i, j) arrays, i < j, of flat pictures (grey levels spread less than ``FLAT``) whose means are
    ``within`` of each other: a flat picture's hash is noise (its frequencies are all near their median:
    two copies 0.14 grey levels apart had hashes 14 bits apart), so flat samples are compared by their means."""
    flat = np.flatnonzero(stds < FLAT)
    order = flat[np.argsort(means[flat], kind="stable")]
    m = means[order]
    ends = np.searchsorted(m, m + within, side="right")  # each one against those after it in mean order, up to ``within``
    counts = ends - np.arange(1, len(order) + 1)
    a = np.repeat(np.arange(len(order)), np.maximum(counts, 0))
    b = a + 1 + (np.arange(len(a)) - np.repeat(np.cumsum(np.maximum(counts, 0)) - np.maximum(counts, 0), np.maximum(counts, 0)))
    i, j = order[a], order[b]
    yield np.minimum(i, j), np.maximum(i, j)


def _stats(smalls: np.ndarray, rows: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each picture's mean, the norm of its centred pixels (from exact integer sums) and its coarse
    picture (the means of its 4x4 blocks: OpenCV's area resize of a few thousand stacked, a third of the
    time of NumPy's mean over a reshaped array, to the same values), of uint8 pictures ``(N, P)`` made of
    32x32 ones: ``(N,)``, ``(N,)`` float32 and ``(N, P / 16)`` float32. A few thousand rows at a time: an
    ``(N, P)`` temporary costs more in fresh memory than the arithmetic on it."""
    n, p = smalls.shape
    means, norms, coarse = np.empty(n, np.float32), np.empty(n, np.float32), np.empty((n, p // 16), np.float32)
    for s in range(0, n, rows):
        block = smalls[s : s + rows]
        sums = block.sum(1, dtype=np.int64)
        squares = np.square(block, dtype=np.uint32).sum(1, dtype=np.int64)
        means[s : s + rows] = sums / p
        norms[s : s + rows] = np.sqrt(np.maximum(squares - sums.astype(np.float64) ** 2 / p, 0.0))
        coarse[s : s + rows] = cv2.resize(block.astype(np.float32).reshape(-1, 32), (8, len(block) * p // 128), interpolation=cv2.INTER_AREA).reshape(-1, p // 16)
    return means, norms, coarse


def near_pairs(hashes: np.ndarray, smalls: np.ndarray, chunk: int = 64, verify: Callable[[np.ndarray, np.ndarray], Sequence[bool]] | None = None,
               verifiable: np.ndarray | None = None) -> list[tuple[int, int, float]]:
    """Pairs (i < j) whose perceptual hashes (``(N, F)`` uint64, F per sample) are each at most
    ``NEAR_BITS`` apart (flat pictures: whose means are close) and whose pictures (``(N, P)`` uint8)
    differ by at most ``SAME_PICTURE`` on average and correlate at least ``SAME_SHAPE`` (or ``CLOSE_*``);
    a pair short of that but within ``MAYBE_PICTURE`` and ``MAYBE_SHAPE`` is a pair when ``verify(ii, jj)``
    (the pairs' index arrays; one bool a pair) says so (a resized copy of a texture loses detail at 32x32
    that it keeps at its own size), for samples ``verifiable`` marks (bool ``(N,)``; default: all).
    Returns (i, j, mean difference)."""
    pairs: dict[tuple[int, int], float] = {}
    unsure: list[tuple[int, int, float]] = []  # pairs for verify
    n = len(hashes)
    # coarse pictures (4x4 blocks averaged; one per 32x32 picture): their mean difference is at most the full
    # pictures' (the mean of a difference never exceeds the mean of its size), so a pair too far apart in them is
    # too far apart in full, and most candidates of alike samples (digits, say) are settled at 1/16 of the cost;
    # the means are the coarsest: the same bound, one number a sample
    means, norms, coarse = _stats(smalls)
    if verify is None:
        verifiable = np.zeros(n, dtype=bool)
    elif verifiable is None:
        verifiable = np.ones(n, dtype=bool)
    candidates = itertools.chain(_hash_candidates(hashes, chunk), _flat_candidates(norms / np.sqrt(smalls.shape[1]), means, SAME_PICTURE / 2))
    for ii, jj in candidates:
        keep = ii < jj
        ii, jj = ii[keep], jj[keep]
        limit = np.where(verifiable[ii] & verifiable[jj], MAYBE_PICTURE, CLOSE_PICTURE)
        close = np.abs(means[ii] - means[jj]) <= limit
        ii, jj, limit = ii[close], jj[close], limit[close]
        close = np.concatenate([np.abs(coarse[ii[s : s + 8192]] - coarse[jj[s : s + 8192]]).mean(1) <= limit[s : s + 8192] for s in range(0, len(ii), 8192)]) if len(ii) else ii > 0
        ii, jj = ii[close], jj[close]
        for s in range(0, len(ii), 2048):  # candidates checked together, a few MB at a time
            i, j = ii[s : s + 2048], jj[s : s + 2048]
            x, y = smalls[i].astype(np.float32), smalls[j].astype(np.float32)
            diff = np.abs(x - y).mean(1)
            corr = ((x - means[i, None]) * (y - means[j, None])).sum(1) / np.maximum(norms[i] * norms[j], 1e-6)
            ok = (diff <= SAME_PICTURE) & (corr >= SAME_SHAPE) | (diff <= CLOSE_PICTURE) & (corr >= CLOSE_SHAPE) | (diff <= SAME_PICTURE / 2)  # nearly no difference: the same even where shape says little (a flat, dim photo)
            pairs.update(((int(a), int(b)), round(float(d), 2)) for a, b, d in zip(i[ok], j[ok], diff[ok]))  # a flat pair may come twice
            if verify is not None:
                maybe = ~ok & verifiable[i] & verifiable[j] & (diff <= MAYBE_PICTURE) & (corr >= MAYBE_SHAPE)
                unsure.extend(zip(i[maybe].tolist(), j[maybe].tolist(), diff[maybe].tolist()))
    if unsure:  # all at once: verify may share them out
        a, b, d = zip(*unsure)
        pairs.update(((i, j), round(diff, 2)) for i, j, diff, same in zip(a, b, d, verify(np.array(a), np.array(b))) if same)
    return [(a, b, d) for (a, b), d in pairs.items()]


def _grey_for_verify(path: Path, fast: bool) -> Image.Image:
    """A file's grey picture drafted to ``VERIFY_SIDE`` and shrunk to at most twice that a side. ``fast``:
    a plain JPEG decoded by data/jpeg.py at the scale Pillow's draft picks (the same pixels, in about
    two-thirds of the time; libjpeg's warnings go to stderr, so only a worker whose stderr is closed asks for it)."""
    with open(path, "rb") as f:
        data = f.read()
    head = jpeg.header(data) if fast else None
    grey = jpeg.grey_at_scale(data, jpeg.draft_scale(head[0], head[1], VERIFY_SIDE)) if head else None
    if grey is not None:
        img = Image.fromarray(grey)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            img.draft("L", (VERIFY_SIDE, VERIFY_SIDE))
            img = img.convert("L")
    img.thumbnail((2 * VERIFY_SIDE, 2 * VERIFY_SIDE))
    return img


def same_at_own_size(a: Path, b: Path, cache: dict, fast: bool = False) -> bool:
    """Whether two image files show the same picture compared at the smaller one's size (at most
    ``VERIFY_SIDE`` a side; Pillow's bilinear resize: OpenCV's area resize, 5x faster, lost 1-6 of 50
    resized copies in benchmarks/check.py): a mean difference of at most ``SAME_PICTURE`` and a
    correlation of at least ``SAME_SHAPE``. ``cache`` keeps each decoded file for the next pair; ``fast``:
    ``_grey_for_verify``'s."""

    def grey(path: Path) -> Image.Image:
        if path not in cache:
            cache[path] = _grey_for_verify(path, fast)
        return cache[path]

    try:
        x, y = grey(a), grey(b)
    except Exception:  # unreadable now: not called a copy
        return False
    w, h = min(x.width, y.width), min(x.height, y.height)
    scale = min(1.0, VERIFY_SIDE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    p = np.asarray(x.resize(size, Image.Resampling.BILINEAR), dtype=np.float32).ravel()
    q = np.asarray(y.resize(size, Image.Resampling.BILINEAR), dtype=np.float32).ravel()
    pc, qc = p - p.mean(), q - q.mean()
    corr = float(pc @ qc) / max(float(np.linalg.norm(pc) * np.linalg.norm(qc)), 1e-6)
    return float(np.abs(p - q).mean()) <= SAME_PICTURE * 1.5 and corr >= SAME_SHAPE


def same_pairs(pairs: Sequence[tuple[Path, Path]], fast: bool = False) -> list[bool]:
    """``same_at_own_size`` of each pair, each file decoded once (a task of check's workers)."""
    cache: dict = {}
    return [same_at_own_size(a, b, cache, fast) for a, b in pairs]


def groups_of(pairs: Sequence[tuple[int, int]], n: int) -> list[list[int]]:
    """Connected groups of the pairs (union-find), each sorted, largest first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    found: dict[int, list[int]] = {}
    for i in {k for pair in pairs for k in pair}:
        found.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in found.values()), key=lambda g: (-len(g), g[0]))
