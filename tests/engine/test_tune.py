"""`lstmimg tune`: a small real study (trials, pruning, the test split no trial sees, the final runs, what
it writes), the search space against the defaults, and its bad inputs."""

import json
from pathlib import Path

import pytest
from conftest import run_cli as run
from conftest import write_class_folders

from lstmimg import LstmimgError, ModelConfig, TrainConfig
from lstmimg.engine.tune.study import best_trial, configs, defaults, seconds, train_command


@pytest.mark.slow
def test_a_small_study_searches_prunes_and_scores_on_files_no_trial_saw(bars, tmp_path, monkeypatch):
    from lstmimg.engine.tune.study import tune
    from lstmimg.history import list_runs

    monkeypatch.chdir(tmp_path)
    seen = []
    summary = tune(bars, trials=5, workers=2, seeds=1, out=tmp_path / "t", progress=seen.append)
    out = tmp_path / "t"
    rows = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    ends = [r for r in rows if r["state"] != "running"]
    assert len([r for r in ends if r["state"] in ("complete", "pruned")]) == summary["trials"] == 5
    assert ends[0]["trial"] == 0 or any(r["trial"] == 0 and r["settings"] == defaults("image") for r in ends)  # the defaults are trial 0
    assert len({r["pid"] for r in rows if r["state"] == "running"}) == 2  # two processes ran trials of one study
    assert any(r["state"] == "running" and r["epoch"] >= 1 for r in rows) and all(r["seed"] == 0 for r in ends)
    settings = json.loads((out / "tune.json").read_text())
    test = set(settings["test_files"])
    assert len(test) == summary["test_files"] == 15 and all(Path(f).parent.parent == bars / "train" for f in test)  # 20% of each class of train/
    for run_dir in (out / "trials").iterdir():  # no trial trained or validated on a test file
        assert set(json.loads((run_dir / "config.json").read_text())["train"]["exclude"]) == test
    best = json.loads((out / "best.json").read_text())
    assert best["chosen"] in ("defaults", "best") and best["command"].startswith("lstmimg train ") and best["final"]["defaults"]["test"]
    assert 0 <= best["final"]["defaults"]["mean"] <= 1 and best["seeds"] == 1
    assert (out / "search.png").read_bytes()[:4] == b"\x89PNG"
    winner = Path(best["run"])
    assert (winner / "best.pt").is_file() and winner.resolve() in {Path(r.path).resolve() for r in list_runs("runs/train")}  # listed by `lstmimg runs`
    assert any("final" in s for s in seen) and any(s.get("done") == 5 for s in seen)
    resumed = run("tune", "--resume", out)
    assert resumed.exit_code == 1 and "has finished" in resumed.output


def test_a_test_folder_is_the_test_split_and_otherwise_a_seeded_share_of_train(bars, tmp_path):
    from lstmimg.engine.tune.study import _test_split

    files, why = _test_split(bars, "image", 0)
    again, _ = _test_split(bars, "image", 0)
    assert files == again and len(files) == 15 and "set aside (seed 1)" in why
    write_class_folders(bars / "test", 4, seed=9)
    files, why = _test_split(bars, "image", 0)
    assert why == str(bars / "test") and sorted(files) == sorted(str(p) for p in (bars / "test").rglob("*.png"))


def test_the_first_trial_is_the_defaults_and_the_command_reproduces_a_setting():
    model, train = configs(defaults("image"), "image")
    assert model == ModelConfig(name="cnn_lstm") and train == TrainConfig()
    model, train = configs(defaults("video"), "video")
    assert model == ModelConfig(name="lrcn", motion="flow") and train == TrainConfig()
    assert train_command("d", defaults("image"), "image") == "lstmimg train d"
    p = {**defaults("image"), "model": "region_lstm", "scan": "snake", "side": "24", "augment": False, "lr": 0.0012345}
    assert train_command("my data", p, "image") == "lstmimg train 'my data' --model region_lstm --scan snake --img-size 24x24 --lr 0.00123 --no-augment"
    p = {**defaults("video"), "clip_len": 16, "motion": "none"}
    assert train_command("v", p, "video") == "lstmimg train v --clip-len 16 --motion none"


