"""The stopping rule: when a run is done, why it says it stopped, and how options turn it on and off."""

import csv
import json

from conftest import TINY_MODEL
from conftest import run_cli as run

from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.engine.train.plan import plan_training
from lstmimg.engine.train.stopping import StopRule, auto_rule, best_epoch, cooldown_of, resolve, rule_of, stop_reason


def rows(*accs, losses=None):
    return [{"val_acc": a, "val_loss": (losses or [1.0] * len(accs))[i]} for i, a in enumerate(accs)]


def test_plateau_stops_after_patience_epochs_without_a_better_accuracy():
    rule = StopRule(patience=2)
    assert stop_reason(rows(0.5, 0.6), rule, 10) is None
    assert stop_reason(rows(0.5, 0.6, 0.6), rule, 10) is None  # one stale epoch
    reason = stop_reason(rows(0.5, 0.6, 0.6, 0.55), rule, 10)
    assert reason.startswith("plateau") and "best at epoch 2" in reason and "epoch 4 of 10" in reason
    assert stop_reason(rows(0.5, 0.6, 0.6, 0.7), rule, 10) is None  # a better epoch starts the count again


def test_never_before_min_epochs_and_never_past_the_plan():
    rule = StopRule(patience=1, min_epochs=4)
    assert stop_reason(rows(0.9, 0.9, 0.9), rule, 10) is None
    assert stop_reason(rows(0.9, 0.9, 0.9, 0.9), rule, 10) is not None
    assert stop_reason(rows(*[0.9] * 10), rule, 10) is None  # the last planned epoch: the run ends anyway
    assert stop_reason(rows(0.9, 0.8, 0.7), None, 10) is None


def test_min_delta():
    assert stop_reason(rows(0.5, 0.505, 0.51), StopRule(patience=2, min_delta=0.02), 10) is not None
    assert stop_reason(rows(0.5, 0.505, 0.51), StopRule(patience=2), 10) is None


def test_below_100_the_rate_anneals_over_the_cooldown_before_stopping():
    rule = StopRule(patience=2, cooldown=2)
    stalled = rows(0.5, 0.7, 0.6, 0.65)  # plateau reached at epoch 4
    assert cooldown_of(stalled, rule) == (4, 2)
    assert stop_reason(stalled, rule, 10) is None
    assert stop_reason(stalled + rows(0.8), rule, 10) is None  # a better epoch in the cool-down: it goes on to its end
    reason = stop_reason(stalled + rows(0.8, 0.75), rule, 10)
    assert reason.startswith("plateau at epoch 4, then the learning rate annealed over 2 epochs (best at epoch 5)") and "epoch 6 of 10" in reason
    perfect = rows(0.9, 1.0, 1.0, 1.0)  # nothing left to gain: stop at once
    assert cooldown_of(perfect, rule) is None and stop_reason(perfect, rule, 10).startswith("plateau: no better val accuracy for 2 epochs")
    annealed = [{**r, "lr": lr} for r, lr in zip(stalled, (0.5, 1.0, 0.3, 0.05))]  # the rate at the plateau is 5% of its peak
    assert cooldown_of(annealed, rule) is None and stop_reason(annealed, rule, 10).startswith("plateau: no better")
    high = [{**r, "lr": lr} for r, lr in zip(stalled, (0.5, 1.0, 0.9, 0.8))]
    assert cooldown_of(high, rule) == (4, 2)


def test_the_cooldown_schedule_falls_to_zero_from_where_it_was():
    import torch

    from lstmimg.engine.train.optim import make_schedule

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    cool = []
    sched = make_schedule(opt, TrainConfig(schedule="onecycle", warmup=0.1), 100, cooldown=lambda: cool[0] if cool else None)
    for _ in range(40):
        opt.step()
        sched.step()
    before = opt.param_groups[0]["lr"]
    cool.append((40, 10))  # a plateau after step 40: anneal over 10 steps
    lrs = []
    for _ in range(12):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert 0 < lrs[0] <= before and lrs == sorted(lrs, reverse=True) and lrs[9] == 0 == lrs[-1]


