"""``lstmimg check``: what is wrong in a data folder, found without a model.

Without a model, every file of every split (as ``train`` would split it) is read once (scan.py): its
bytes hashed (exact duplicates), decoded small into a 32x32 grey picture and its perceptual hash (the
DCT of the picture, 64 bits: resized and re-encoded copies keep it), and the pictures confirm a near pair
(copies.py: a mean difference of at most ``SAME_PICTURE`` grey levels and a correlation of at least
``SAME_SHAPE``, or a little more difference at nearly the same shape), so two merely similar samples
(two handwritten 1s) are not called copies. Flat pictures, whose hashes are noise, are paired by their
means instead. Pairs across splits are leaks. Class counts, sizes, channels, and for videos length, rate
and resolution, are summarised with the files that differ from the rest. Nothing in the data folder is
changed. The likely label errors (``check --labels``) are engine/health/labels.py's.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, detect_kind, split_folder
from lstmimg.engine.health.copies import groups_of, near_pairs
from lstmimg.engine.health.scan import confirm_alike, readers, scan_on
from lstmimg.files import atomic_write_text, check_output_folder

TOO_FEW = 10  # a class with fewer training samples than this is too small to learn
TOO_FEW_VAL = 5  # ... or to validate
SHARED_SIZES = 0.8  # sizes each shared by at least 5% of the files that together cover this share: sizes are uniform, and a file of another is odd


def check(data: str | Path, val_split: float = 0.1, seed: int = 0, workers: int | None = None, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """What is wrong in the folder ``data`` (any folder ``train`` accepts, split as it would split it),
    found without a model: ``unreadable`` files, ``duplicates`` (groups of exact and near copies, each
    member with its split), ``leaks`` (groups that span splits), ``classes`` (counts per split, the
    imbalance ratio, classes too small to learn or validate), ``outliers`` (files whose size, channels,
    or for videos length and rate, differ from the rest) and ``files`` (every file with its split and label)."""
    kind = detect_kind(data)
    splits = split_folder(data, val_split, seed, VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS)
    classes = splits["train"].classes
    paths = [p for split in splits.values() for p in split.paths]
    files = [(str(p), name, classes[label]) for name, split in splits.items() for p, label in zip(split.paths, split.labels)]
    started = time.perf_counter()
    with readers(paths, workers) as (pool, forked):
        facts, pictures, hashes = scan_on(paths, kind, pool, forked, (lambda done, total: progress("scan", done, total)) if progress else None)
        seconds = time.perf_counter() - started
        good = [i for i, f in enumerate(facts) if isinstance(f, dict)]
        near = []
        if good:
            if len(good) < len(facts):  # the unreadable files' rows left out
                pictures, hashes = pictures[good], hashes[good]
            # compared again at their own size only where both files have more to show than their 32x32 pictures (twice the side)
            verifiable = np.array([kind == "image" and min(facts[i]["size"]) > 64 for i in good])
            verify = partial(confirm_alike, pool, forked, [paths[i] for i in good], np.array([facts[i]["size"] for i in good], dtype=np.float64).reshape(-1, 2)) if kind == "image" else None
            near = [(good[i], good[j]) for i, j, _ in near_pairs(hashes, pictures, verify=verify, verifiable=verifiable)]  # the workers are forked by now
    unreadable = [{"path": files[i][0], "split": files[i][1], "error": facts[i]} for i, f in enumerate(facts) if isinstance(f, str)]
    by_sha: dict[str, list[int]] = {}
    for i in good:
        by_sha.setdefault(facts[i]["sha"], []).append(i)
    exact = [(g[0], k) for g in by_sha.values() if len(g) > 1 for k in g[1:]]
    exact_set = {frozenset(p) for p in exact}
    groups = groups_of(exact + near, len(files))
    duplicates, leaks = [], []
    for n, group in enumerate(groups, 1):
        members = [{"path": files[i][0], "split": files[i][1], "label": files[i][2],
                    "same_bytes": any(frozenset((i, k)) in exact_set for k in group if k != i)} for i in group]
        entry = {"group": n, "members": members}
        duplicates.append(entry)
        if len({m["split"] for m in members}) > 1:
            leaks.append(entry)
    return {
        "data": str(data), "kind": kind, "classes": class_counts(splits), "files": len(files), "scan_seconds": round(seconds, 2),
        "files_per_second": round(len(files) / seconds, 1) if seconds else None, "unreadable": unreadable,
        "duplicates": duplicates, "duplicate_files": sum(len(d["members"]) - 1 for d in duplicates), "leaks": leaks,
        "outliers": outliers(kind, [(files[i][0], facts[i]) for i in good]), "split": {name: len(s.paths) for name, s in splits.items()},
    }


def class_counts(splits: dict) -> dict:
    """Samples per class and split, the imbalance ratio of train, and the classes too small to learn or validate."""
    classes = splits["train"].classes
    counts = {name: Counter(split.labels) for name, split in splits.items()}
    per_class = [{"class": c, **{name: counts[name].get(k, 0) for name in splits}} for k, c in enumerate(classes)]
    train = [row["train"] for row in per_class]
    small = [row["class"] for row in per_class if row["train"] < TOO_FEW]
    small_val = [row["class"] for row in per_class if "val" in row and row["val"] < TOO_FEW_VAL]
    return {"per_class": per_class, "imbalance": round(max(train) / max(1, min(train)), 2) if train else None,
            "too_small_to_learn": small, "too_small_to_validate": small_val, "min_train": TOO_FEW, "min_val": TOO_FEW_VAL}


def _size_problems(sizes: Sequence[tuple[int, int]]) -> list[str | None]:
    """Why each (H, W) is unlike the rest, or None. Where most files share a few sizes (each of at least
    5% of them, together ``SHARED_SIZES``): any other size. Where sizes vary (photos gathered by hand): an
    aspect more than twice as wide or tall as the median aspect, or a side under a quarter of the median's."""
    counts = Counter(sizes)
    usual = {s for s, n in counts.items() if n >= 0.05 * len(sizes)}
    if sum(counts[s] for s in usual) >= SHARED_SIZES * len(sizes):
        common = ", ".join(f"{h}x{w}" for (h, w), _ in counts.most_common(2))
        return [None if s in usual else f"{s[0]}x{s[1]}, unlike most ({common})" for s in sizes]
    hw = np.array(sizes, dtype=np.float64).reshape(-1, 2)
    aspect = np.log(hw[:, 1] / np.maximum(hw[:, 0], 1))
    mid_aspect, mid_h, mid_w = np.median(aspect), np.median(hw[:, 0]), np.median(hw[:, 1])
    out: list[str | None] = []
    for (h, w), a in zip(sizes, aspect):
        if abs(a - mid_aspect) > np.log(2):
            out.append(f"{h}x{w}, {'wider' if a > mid_aspect else 'taller'} than most by over 2x (median {mid_h:.0f}x{mid_w:.0f})")
        elif h < mid_h / 4 or w < mid_w / 4:
            out.append(f"{h}x{w}, under a quarter of most files' side (median {mid_h:.0f}x{mid_w:.0f})")
        else:
            out.append(None)
    return out


