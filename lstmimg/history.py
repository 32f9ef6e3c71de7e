"""Run folders as a table: what each run under a folder is, and how two runs differ (`lstmimg runs`).

Read from the files a run writes (``config.json``, ``metrics.csv``, ``summary.json``, ``last.pt``'s
presence) with the standard library alone: listing fifty runs imports no torch. A run whose files
cannot be read is listed with the reason instead of its figures.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from lstmimg.errors import LstmimgError


@dataclass
class RunRecord:
    """One run folder as ``lstmimg runs`` lists it."""

    name: str
    path: str
    date: str  # when it started (config.json written), local time
    status: str  # finished, stopped early, resumable (interrupted, last.pt kept), interrupted (before a checkpoint), broken
    data: str = ""
    kind: str = ""
    model: str = ""
    val_accuracy: float | None = None  # the best epoch's
    best_epoch: int | None = None
    epochs: int = 0  # done
    planned_epochs: int | None = None
    train_seconds: float | None = None
    problem: str = ""  # why a broken run could not be read
    config: dict = field(default_factory=dict, repr=False)  # config.json, for comparing

    def row(self) -> dict:
        """The record without its config (what ``--json`` prints)."""
        out = asdict(self)
        del out["config"]
        return out


def _json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LstmimgError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LstmimgError(f"{path}: not readable JSON ({err.__class__.__name__})") from None
    if not isinstance(value, dict):
        raise LstmimgError(f"{path}: not a JSON object")
    return value


def read_record(run: Path) -> RunRecord:
    """The record of run folder ``run``; a run that cannot be read comes back ``broken`` with the reason."""
    stamp = run / "config.json"
    when = datetime.fromtimestamp((stamp if stamp.exists() else run).stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    record = RunRecord(name=run.name, path=str(run), date=when, status="broken")
    try:
        config = _json(stamp)
        model, train = config.get("model", {}), config.get("train", {})
        if not isinstance(model, dict) or not isinstance(train, dict):
            raise LstmimgError(f"{stamp}: not a run's config (its 'model' and 'train' are not objects)")
        record.config, record.data, record.kind = config, str(config.get("data", "")), str(config.get("kind", ""))
        record.model, record.planned_epochs = str(model.get("name", "")), _number(train.get("epochs"), int)
    except LstmimgError as err:
        record.problem = str(err)
        return record
    except (TypeError, ValueError) as err:
        record.problem = f"{stamp}: not a run's config ({err})"
        return record
    if (run / "summary.json").exists():
        try:
            s = _json(run / "summary.json")
            record.status = "stopped early" if s.get("stopped_early") else "finished"
            record.val_accuracy, record.best_epoch, record.epochs = _number(s.get("val_accuracy"), float), _number(s.get("best_epoch"), int), int(s.get("epochs", 0))
            record.planned_epochs, record.train_seconds = _number(s.get("planned_epochs", record.planned_epochs), int), _number(s.get("train_seconds"), float)
        except LstmimgError as err:
            record.status, record.problem = "broken", str(err)
        except (TypeError, ValueError) as err:
            record.status, record.problem = "broken", f"{run / 'summary.json'}: not readable ({err.__class__.__name__})"
        return record
    record.status = "resumable" if (run / "last.pt").exists() else "interrupted"
    try:
        with open(run / "metrics.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        if rows:
            accs = [float(r["val_acc"]) for r in rows]
            best = max(range(len(accs)), key=lambda i: (accs[i], -i))
            record.epochs, record.val_accuracy, record.best_epoch = len(rows), accs[best], best + 1
            record.train_seconds = round(sum(float(r["seconds"]) for r in rows), 2)
    except FileNotFoundError:
        pass  # interrupted before its first epoch ended
    except (OSError, UnicodeDecodeError, KeyError, ValueError, TypeError, csv.Error) as err:  # a short row reads as None: TypeError
        record.status, record.problem = "broken", f"{run / 'metrics.csv'}: not readable ({err.__class__.__name__})"
    return record


def _number(value, kind: type):
    """``value`` as ``kind`` (int or float), None when absent; anything else is a damaged file (TypeError)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return kind(value)


def is_run(folder: Path) -> bool:
    """Whether ``folder`` looks like a run folder (any of the files a run writes)."""
    return any((folder / name).exists() for name in ("config.json", "metrics.csv", "summary.json", "last.pt", "best.pt"))


def list_runs(base: str | Path) -> list[RunRecord]:
    """Every run folder directly under ``base``, oldest first."""
    base = Path(base)
    if not base.is_dir():
        raise LstmimgError(f"{base}: no such folder of runs")
    records = []
    for p in base.iterdir():
        if p.is_dir() and is_run(p):
            try:
                records.append(read_record(p))
            except OSError as err:  # a folder that vanished or cannot be read while listing
                records.append(RunRecord(name=p.name, path=str(p), date="", status="broken", problem=f"{p}: cannot read ({err.strerror})"))
    return sorted(records, key=lambda r: (r.date, r.name))


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def compare_runs(a: str | Path, b: str | Path) -> dict:
    """Two runs side by side: the settings that differ (``config.json``, flattened, versions left out)
    and their figures. A run that cannot be read is an error naming it."""
    records = []
    for run in (Path(a), Path(b)):
        if not run.is_dir() or not is_run(run):
            raise LstmimgError(f"{run}: not a run folder (no config.json, metrics.csv or summary.json)")
        record = read_record(run)
        if record.status == "broken":
            raise LstmimgError(record.problem)
        records.append(record)
    left, right = (_flat({k: v for k, v in r.config.items() if k != "versions"}) for r in records)
    differ = {key: [left.get(key), right.get(key)] for key in sorted(set(left) | set(right)) if left.get(key) != right.get(key)}
    figures = ("status", "val_accuracy", "best_epoch", "epochs", "planned_epochs", "train_seconds")
    return {"runs": [r.path for r in records], "settings": differ, "figures": {k: [getattr(r, k) for r in records] for k in figures}}
