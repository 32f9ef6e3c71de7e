"""`lstmimg tune` stopped half way: kill -9, then --resume, runs no finished trial again; Ctrl-C ends the
running trial, keeps the study, says the best so far, and --resume goes on."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import Command, write_class_folders

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def ends(folder):
    path = folder / "trials.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in rows if r["state"] in ("complete", "pruned")]


@pytest.mark.parametrize("how", ["kill -9", "ctrl-c"])
def test_tune_stopped_half_way_resumes_without_running_a_finished_trial_again(tmp_path, how):
    data = write_class_folders(tmp_path / "bars", 24, seed=1)
    cmd = Command("tune", data, "--trials", "6", "--seeds", "1", "--out", "t", cwd=tmp_path)
    deadline = time.monotonic() + 150
    while len(ends(tmp_path / "t")) < 2 and cmd.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cmd.proc.poll() is None, f"tune ended before it was stopped:\n{cmd.stderr[-2000:]}"
    before = {r["trial"]: r for r in ends(tmp_path / "t")}
    cmd.signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    code = cmd.wait(90)
    assert cmd.survivors() == []
    if how == "ctrl-c":
        said = cmd.stderr.strip().splitlines()  # progress lines (not a terminal: one per trial), then one line
        assert code == 130 and "Traceback" not in cmd.stderr and all(line.startswith("trials: ") for line in said[:-1]), cmd.stderr
        assert said[-1].startswith("interrupted: tune stopped after ") and said[-1].endswith("the study is kept: lstmimg tune --resume t")
    before = {r["trial"]: r for r in ends(tmp_path / "t")}  # a trial may have ended between the look and the signal
    assert not (tmp_path / "t" / "best.json").exists()
    lock = tmp_path / "t" / "study.journal.lock"  # a kill -9 while the journal is written leaves Optuna's lock, a symlink (once, in CI: --resume waited on it for ever)
    if how == "kill -9" and not lock.is_symlink():
        lock.symlink_to((tmp_path / "t" / "study.journal").resolve())
    again = Command("tune", "--resume", "t", "--json", cwd=tmp_path)
    assert again.wait(200) == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    after = ends(tmp_path / "t")
    assert len(after) == 6 == summary["trials"]  # the finished ones count: 6 in all, not 6 more
    assert len({r["trial"] for r in after}) == 6
    for number, row in before.items():  # each finished trial is there once, as it was: not run again
        assert [r for r in after if r["trial"] == number] == [row]
    assert summary["redone_after_kill"] in ((0, 1) if how == "kill -9" else (0,))  # a trial the kill cut short is queued again with its settings
    assert (tmp_path / "t" / "best.json").is_file() and summary["final"]["defaults"]["test"]
