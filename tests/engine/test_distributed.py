"""DistributedDataParallel on CPU: two gloo processes started by `lstmimg train --devices 2` (torchrun)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from lstmimg.engine.train import board
from lstmimg.engine.train.distributed import Dist, shard


def test_shards_split_an_epoch_evenly_without_overlap():
    order = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    parts = [shard(order, Dist(rank, 2, rank)) for rank in range(2)]
    assert len(parts[0]) == len(parts[1]) == 5
    assert not set(parts[0].tolist()) & set(parts[1].tolist())
    assert torch.equal(shard(order, Dist()), order)


@pytest.mark.slow
@pytest.mark.long  # 62 s, beyond CI's budget: `--devices 2` training in CI is test_ranks_decide_together[patience] and the sharded-training fault cases
def test_two_gloo_processes_train_one_run(tmp_path):
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.sample import sample_data_dir

    data = sample_data_dir() / "digits"
    base = [sys.executable, "-m", "lstmimg", "train", str(data), "--epochs", "2"]
    two = subprocess.run(base + ["--devices", "2", "--out", str(tmp_path / "ddp")], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(base + ["--out", str(tmp_path / "single")], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]

    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # one run folder, no stray exp*
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    single = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["epochs"] == 2 and summary["train_samples"] == 4000
    assert two.stdout.count("training summary") == 1  # only rank 0 reports
    assert (tmp_path / "ddp" / "metrics.csv").read_text().count("\n") == 3  # header + one row per epoch
    if board.available():  # one TensorBoard writer (rank 0's) and its hparams file, as in a one-process run
        assert len(list((tmp_path / "ddp").glob("events.out.tfevents.*"))) == len(list((tmp_path / "single").glob("events.out.tfevents.*"))) == 2
    assert abs(summary["val_accuracy"] - single["val_accuracy"]) < 0.06
    assert summary["val_accuracy"] > 0.85
    # a checkpoint made by 2 processes loads anywhere: plain weights, no DDP prefixes
    model = load_checkpoint(tmp_path / "ddp" / "best.pt").model
    assert not any(k.startswith("module.") for k in model.state_dict())


@pytest.mark.slow
@pytest.mark.long  # beyond CI's budget: python -m pytest -m long (benchmarks/faults.py runs it)
def test_interrupted_two_process_run_resumes_on_one(bars, tmp_path):
    """A 2-process run stopped by SIGTERM saves last.pt; --resume finishes it in a single process."""
    import signal
    import time

    run = tmp_path / "run"
    # 60 epochs: still training when it is stopped (0.5 s after its first epoch), and little left to resume
    cmd = [sys.executable, "-m", "lstmimg", "train", str(bars), "--devices", "2", "--epochs", "60", "--hidden", "16", "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 180
    while not (run / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "resume with: lstmimg train --resume" in err
    done = subprocess.run([sys.executable, "-m", "lstmimg", "train", "--resume", str(run)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 60 and summary["processes"] == 1


@pytest.mark.slow
@pytest.mark.long  # beyond CI's budget: python -m pytest -m long (benchmarks/faults.py runs it)
def test_two_nodes_meet_through_c10d_rendezvous(bars, tmp_path):
    """The README's multi-machine command, both "machines" on this one: one torchrun per node, the
    same rendezvous endpoint; node ranks are agreed at rendezvous, one run folder is written. Each
    process streams its share through its own DataLoader worker."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--rdzv-backend", "c10d",
        "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "test", "-m", "lstmimg", "train", str(bars), "--epochs", "2", "--hidden", "16", "--load", "disk", "--workers", "1", "--out", str(run),
    ]
    nodes = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path) for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert sum(out.count("training summary") for out, _ in outputs) == 1  # one node's rank 0 reports
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["epochs"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "bars") == ["run"]


DDP_SCRIPT = """
import os, sys, torch
import lstmimg.engine.train.training as training
from lstmimg import ModelConfig, TrainConfig, fit
from lstmimg.errors import LstmimgError
case = sys.argv[2]
if os.environ["RANK"] == "1":
    if case == "patience":  # this rank's own scoring would see a better model every epoch
        original = training.score_split
        calls = []
        def score(net, data, split, *a, **k):
            probs, extra = original(net, data, split, *a, **k)
            calls.append(1)
            labels = data.sets[split].labels
            n = min(len(calls) * 4, len(probs))  # right on 4 more samples every epoch
            wrong = (labels + 1) % probs.shape[1]
            fake = torch.nn.functional.one_hot(torch.cat([labels[:n], wrong[n:]]), probs.shape[1]).float()
            return fake, extra
        training.score_split = score
    else:  # a non-finite loss on this rank only
        original_ce = torch.nn.functional.cross_entropy
        count = []
        def ce(*a, **k):
            count.append(1)
            loss = original_ce(*a, **k)
            return loss * float("nan") if len(count) == 4 else loss
        torch.nn.functional.cross_entropy = ce
outcome = open(sys.argv[3] + f".rank{os.environ['RANK']}", "w")  # one file a rank: their prints would interleave
try:
    s = fit(sys.argv[1], ModelConfig(hidden=8, cnn_channels=(4, 8)), TrainConfig(epochs=8, batch_size=8, lr=1e-12, patience=1, augment=False), out=sys.argv[3], exist_ok=True)
    outcome.write(f"EPOCHS {s.get('epochs')}")
except LstmimgError as e:
    outcome.write(f"ERROR {e}")
    sys.exit(1)
finally:
    outcome.close()
"""


@pytest.mark.parametrize("case", ["patience", pytest.param("nan", marks=pytest.mark.long)])
def test_ranks_decide_together(bars, tmp_path, case):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(bars), case, str(tmp_path / "run")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("the ranks did not finish together: one waits in a collective")
    outcomes = [(tmp_path / f"run.rank{rank}").read_text() for rank in (0, 1)]
    if case == "patience":
        assert done.returncode == 0, done.stderr[-2000:]
        # rank 0 stops on a plateau (lr 1e-12: at most batch norm's statistics move) and reports the run; rank 1,
        # whose own scores improve every epoch, stopped with it instead of training on alone
        assert outcomes[1] == "EPOCHS None" and outcomes[0].startswith("EPOCHS ") and int(outcomes[0].split()[1]) < 8, outcomes
    else:
        assert done.returncode != 0
        assert all(o.startswith("ERROR loss became nan at epoch 1, step 4") for o in outcomes), outcomes
