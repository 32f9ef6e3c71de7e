"""Where the bundled sample data lives: inside the installed package, or beside it in a checkout."""

from __future__ import annotations

from pathlib import Path

from lstmimg.errors import LstmimgError


def sample_data_dir() -> Path:
    """The folder holding the bundled ``digits/`` (the package's ``lstmimg/sample_data``, which the
    build copies from the repo's top-level ``sample_data/``)."""
    here = Path(__file__).resolve().parent
    for folder in (here / "sample_data", here.parent / "sample_data"):
        if (folder / "digits").is_dir():
            return folder
    try:  # editable installs map the package to the source tree
        from importlib.resources import files

        folder = Path(str(files("lstmimg.sample_data")))
        if (folder / "digits").is_dir():
            return folder
    except (ImportError, TypeError, ValueError):
        pass
    raise LstmimgError("the bundled sample data is missing from this installation; pass a DATA folder")