def test_the_default_rule_scales_with_the_planned_run_and_options_turn_it_off():
    assert auto_rule(15) == StopRule(patience=3, min_epochs=5, annealed=0.05)
    assert (auto_rule(60).patience, auto_rule(60).min_epochs) == (12, 20)
    assert auto_rule(4).patience == 2  # never fewer than 2
    assert resolve(None, None, None, False, 15) == (3, 5, 0, 0.05)  # nothing given: the default rule
    assert resolve(None, None, None, True, 15) == (0, 0, 0, 0.0)  # --epochs given, no --patience: all of them
    assert resolve(4, None, None, True, 15) == (4, 0, 0, 0.0)  # --patience N: as before, no minimum, no wait
    assert resolve(0, None, None, False, 15) == (0, 0, 0, 0.0) and rule_of(0, 0) is None
    assert resolve(None, 7, 0, False, 15) == (3, 7, 0, 0.05)
    assert resolve(None, None, 2, False, 15) == (3, 5, 2, 0.0)  # --cooldown given: the anneal instead of the wait
    assert resolve(3, 5, 2, False, 15) == (3, 5, 2, 0.0)  # a run recorded before the wait existed resumes with its own rule


def test_below_100_the_default_rule_waits_for_the_rate_to_come_down():
    rule = auto_rule(15)  # patience 3, not before epoch 5, below 100% only under 5% of the peak rate
    accs = (0.5, 0.7, 0.71, 0.7, 0.7, 0.7)  # a plateau at epoch 6, while the rate is high
    high = [{**r, "lr": lr} for r, lr in zip(rows(*accs), (0.3, 1.0, 0.9, 0.8, 0.7, 0.6))]
    assert stop_reason(high, rule, 15) is None  # goes on: the stall often ends as the rate falls
    rising = high + [{**r, "lr": lr} for r, lr in zip(rows(0.8, 0.8, 0.8), (0.3, 0.04, 0.03))]  # a gain at epoch 7, then a stall as it anneals
    assert stop_reason(rising[:8], rule, 15) is None  # annealed, but only 1 epoch without a better one
    assert stop_reason(rising[:9], rule, 15) is None  # 2 epochs
    annealed = rising + [{**rows(0.8)[0], "lr": 0.02}]
    reason = stop_reason(annealed, rule, 15)
    assert reason.startswith("plateau: no better val accuracy for 3 epochs, the learning rate annealed (best at epoch 7)") and "epoch 10 of 15" in reason
    perfect = [{**r, "lr": 1.0} for r in rows(0.9, 1.0, 1.0, 1.0, 1.0, 1.0)]  # nothing left to gain: stop at the plateau, whatever the rate
    assert stop_reason(perfect, rule, 15).startswith("plateau: no better val accuracy for 4 epochs")
    assert "under 5% of its peak" in rule.describe()


def test_the_plan_records_the_rule_so_resume_decides_the_same():
    plan = plan_training(TrainConfig(), "image", 4000)
    cfg = plan.apply(TrainConfig())
    assert (cfg.epochs, cfg.patience, cfg.min_epochs, cfg.cooldown, cfg.stop_annealed) == (15, 3, 5, 0, 0.05)
    assert any("stop after 3 epochs without a better val accuracy" in line for line in plan.reasons)
    again = plan_training(cfg, "image", 4000)  # --resume plans from the recorded config
    assert (again.epochs, again.patience, again.min_epochs, again.cooldown, again.annealed) == (15, 3, 5, 0, 0.05)
    assert plan_training(TrainConfig(epochs=15), "image", 4000).patience == 0


def test_the_default_rule_ends_a_run_that_stopped_learning(bars, tmp_path):
    # lr 1e-12: the weights stay put (only batch norm's statistics move); 72 images at batch 16 plan 60 epochs, patience 12
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(lr=1e-12, batch_size=16, min_epochs=2, stop_annealed=0, augment=False), out=tmp_path / "r")
    assert summary["planned_epochs"] == 60 and summary["stopped_early"] and summary["epochs"] == summary["best_epoch"] + 12 < 60
    assert summary["stop_reason"].startswith(f"plateau: no better val accuracy for 12 epochs (best at epoch {summary['best_epoch']})")


