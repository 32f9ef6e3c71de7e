"""When a run is done: the stopping rule.

A run is planned for a number of epochs (``plan.py``); it ends sooner when validation has stopped
improving. The rule looks only at the epochs' validation figures (``metrics.csv`` rows), so a resumed
run decides as the uninterrupted one would have, and a rule can be replayed on a finished run's
``metrics.csv`` (``benchmarks/stopping.py`` chose the default that way).

- ``--patience`` not given, ``--epochs`` not given: the default rule, ``auto_rule`` (scaled to the
  planned length: patience of a fifth of the planned epochs, never before a third of them);
- ``--patience N``: stop after N epochs without a better validation accuracy (no minimum);
- ``--patience 0``, or ``--epochs`` given without ``--patience``: the run lasts its epochs.

The learning-rate schedule stays planned over the whole run: a run that stops keeps the checkpoint of
its best epoch (``best.pt``), which is what every command uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATIENCE_FRACTION = 0.2  # of the planned epochs, at least MIN_PATIENCE
MIN_PATIENCE = 2
MIN_FRACTION = 1 / 3  # of the planned epochs trained before a run may stop
LOSS_DELTA = 0.0  # a relative fall of the val loss that counts as progress too (0: accuracy alone)


@dataclass(frozen=True)
class StopRule:
    """Stop after ``patience`` epochs in a row without progress, once ``min_epochs`` are done.
    Progress: a val accuracy above the best so far by more than ``min_delta``; with ``loss_delta`` > 0,
    also a val loss below the lowest so far by more than that fraction of it."""

    patience: int
    min_epochs: int = 0
    min_delta: float = 0.0
    loss_delta: float = 0.0

    def describe(self) -> str:
        floor = f", not before epoch {self.min_epochs}" if self.min_epochs > 1 else ""
        loss = f" or val loss down {self.loss_delta:.0%}" if self.loss_delta else ""
        return f"stop after {self.patience} epochs without a better val accuracy{loss}{floor}"


def auto_rule(planned_epochs: int) -> StopRule:
    """The default rule for a run planned for ``planned_epochs``."""
    return StopRule(patience=max(MIN_PATIENCE, math.ceil(PATIENCE_FRACTION * planned_epochs)),
                    min_epochs=math.ceil(MIN_FRACTION * planned_epochs), loss_delta=LOSS_DELTA)


def resolve(patience: int | None, min_epochs: int | None, epochs_given: bool, planned_epochs: int) -> tuple[int, int]:
    """``--patience`` and ``--min-epochs`` as a run records them (``config.json``, so ``--resume``
    decides the same), from what the user gave (None: not given), whether ``--epochs`` was given,
    and the planned epochs."""
    if patience is None and not epochs_given:
        rule = auto_rule(planned_epochs)
        return rule.patience, rule.min_epochs if min_epochs is None else min_epochs
    return patience or 0, min_epochs or 0


def rule_of(patience: int, min_epochs: int) -> StopRule | None:
    """The rule of a run with these resolved settings; None: it lasts its planned epochs."""
    return StopRule(patience, min_epochs, loss_delta=LOSS_DELTA) if patience > 0 else None


def stale_epochs(rows: list[dict], rule: StopRule) -> int:
    """Epochs since the last one that made progress (``rows``: val_acc and val_loss per epoch)."""
    best_acc, best_loss, stale = -1.0, math.inf, 0
    for row in rows:
        acc, loss = float(row["val_acc"]), float(row["val_loss"])
        better = acc > best_acc + rule.min_delta or (rule.loss_delta > 0 and loss < best_loss * (1 - rule.loss_delta))
        best_acc, best_loss = max(best_acc, acc), min(best_loss, loss)
        stale = 0 if better else stale + 1
    return stale


def lr_drops(rows: list[dict], rule: StopRule | None) -> int:
    """How many times validation has stalled for half the patience (``--schedule plateau`` divides the
    learning rate by 10 each time): counted from the rows, so a resumed run counts the same."""
    if rule is None:
        return 0
    half, drops = max(1, math.ceil(rule.patience / 2)), 0
    for k in range(1, len(rows) + 1):
        drops += stale_epochs(rows[:k], rule) == half
    return drops


def stop_reason(rows: list[dict], rule: StopRule | None, planned_epochs: int) -> str | None:
    """Why the run stops after the last of ``rows`` ("plateau: ..."), or None to go on."""
    if rule is None or len(rows) >= planned_epochs or len(rows) < rule.min_epochs:
        return None
    stale = stale_epochs(rows, rule)
    if stale < rule.patience:
        return None
    best = max(range(len(rows)), key=lambda i: (float(rows[i]["val_acc"]), -i)) + 1
    return f"plateau: no better val accuracy for {stale} epochs (best at epoch {best}); stopped at epoch {len(rows)} of {planned_epochs} planned"
