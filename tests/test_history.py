"""`lstmimg runs`: a folder of runs as a table, two runs compared, broken runs named in one line each."""

import json
import shutil
import subprocess
import sys

from conftest import assert_one_line_error as one_line_error
from conftest import run_cli as run

from lstmimg.history import compare_runs, list_runs


def fake_runs(base, trained_run):
    """Runs in every state: copies of a real finished run, one stopped early, one interrupted with
    last.pt, one before its first checkpoint, and broken ones."""
    for i in range(3):
        shutil.copytree(trained_run, base / f"done{i}")
    stopped = base / "stopped"
    shutil.copytree(trained_run, stopped)
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "stopped_early": True, "planned_epochs": 9}))
    resumable = base / "resumable"
    shutil.copytree(trained_run, resumable)
    (resumable / "summary.json").unlink()
    early = base / "early"
    early.mkdir()
    shutil.copy(trained_run / "config.json", early / "config.json")
    (base / "bad_config").mkdir()
    (base / "bad_config" / "config.json").write_text("{not json")
    (base / "bad_metrics").mkdir()
    shutil.copy(trained_run / "config.json", base / "bad_metrics" / "config.json")
    (base / "bad_metrics" / "metrics.csv").write_text("epoch,val_acc\n1,oops\n")
    (base / "not_a_run").mkdir()  # no run files: not listed


def test_every_state_is_listed(tmp_path, trained_run):
    fake_runs(tmp_path, trained_run)
    records = {r.name: r for r in list_runs(tmp_path)}
    assert set(records) == {"done0", "done1", "done2", "stopped", "resumable", "early", "bad_config", "bad_metrics"}
    assert records["done0"].status == "finished" and records["done0"].epochs == 2 and records["done0"].model == "cnn_lstm"
    assert records["stopped"].status == "stopped early" and records["stopped"].planned_epochs == 9
    resumable = records["resumable"]
    assert resumable.status == "resumable" and resumable.epochs == 2 and resumable.val_accuracy == records["done0"].val_accuracy
    assert records["early"].status == "interrupted" and records["early"].epochs == 0
    assert records["bad_config"].status == "broken" and "config.json: not readable JSON" in records["bad_config"].problem
    assert records["bad_metrics"].status == "broken" and "metrics.csv" in records["bad_metrics"].problem


def test_the_command_prints_a_table_json_and_one_line_per_broken_run(tmp_path, trained_run):
    fake_runs(tmp_path, trained_run)
    result = run("runs", tmp_path)
    assert result.exit_code == 0, result.output
    assert "done0" in result.stdout and "resumable" in result.stdout and "stopped early" in result.stdout
    broken = [line for line in result.stderr.splitlines() if line.startswith("broken run")]
    assert len(broken) == 2 and any("bad_config" in line and "not readable JSON" in line for line in broken)
    assert "Traceback" not in result.output
    rows = json.loads(run("runs", tmp_path, "--json").stdout)
    assert len(rows) == 8 and {"name", "status", "val_accuracy", "epochs", "train_seconds"} <= set(rows[0])


def test_two_runs_compared_show_only_the_settings_that_differ(tmp_path, trained_run):
    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    config = json.loads((other / "config.json").read_text())
    config["train"]["lr"] = 0.5
    (other / "config.json").write_text(json.dumps(config))
    report = compare_runs(trained_run, other)
    assert report["settings"] == {"train.lr": [json.loads((trained_run / "config.json").read_text())["train"]["lr"], 0.5]}
    assert report["figures"]["epochs"] == [2, 2]
    result = run("runs", trained_run, other)
    assert result.exit_code == 0 and "train.lr" in result.stdout and "0.5" in result.stdout
    assert "train.epochs" not in result.stdout


def test_bad_folders_are_one_line_errors(tmp_path, trained_run):
    one_line_error(run("runs", tmp_path / "missing"), "missing", "no such folder")
    one_line_error(run("runs", trained_run, tmp_path), str(tmp_path), "not a run folder")
    one_line_error(run("runs", tmp_path, tmp_path, tmp_path), "two runs")


def test_listing_runs_imports_no_torch(tmp_path, trained_run):
    fake_runs(tmp_path, trained_run)
    code = (f"import sys; sys.argv = ['lstmimg', 'runs', {str(tmp_path)!r}]\nfrom lstmimg.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "done0" in done.stdout, done.stderr
