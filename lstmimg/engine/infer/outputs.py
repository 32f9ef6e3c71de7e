"""Result files written as results come: JSON Lines or CSV, resumable, in parts when sharded.

A ``ResultFile`` appends each batch's results and flushes them, so whatever reached the file survives
Ctrl-C or ``kill -9``. An existing file is refused unless resumed (its complete lines are kept and its
inputs skipped; a torn last line, cut by a kill, is dropped and redone) or overwritten. Sharded runs
(``--devices N``, torchrun) write one hidden part per process beside the file (``part_path``);
``merge_parts`` joins them into it at the end, each input once, and a run that died leaves its parts
for ``--resume`` to complete.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from lstmimg.errors import LstmimgError
from lstmimg.files import check_output_file

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ["path", "label", "prob", "top_labels", "top_probs"]
CSV_VIDEO_COLUMNS = ["frames", "seconds"]
CSV_ERROR_COLUMN = "error"  # last: why an input has no result (its other columns empty)


def part_path(path: Path, rank: int, world: int) -> Path:
    """Where process ``rank`` of ``world`` writes its part of ``path``."""
    return path.with_name(f".{path.name}.part{rank:03d}-of-{world:03d}")


def parts_of(path: Path) -> list[Path]:
    """The parts of ``path`` left beside it (by any number of processes), sorted. Matched by name, not
    by a glob pattern: ``[``, ``*`` and ``?`` in a file name are letters here."""
    part = re.compile(re.escape(f".{path.name}.part") + r"\d+-of-\d+")
    try:
        return sorted(p for p in path.parent.iterdir() if part.fullmatch(p.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_output(path: Path, option: str, resume: bool, overwrite: bool) -> Path:
    """``path`` if it can be written as ``option``: a new file, or with ``resume`` or ``overwrite`` an
    existing one (or one a sharded run left in parts). Called before any work."""
    if resume and overwrite:
        raise LstmimgError("--resume and --overwrite: choose one")
    check_output_file(path, option)
    if (path.exists() or parts_of(path)) and not (resume or overwrite):
        what = "already exists" if path.exists() else f"has parts of an unfinished sharded run beside it ({parts_of(path)[0].name})"
        raise LstmimgError(f"{path}: {what} (--resume skips the inputs it holds, --overwrite replaces it)")
    if resume and path.is_file():
        check_resumable(path, option.lstrip("-"))
    return path


def check_resumable(path: Path, fmt: str) -> None:
    """Refuse to resume into a file that is not ``fmt`` results as lstmimg writes them (a picture given
    as ``--jsonl`` by mistake): resuming cuts what follows its last newline and appends to it. Its first
    line must begin as ours do (``{"path": `` or the CSV header), or be a first line a kill cut short."""
    start = ('{"path": ' if fmt == "jsonl" else ",".join(CSV_COLUMNS)).encode()
    try:
        with open(path, "rb") as f:
            first = f.read(4096).split(b"\n", 1)[0]
    except OSError as err:
        raise LstmimgError(f"{path}: cannot read it to resume ({err.strerror})") from None
    if not (first.startswith(start) or start.startswith(first)):
        raise LstmimgError(f"{path}: not a {fmt.upper()} file of results lstmimg wrote; --resume only adds to one (--overwrite replaces it)")


def remove_parts(path: Path) -> None:
    """The parts an earlier sharded run left beside ``path`` gone (``--overwrite``: ``path`` itself stays
    until the new results replace it whole)."""
    for old in parts_of(path):
        old.unlink(missing_ok=True)


def complete_lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` that end in a newline (a line cut by a kill is not one); none if absent."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:  # file names that are not UTF-8: their own bytes
        for line in f:
            if line.endswith("\n"):
                yield line


def key_of(line: str, fmt: str) -> str | None:
    """The input path a result line is for, None for a CSV header or a line that is no result."""
    try:
        if fmt == "jsonl":
            value = json.loads(line)
            return value.get("path") if isinstance(value, dict) else None
        row = next(csv.reader([line]), [])
        return row[0] if row and row[: len(CSV_COLUMNS)] != CSV_COLUMNS else None  # the header is no result
    except (ValueError, csv.Error):
        return None


def done_paths(path: Path, fmt: str) -> set[str]:
    """The inputs ``path`` and its parts already hold results for."""
    done = set()
    for source in [path, *parts_of(path)]:
        for line in complete_lines(source):
            key = key_of(line, fmt)
            if key is not None:
                done.add(key)
    return done


def csv_columns(kind: str) -> list[str]:
    return CSV_COLUMNS + (CSV_VIDEO_COLUMNS if kind == "video" else []) + [CSV_ERROR_COLUMN]


def format_line(result: dict, fmt: str, kind: str) -> str:
    """One result as a line of ``fmt``; an input that could not be read (``{"path", "error"}``) is a row
    of its own, so the file names every input."""
    if fmt == "jsonl":
        return json.dumps(result, ensure_ascii=False) + "\n"
    if "error" in result:
        row = [result["path"], "", "", "", ""] + (["", ""] if kind == "video" else []) + [result["error"]]
    else:
        row = [result["path"], result["label"], result["prob"], ";".join(t["label"] for t in result["top"]), ";".join(str(t["prob"]) for t in result["top"])]
        row += [result.get("frames"), result.get("seconds")] if kind == "video" else []
        row += [""]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


class ResultFile:
    """Results of ``kind`` appended to ``path`` (None: standard output) as ``fmt``, flushed every
    ``write``. ``resume`` keeps the complete lines already there and cuts a torn last line; otherwise the
    file starts empty. ``done``: the inputs already written, which ``write`` passes over (default: those
    ``path`` and its parts hold, when resuming)."""

    def __init__(self, path: Path | None, fmt: str, kind: str, resume: bool = False, done: set[str] | None = None):
        if fmt not in FORMATS:
            raise LstmimgError(f"unknown result format {fmt!r}: one of {', '.join(FORMATS)}")
        self.path, self.fmt, self.kind = path, fmt, kind
        self.done: set[str] = done if done is not None else (done_paths(path, fmt) if resume and path is not None else set())
        if path is None:
            self.file = sys.stdout
            return
        header = ",".join(csv_columns(kind)) + "\n" if fmt == "csv" else ""
        try:
            if resume and path.exists():
                check_resumable(path, fmt)
                self._cut_torn_tail(header)
                self.file = open(path, "a", encoding="utf-8", errors="surrogateescape", newline="")
            else:
                self.file = open(path, "w", encoding="utf-8", errors="surrogateescape", newline="")
                self.file.write(header)
                self.file.flush()
        except OSError as err:
            raise LstmimgError(f"{path}: cannot write results ({err.strerror})") from None

    def _cut_torn_tail(self, header: str) -> None:
        """Drop what follows the last newline (a line a kill cut short); check a CSV's header."""
        with open(self.path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n") + 1
            if header and data[:keep] and not data[:keep].startswith(header.encode()):
                first = data.split(b"\n", 1)[0].decode("utf-8", "replace")
                raise LstmimgError(f"{self.path}: its columns ({first}) are not this model's ({header.strip()}); resume with the same model, or --overwrite")
            if not keep and header:  # nothing complete yet, not even the header (a torn one is cut)
                f.seek(0)
                f.truncate(0)
                f.write(header.encode())
            elif keep < len(data):
                f.truncate(keep)

    def write(self, results: Sequence[dict]) -> None:
        """Append ``results`` (those not already in the file) and flush them to the OS."""
        lines = [format_line(r, self.fmt, self.kind) for r in results if r["path"] not in self.done]
        try:
            self.file.write("".join(lines))
            self.file.flush()
        except OSError as err:
            raise LstmimgError(f"{self.path}: cannot write results ({err.strerror})") from None

    def close(self) -> None:
        if self.file is not sys.stdout:
            self.file.close()


def merge_parts(path: Path, fmt: str, kind: str, order: Sequence[str] | None = None, keep_existing: bool = True) -> int:
    """Join ``path`` (what it already holds, unless not ``keep_existing``: ``--overwrite``) and its parts
    into ``path`` (written atomically), each input once, then remove the parts. Returns the number of
    results. With ``order`` (the inputs, as text) the results follow it: streamed when the files already
    do (a sharded run's contiguous parts), else sorted in memory (a run resumed after a sharded one
    died); inputs ``order`` lacks come last."""
    from lstmimg.files import atomic_write

    parts = parts_of(path)
    sources = [path, *parts] if keep_existing else parts
    position = {key: i for i, key in enumerate(order)} if order is not None else {}

    def unique_lines() -> Iterator[tuple[str, str]]:
        seen: set[str] = set()
        for source in sources:
            for line in complete_lines(source):
                key = key_of(line, fmt)
                if key is not None and key not in seen:
                    seen.add(key)
                    yield key, line

    places = [position.get(key, len(position)) for key, _ in unique_lines()]
    ordered = unique_lines()
    if any(a > b for a, b in zip(places, places[1:])):  # out of order: sort what the files hold by input position
        ordered = iter(sorted(unique_lines(), key=lambda kv: position.get(kv[0], len(position))))
    with atomic_write(path) as f:
        if fmt == "csv":
            f.write((",".join(csv_columns(kind)) + "\n").encode())
        for _, line in ordered:
            f.write(line.encode("utf-8", "surrogateescape"))
    for part in parts:
        part.unlink(missing_ok=True)
    return len(places)


def share(items: Sequence, rank: int, world: int) -> Sequence:
    """Process ``rank``'s fixed, contiguous share of ``items`` (so the parts, in rank order, are in the
    order of ``items``)."""
    per, extra = divmod(len(items), world)
    start = rank * per + min(rank, extra)
    return items[start : start + per + (rank < extra)]



def label_counts(path: Path, fmt: str) -> dict[str, int]:
    """How many results in ``path`` have each label, most frequent first."""
    from collections import Counter

    counts: Counter = Counter()
    for line in complete_lines(path):
        if key_of(line, fmt) is None:
            continue
        label = json.loads(line).get("label") if fmt == "jsonl" else next(csv.reader([line]))[1]
        if label:  # an error row has none
            counts[label] += 1
    return dict(counts.most_common())