def outliers(kind: str, facts: Sequence[tuple[str, dict]]) -> list[dict]:
    """Files that differ from the rest: another size (``_size_problems``), other channels; videos: no or
    one frame, another rate or resolution than most."""
    if not facts:
        return []
    out = []
    by_size = _size_problems([f["size"] for _, f in facts])
    if kind == "image":
        modes = ["grey" if f["mode"] in ("1", "L", "LA", "I", "I;16", "F") else "colour" for _, f in facts]
        common = Counter(modes).most_common(1)[0][0]
        for (path, f), mode, size in zip(facts, modes, by_size):
            if mode != common:
                out.append({"path": path, "problem": f"{mode} among {common} images ({f['mode']})"})
            elif size:
                out.append({"path": path, "problem": size})
        return out
    rates = Counter(f["fps"] for _, f in facts)
    rate = rates.most_common(1)[0][0]
    for (path, f), size in zip(facts, by_size):
        if f["frames"] <= 1:
            out.append({"path": path, "problem": f"{f['frames']} frame{'s' if f['frames'] != 1 else ''}"})
        elif f["fps"] != rate:
            out.append({"path": path, "problem": f"{f['fps']} fps, unlike most ({rate} fps)"})
        elif size:
            out.append({"path": path, "problem": size})
    return out


def kept(members: Sequence[dict]) -> dict:
    """The member of a duplicate group that stays when the group is excluded (``keep`` 1 in the CSV):
    the first in train, so a leak loses its val or test copies."""
    return next((m for m in members if m["split"] == "train"), members[0])


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def write_findings(findings: dict, out: str | Path) -> list[Path]:
    """``duplicates.csv``, ``leaks.csv``, ``unreadable.csv``, ``outliers.csv`` and (with labels)
    ``label_issues.csv`` in folder ``out``; returns the files written."""
    out = check_output_folder(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    dup_rows = [[d["group"], m["path"], m["split"], m["label"], "exact" if m["same_bytes"] else "near", int(m is kept(d["members"]))]
                for d in findings["duplicates"] for m in d["members"]]
    for name, groups in (("duplicates.csv", findings["duplicates"]), ("leaks.csv", findings["leaks"])):
        wanted = {d["group"] for d in groups}
        write_csv(out / name, ["group", "path", "split", "label", "copy", "keep"], [r for r in dup_rows if r[0] in wanted])
        written.append(out / name)
    write_csv(out / "unreadable.csv", ["path", "split", "error"], [[u["path"], u["split"], u["error"]] for u in findings["unreadable"]])
    write_csv(out / "outliers.csv", ["path", "problem"], [[o["path"], o["problem"]] for o in findings["outliers"]])
    written += [out / "unreadable.csv", out / "outliers.csv"]
    if "label_issues" in findings:
        write_csv(out / "label_issues.csv", ["rank", "path", "given", "suggested", "score"],
                  [[r + 1, i["path"], i["given"], i["suggested"], i["score"]] for r, i in enumerate(findings["label_issues"]["issues"])])
        written.append(out / "label_issues.csv")
    return written
