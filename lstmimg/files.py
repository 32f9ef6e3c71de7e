"""Low-level file I/O, below every other module: atomic writes and safe loading of tensor files.

Every file lstmimg writes goes to a temporary name in the same folder, is flushed to disk and renamed
into place, so an interrupted or failed write (Ctrl-C, a full disk) never leaves a half-written file
and never damages the one it was to replace. Tensor files are read with ``torch.load(weights_only=True)``,
so opening one never runs code.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lstmimg.errors import LstmimgError

_HASHES: dict[tuple, str] = {}  # (path, bytes, mtime) -> content hash: each file is hashed once per process


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes (32 hex digits), the key of cache entries: a changed file is a new
    key. Remembered by path, length and modification time, so a run reads each file through it once."""
    import hashlib

    stat = Path(path).stat()
    seen = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if seen not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[seen] = digest.hexdigest()[:32]
    return _HASHES[seen]


class WriteError(LstmimgError):
    """A file could not be written (full disk, no permission, ...); ``path`` names it. What was there
    before is unchanged."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: cannot write: {reason}")
        self.path = path


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file beside it, with the permissions a new
    file gets (umask), renamed over ``path`` when the block ends without an error, removed otherwise.
    An ``OSError`` becomes ``WriteError`` naming ``path``."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        reason = (err.strerror or str(err)).rstrip(".")
        raise WriteError(path, reason[:1].lower() + reason[1:]) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def check_output_file(path: str | Path, option: str) -> Path:
    """``path`` as a Path, if a file can be written there: not an existing folder, in a folder that
    exists and can be written. Called before any work, so a bad output path costs nothing and leaves
    nothing behind; else LstmimgError naming the path, the option and the problem."""
    path = Path(path)
    if path.is_dir():
        raise LstmimgError(f"{path}: is a folder; {option} takes a file name")
    folder = path.parent
    if not folder.is_dir():
        raise LstmimgError(f"{path}: no folder {folder} to write {option} into")
    why = _cannot_create_in(folder)
    if why:
        raise LstmimgError(f"{path}: cannot write into {folder} ({option}): {why}")
    return path


def check_distinct_outputs(outputs: list[tuple[str, Path | None]], inputs: list[str | Path] = ()) -> None:
    """Refuse two outputs that name one file (``(option, path)`` pairs; None: none or stdout), and an output
    that is one of the input files: it would be written over, ``--overwrite`` or not."""
    seen: dict[str, str] = {}
    given = {os.path.realpath(p) for p in inputs if "://" not in str(p) and os.path.isfile(p)}
    for option, path in outputs:
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise LstmimgError(f"{path}: named by both {seen[key]} and {option}; give each its own file")
        if key in given:
            raise LstmimgError(f"{path}: is also an input; {option} would write over it: give another file")
        seen[key] = option


class StreamedFile:
    """A text file written as results come, each ``write`` handed to the OS at once (so a full disk is
    met at the line that does not fit), through a temporary name beside ``path`` that
    ``close(keep=True)`` renames into place; ``close(keep=False)`` removes it, so an earlier ``path``
    stays whole. ``direct`` writes ``path`` itself instead (a live run's feed, which a reader follows as
    it grows, and which is kept whatever ends the run). File names that are not UTF-8 are written as
    their own bytes (``surrogateescape``)."""

    def __init__(self, path: str | Path, option: str, direct: bool = False):
        self.path, self.option = Path(path), option
        self.tmp = self.path if direct else self.path.with_name(f".{self.path.name}.partial")
        try:
            self.file = open(self.tmp, "wb", buffering=0)
        except OSError as err:
            raise LstmimgError(f"{self.path}: cannot write {option} ({err.strerror})") from None

    def write(self, text: str) -> None:
        try:
            self.file.write(text.encode("utf-8", "surrogateescape"))
        except OSError as err:
            raise LstmimgError(f"{self.path}: cannot write {self.option} ({err.strerror})") from None

    def close(self, keep: bool = True) -> None:
        if self.file.closed:
            return
        self.file.close()
        if self.tmp == self.path:
            return
        if keep:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def check_output_folder(path: str | Path, option: str) -> Path:
    """``path`` as a Path, if files can be written into it: an existing folder, or a new one whose
    nearest existing parent is a folder that can be written. Else LstmimgError, as ``check_output_file``."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise LstmimgError(f"{path}: is a file; {option} takes a folder")
        why = _cannot_create_in(path)
        if why:
            raise LstmimgError(f"{path}: cannot write into this folder ({option}): {why}")
        return path
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    why = _cannot_create_in(parent) if parent.is_dir() else "not a folder"
    if why:
        raise LstmimgError(f"{path}: cannot create this folder ({option}): {parent} is not a folder that can be written ({why})")
    return path


def _cannot_create_in(folder: Path) -> str | None:
    """Why nothing can be created in ``folder``, or None. Tried, not judged from the permission bits: root
    passes every ``os.access`` check, yet cannot write into /proc, a read-only mount or a root-squashed share."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lstmimg-probe-", dir=folder))
    except OSError as err:
        return err.strerror or type(err).__name__
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data) -> None:
    """JSON as UTF-8, non-ASCII text written as it is (class names in any script)."""
    atomic_write_text(path, json_text(data))


def json_text(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def load_tensors(path: str | Path, what: str = "checkpoint"):
    """What ``torch.save`` wrote to ``path``, loaded without running code; a file that would run code
    (a pickle that imports something) is refused, a damaged one named."""
    import torch

    path = Path(path)
    try:
        with warnings.catch_warnings():  # a damaged file's odd "pickle protocol" is warned of on two lines before it fails
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if unsafe:  # the file asks to import something: the way a pickle runs code
            raise LstmimgError(f"{path}: refused to load: it would run code ({unsafe[0][:160]})") from None
        raise LstmimgError(f"{path}: not a readable {what} (corrupt, truncated or another format)") from None
    except Exception:  # torch.load raises many types on damaged files; all mean the same
        raise LstmimgError(f"{path}: not a readable {what} (corrupt, truncated or another format)") from None


def load_state_dict_file(path: str | Path) -> dict:
    """A plain state dict (e.g. torchvision backbone weights) from a local file, loaded safely."""
    path = Path(path)
    if not path.is_file():
        raise LstmimgError(f"{path}: no such weights file")
    state = load_tensors(path, "state dict file")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LstmimgError(f"{path}: not a state dict")
    return state
