"""Run folders: where a new run goes, which is the newest, and which model a command uses.

Runs live in ``runs/train/exp``, ``exp2``, ... (or a folder given with ``--out``). ``predict``,
``video`` and ``eval`` use the model given with ``--model``, else the newest run of the right kind,
else the model that ships with the package.
"""

from __future__ import annotations

import json
from pathlib import Path

from lstmimg.errors import LstmimgError

RUNS_DIR = Path("runs") / "train"
ASSETS = Path(__file__).parent / "assets"
BUNDLED_MODELS = {"image": ASSETS / "digits.pt", "video": ASSETS / "clips.pt"}  # made by scripts/train_bundled_model.py


def new_run_dir(out: str | Path | None = None, base: Path = RUNS_DIR, name: str = "exp", exist_ok: bool = False) -> Path:
    """``out`` exactly when given (it must not hold a run already, unless ``exist_ok``), else the next
    free ``base/exp``, ``exp2``, ``exp3``, ... Never reuses a folder that holds a run unless asked."""
    if out is not None:
        run = Path(out)
        if run.exists() and not run.is_dir():
            raise LstmimgError(f"{run}: exists and is not a folder; choose another --out")
        if run.exists() and any(run.iterdir()) and not exist_ok:
            raise LstmimgError(f"{run}: folder exists and is not empty; choose another --out, or --exist-ok to write into it")
        _mkdir(run, parents=True, exist_ok=True)
        return run
    _mkdir(base, parents=True, exist_ok=True)
    n = 1
    while True:
        run = base / (name if n == 1 else f"{name}{n}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            n += 1
        except OSError as err:
            raise LstmimgError(f"{run}: cannot create the run folder ({err.strerror})") from None


RUN_FILES = ("config.json", "metrics.csv", "summary.json", "last.pt", "best.pt", "best.onnx", "curves.png", "confusion_matrix.png", "mistakes.png", "report.json")


def set_aside_earlier_run(run: Path) -> Path | None:
    """Move what an earlier run left in ``run`` (its checkpoints, metrics, summary, plots, report folder,
    TensorBoard files) into ``run/.previous-N/``, so a new run in the same folder starts clean and resumes as its own;
    the user's other files stay. Returns the folder they went to, None when there was nothing."""
    found = [p for p in run.iterdir() if p.is_file() and (p.name in RUN_FILES or p.name.startswith("events.out.tfevents.")) or p.is_dir() and p.name == "report"]
    if not found:
        return None
    n = 1
    while (run / f".previous-{n}").exists():
        n += 1
    aside = run / f".previous-{n}"
    try:
        aside.mkdir()
        for p in found:
            p.rename(aside / p.name)
    except OSError as err:
        raise LstmimgError(f"{run}: cannot move the earlier run's files aside ({err.strerror})") from None
    return aside


def _mkdir(folder: Path, **kwargs) -> None:
    try:
        folder.mkdir(**kwargs)
    except OSError as err:
        raise LstmimgError(f"{folder}: cannot create the run folder ({err.strerror})") from None


def latest_run(kind: str, base: Path = RUNS_DIR) -> Path | None:
    """The newest run folder under ``base`` holding a ``best.pt`` of this kind, by modification time."""
    if not base.is_dir():
        return None
    runs = sorted((p for p in base.iterdir() if (p / "best.pt").is_file()), key=lambda p: (p / "best.pt").stat().st_mtime, reverse=True)
    for run in runs:
        try:
            if json.loads((run / "summary.json").read_text(encoding="utf-8")).get("kind", "image") == kind:
                return run
        except (OSError, ValueError):
            continue
    return None


def run_named(path: Path, base: Path = RUNS_DIR) -> Path:
    """``path``, or the run of that name under ``base`` (the names ``lstmimg runs`` prints) when ``path``
    itself is not there."""
    return base / path if not path.exists() and len(path.parts) == 1 and (base / path).is_dir() else path


def resolve_model(source: str | Path | None, kind: str = "image") -> tuple[Path, str]:
    """Which checkpoint to use, and why: ``source`` when given (a checkpoint, a run folder, or the name of
    a run under ./runs/train as ``lstmimg runs`` prints it), else the newest run of this kind under
    ./runs/train, else the model that ships with the package."""
    from lstmimg.checkpoint import checkpoint_path  # torch: only once a model is wanted (`lstmimg runs` lists runs without it)

    if source is not None:
        return checkpoint_path(run_named(Path(source))), "given"
    run = latest_run(kind)
    if run is not None:
        return checkpoint_path(run), "newest run"
    if BUNDLED_MODELS[kind].is_file():
        return BUNDLED_MODELS[kind], f"bundled {BUNDLED_MODELS[kind].stem} model"
    raise LstmimgError(f"no {kind} model: train one with `lstmimg train` or pass --model")
