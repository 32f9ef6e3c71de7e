"""When a run is done: the stopping rule.

A run is planned for a number of epochs (``plan.py``); it ends sooner when validation has stopped
improving. The rule looks only at the epochs' validation figures (``metrics.csv`` rows), so a resumed
run decides as the uninterrupted one would have, and a rule can be replayed on a finished run's
``metrics.csv`` (``benchmarks/stopping.py`` measured the default that way and by training).

- ``--patience`` not given, ``--epochs`` not given: the default rule, ``auto_rule``: a plateau is a fifth
  of the planned epochs (at least 2) without a better val accuracy, never before a third of them. At a
  plateau of 100% the run stops; below 100% it stops only once the learning rate has annealed below
  ``ANNEALED`` (5%) of its peak, and goes on while the rate is higher: with the one-cycle schedule a run
  that stalls at a high rate often gains as the rate comes down (textures, seed 1: 71.25% for epochs 4
  to 9, 82.40% at the end), which neither stopping at the stall nor a short anneal collects
  (``benchmarks/stopping.py``, docs/training.md).
- ``--patience N``: stop after N epochs without a better val accuracy (no minimum; with ``--cooldown C``,
  below 100% and at a rate above a tenth of its peak, the rate first anneals to 0 over C epochs);
- ``--patience 0``, or ``--epochs`` given without ``--patience``: the run lasts its epochs.

A run that stops keeps the checkpoint of its best epoch (``best.pt``), which is what every command uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATIENCE_FRACTION = 0.2  # of the planned epochs, at least MIN_PATIENCE
MIN_PATIENCE = 2
MIN_FRACTION = 1 / 3  # of the planned epochs trained before a run may stop
ANNEALED = 0.05  # of the peak learning rate: under the default rule, a plateau below 100% stops a run only below this rate
COOLDOWN_ABOVE = 0.1  # --cooldown: the anneal after a plateau below 100% runs when the rate is still above this fraction of its peak


@dataclass(frozen=True)
class StopRule:
    """A plateau: ``patience`` epochs in a row without a val accuracy above the best so far by more
    than ``min_delta``, once ``min_epochs`` are done. Then stop; below 100%, with ``annealed`` > 0, only
    once the learning rate is below that fraction of its peak (the run goes on until then), or with
    ``cooldown``, after annealing the rate to 0 over that many epochs."""

    patience: int
    min_epochs: int = 0
    cooldown: int = 0
    min_delta: float = 0.0
    annealed: float = 0.0

    def describe(self) -> str:
        floor = f", not before epoch {self.min_epochs}" if self.min_epochs > 1 else ""
        wait = f"; below 100%, only once the learning rate is under {self.annealed:.0%} of its peak" if self.annealed else ""
        cool = f"; below 100%, the learning rate anneals over {self.cooldown} more first" if self.cooldown else ""
        return f"stop after {self.patience} epochs without a better val accuracy{floor}{wait}{cool}"


def auto_rule(planned_epochs: int) -> StopRule:
    """The default rule for a run planned for ``planned_epochs``."""
    return StopRule(patience=max(MIN_PATIENCE, math.ceil(PATIENCE_FRACTION * planned_epochs)), min_epochs=math.ceil(MIN_FRACTION * planned_epochs), annealed=ANNEALED)


def resolve(patience: int | None, min_epochs: int | None, cooldown: int | None, epochs_given: bool, planned_epochs: int,
            annealed: float | None = None) -> tuple[int, int, int, float]:
    """``--patience``, ``--min-epochs``, ``--cooldown`` and the rate a plateau below 100% waits for
    (``annealed``), as a run records them (``config.json``, so ``--resume`` decides the same), from what
    the user gave (None: not given), whether ``--epochs`` was given, and the planned epochs."""
    if patience is None and not epochs_given:
        rule = auto_rule(planned_epochs)
        return (rule.patience, rule.min_epochs if min_epochs is None else min_epochs, cooldown or 0,
                (0.0 if cooldown else rule.annealed) if annealed is None else annealed)
    return patience or 0, min_epochs or 0, cooldown or 0, annealed or 0.0


def rule_of(patience: int, min_epochs: int, cooldown: int = 0, annealed: float = 0.0) -> StopRule | None:
    """The rule of a run with these resolved settings; None: it lasts its planned epochs."""
    return StopRule(patience, min_epochs, cooldown, annealed=annealed) if patience > 0 else None


def stale_epochs(rows: list[dict], rule: StopRule) -> int:
    """Epochs since the last one with a better val accuracy (``rows``: val_acc per epoch)."""
    best, stale = -1.0, 0
    for row in rows:
        acc = float(row["val_acc"])
        stale = 0 if acc > best + rule.min_delta else stale + 1
        best = max(best, acc)
    return stale


def plateau_epoch(rows: list[dict], rule: StopRule) -> int | None:
    """The epoch the plateau was reached at (1-based), or None."""
    for k in range(max(1, rule.min_epochs), len(rows) + 1):
        if stale_epochs(rows[:k], rule) >= rule.patience:
            return k
    return None


def cooldown_of(rows: list[dict], rule: StopRule | None) -> tuple[int, int] | None:
    """(plateau epoch, cool-down epochs) once a plateau has started the learning rate's anneal, else
    None (for the schedule, ``optim.make_schedule``). No cool-down at 100% (nothing left to gain), nor
    when the rate at the plateau (the rows' ``lr``) is already below ``COOLDOWN_ABOVE`` of its peak."""
    if rule is None or not rule.cooldown:
        return None
    k = plateau_epoch(rows, rule)
    if k is None or max(float(r["val_acc"]) for r in rows[:k]) >= 1.0:
        return None
    rates = [float(r.get("lr") or 0) for r in rows[:k]]
    if max(rates) > 0 and rates[-1] < COOLDOWN_ABOVE * max(rates):
        return None
    return k, rule.cooldown


def best_epoch(rows: list[dict]) -> int:
    """The best epoch of ``rows`` (1-based), as ``TrainState`` keeps it: the highest val accuracy, a tie
    going to the lower val loss, then to the earlier epoch."""
    return max(range(len(rows)), key=lambda i: (float(rows[i]["val_acc"]), -float(rows[i].get("val_loss", 0.0)), -i)) + 1


def stop_reason(rows: list[dict], rule: StopRule | None, planned_epochs: int) -> str | None:
    """Why the run stops after the last of ``rows`` ("plateau: ..."), or None to go on."""
    if rule is None or len(rows) >= planned_epochs:
        return None
    k = plateau_epoch(rows, rule)
    if k is None:
        return None
    best = best_epoch(rows)
    stale = stale_epochs(rows, rule)
    if rule.annealed and max(float(r["val_acc"]) for r in rows) < 1.0:
        rates = [float(r.get("lr") or 0) for r in rows]
        if stale < rule.patience or (max(rates) > 0 and rates[-1] >= rule.annealed * max(rates)):
            return None  # the plateau has to last until the rate is down: a stall at a high rate often ends as it falls
        return (f"plateau: no better val accuracy for {stale} epochs, the learning rate annealed (best at epoch {best}); "
                f"stopped at epoch {len(rows)} of {planned_epochs} planned")
    cool = cooldown_of(rows, rule)
    if cool is None:
        return f"plateau: no better val accuracy for {stale} epochs (best at epoch {best}); stopped at epoch {len(rows)} of {planned_epochs} planned"
    if len(rows) < k + cool[1]:
        return None
    return (f"plateau at epoch {k}, then the learning rate annealed over {cool[1]} epochs (best at epoch {best}); "
            f"stopped at epoch {len(rows)} of {planned_epochs} planned")


PLATEAU_WITHOUT_RULE = StopRule(patience=4)  # --schedule plateau with the stopping rule off (--epochs N): a drop after 2 stalled epochs


def lr_drops(rows: list[dict], rule: StopRule | None) -> int:
    """How many times validation has stalled for half the patience (``--schedule plateau`` divides the
    learning rate by 10 each time): counted from the rows, so a resumed run counts the same. With no
    stopping rule, a stall is 2 epochs without a better val accuracy."""
    rule = rule or PLATEAU_WITHOUT_RULE
    half, drops = max(1, math.ceil(rule.patience / 2)), 0
    for k in range(1, len(rows) + 1):
        drops += stale_epochs(rows[:k], rule) == half
    return drops


def out_of_time(rows: list[dict], spent: float, limit: float | None, best_epoch: int) -> str | None:
    """The reason to stop when another epoch as long as the last of ``rows`` would end past ``limit``
    seconds (``spent`` so far); None without a limit or while there is time."""
    if limit is None or not rows or spent + rows[-1]["seconds"] <= limit:
        return None
    return f"time budget: {spent:.0f} s of {limit:.0f} s spent, and an epoch takes {rows[-1]['seconds']:.0f} s (best at epoch {best_epoch})"