def test_a_tie_goes_to_the_smaller_model():
    import optuna
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="maximize")
    d = {"lr": FloatDistribution(1e-4, 1e-2)}
    for value, params in ((0.9, 500), (0.95, 900), (0.95, 300), (0.95, 300)):
        study.add_trial(optuna.trial.create_trial(params={"lr": 1e-3}, distributions=d, value=value, user_attrs={"params": params}))
    assert best_trial(study).number == 2  # 0.95 at 300 parameters, the earlier of two


def test_the_search_goes_on_until_the_whole_seeds_that_fit_must_start():
    import optuna
    from optuna.distributions import FloatDistribution

    from lstmimg.engine.tune.final import MARGIN
    from lstmimg.engine.tune.study import _final_need

    study = optuna.create_study(direction="maximize")
    d = {"lr": FloatDistribution(1e-4, 1e-2)}
    assert _final_need(study, 600.0, 240.0) == pytest.approx(240.0)  # no trial yet: the budget's share after the search
    for value, took in ((0.72, 41.0), (0.80, 43.0)):
        study.add_trial(optuna.trial.create_trial(params={"lr": 1e-3}, distributions=d, value=value, user_attrs={"seconds": took}))
    round_s = (41.0 + 43.0) / MARGIN  # the defaults (trial 0) and the best, once each
    # 240 s left fit two rounds, not three: the search may go on for what the third would not have used
    # (tilt, random search: the study stopped at 60% and the final runs left 82 s of 600 unused)
    assert _final_need(study, 600.0, 240.0) == pytest.approx(2 * round_s + 10.0)
    assert _final_need(study, 600.0, 1000.0) == pytest.approx(3 * round_s + 10.0)  # at most three seeds planned
    assert _final_need(study, 600.0, 50.0) == pytest.approx(round_s + 10.0)  # at least one


def test_time_budgets_read_as_people_write_them():
    assert (seconds("90"), seconds("90s"), seconds("30m"), seconds("1.5h")) == (90, 90, 1800, 5400)
    for bad in ("abc", "0", "-5m", "m"):
        with pytest.raises(LstmimgError, match="--time"):
            seconds(bad)


def test_bad_tune_options_say_one_line(bars, tmp_path):
    for args, words in (((bars,), "give --time"), ((bars, "--time", "ten"), "--time 'ten'"), ((bars, "--trials", "2", "--metric", "f1"), "--metric 'f1'"),
                        (("--resume", tmp_path), "not a tune folder"), ((bars, "--resume", tmp_path), "one or the other"), ((bars, "--trials", "2", "--search", "grid"), "--search 'grid'")):
        result = run("tune", *args, "--out", tmp_path / "never")
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


@pytest.mark.long  # 45 s of training: beyond CI's budget (the small study above runs the final phase in CI)
def test_final_runs_add_a_seed_when_the_planned_ones_leave_time_for_it(bars, tmp_path, monkeypatch):
    from lstmimg.engine.tune.study import _test_split, final_runs

    monkeypatch.chdir(tmp_path)
    files, why = _test_split(bars, "image", 0)
    settings = {"kind": "image", "data": str(bars), "test_files": files, "seed": 0, "metric": "accuracy"}
    (tmp_path / "t").mkdir()
    roomy = final_runs(tmp_path / "t", settings, {"defaults": defaults("image")}, 1, 3600.0, "cpu", more=1)
    assert len(roomy["defaults"]["test"]) == 2 and (tmp_path / "t" / "final" / "defaults-seed1" / "best.pt").is_file()
    unbounded = final_runs(tmp_path / "t", settings, {"defaults": defaults("image")}, 1, None, "cpu", more=1)  # no budget: the planned seeds only
    assert len(unbounded["defaults"]["test"]) == 1 and 0 <= unbounded["defaults"]["mean"] <= 1 and unbounded["defaults"]["spread"] == 0


def test_the_search_picture_of_a_budget_no_trial_started_in_is_drawn_and_says_so(tmp_path):
    """`tune --time 1s`: the final runs train the defaults, then drawing search.png read trials.jsonl, which no
    trial had written: a FileNotFoundError traceback after the work was done."""
    import matplotlib.pyplot as plt

    from lstmimg.engine.tune.final import picture

    before = plt.get_backend()
    path = picture(tmp_path, "accuracy")
    assert path == tmp_path / "search.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_backend() == before  # drawn without pyplot: a notebook's backend is left alone