def test_a_cooldown_in_a_run(bars, tmp_path):
    from lstmimg.engine.train.stopping import StopRule, plateau_epoch

    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=30, lr=1e-12, batch_size=16, patience=2, cooldown=2, schedule="none", warmup=0, augment=False), out=tmp_path / "r")
    metrics = list(csv.DictReader((tmp_path / "r" / "metrics.csv").open()))
    k = plateau_epoch(metrics, StopRule(2))
    assert summary["epochs"] == k + 2 and summary["stop_reason"].startswith(f"plateau at epoch {k}, then the learning rate annealed over 2 epochs")
    assert float(metrics[-1]["lr"]) < float(metrics[k - 1]["lr"])


def test_the_run_says_why_it_stopped_on_screen_in_the_summary_and_the_metrics(bars, tmp_path):
    out = tmp_path / "r"
    result = run("train", bars, "--model", "cnn_lstm", "--hidden", "8", "--epochs", "10", "--patience", "2", "--lr", "1e-12", "--no-augment", "--out", out)
    assert result.exit_code == 0, result.output
    metrics = list(csv.DictReader((out / "metrics.csv").open()))
    best = best_epoch(metrics)  # nothing is learnt at this rate: epochs tie on val accuracy, the lowest val loss wins
    assert f"stopping: plateau: no better val accuracy for 2 epochs (best at epoch {best}); stopped at epoch 3 of 10 planned" in result.output
    assert "3 of 10 planned" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"].startswith("plateau") and summary["planned_epochs"] == 10 and summary["epochs"] == 3 and summary["best_epoch"] == best
    assert [m["stop"] for m in metrics[:2]] == ["", ""] and metrics[2]["stop"] == summary["stop_reason"]
    resumed = run("train", "--resume", out)
    assert resumed.exit_code == 0 and "already finished (plateau" in resumed.output


def test_a_run_that_lasts_its_epochs_says_so(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=2), out=tmp_path / "r")
    assert not summary["stopped_early"] and summary["stop_reason"] == f"finished the 2 planned epochs (best at epoch {summary['best_epoch']})"
    assert summary["stop_rule"].startswith("none")


def test_plateau_schedule_drops_the_rate_when_validation_stalls_for_half_the_patience():
    from lstmimg.engine.train.stopping import lr_drops

    rule = StopRule(patience=4)
    assert lr_drops(rows(0.5, 0.6), rule) == 0
    assert lr_drops(rows(0.5, 0.6, 0.6, 0.6), rule) == 1  # two stale epochs: one drop
    assert lr_drops(rows(0.5, 0.6, 0.6, 0.6, 0.6), rule) == 1
    assert lr_drops(rows(0.5, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7), rule) == 2  # a new stall after a better epoch
    assert lr_drops(rows(0.5, 0.5, 0.5), None) == 1  # no stopping rule (--epochs N): a stall of 2 epochs still drops it (issue 30, item 4)
    assert lr_drops(rows(0.5, 0.6, 0.6), None) == 0


def test_plateau_schedule_in_a_run(bars, tmp_path):
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=8, patience=4, lr=1e-12, warmup=0, schedule="plateau", augment=False), out=tmp_path / "r")
    lrs = [float(r["lr"]) for r in csv.DictReader((tmp_path / "r" / "metrics.csv").open())]
    assert lrs[0] == 1e-12 and min(lrs) < 1e-12 and summary["epochs"] <= 8


def test_a_tie_in_val_accuracy_goes_to_the_lower_val_loss():
    """Issue 33: the first epoch reaching the best val accuracy won with no tie-break (a 6-video val set
    kept epoch 1 at train accuracy 0.70 over epoch 2 with the same val accuracy and a lower val loss)."""
    import torch

    from lstmimg.engine.train.trainstate import TrainState

    rows = [{"val_acc": 0.5, "val_loss": 0.9}, {"val_acc": 0.5, "val_loss": 0.7}, {"val_acc": 0.5, "val_loss": 0.8}, {"val_acc": 0.4, "val_loss": 0.1}]
    assert best_epoch(rows) == 2
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    state = TrainState(net, opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), torch.Generator())
    assert [state.end_epoch(row, row["val_acc"], {}) for row in rows] == [True, True, False, False] and state.best_epoch == 2
    saved = state.state_dict()
    assert saved["best"]["loss"] == 0.7
    del saved["best"]["loss"]  # a checkpoint from before the tie-break resumes: the next tie wins
    state.load_state_dict({**saved, "state_dict": net.state_dict()})
    assert state.best_loss == float("inf") and state.end_epoch({"val_acc": 0.5, "val_loss": 0.75}, 0.5, {})
