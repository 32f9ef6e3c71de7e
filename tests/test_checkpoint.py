import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from lstmimg import checkpoint as C
from lstmimg import files as F
from lstmimg import runs as R
from lstmimg.config import ModelConfig
from lstmimg.engine.infer.loading import load_checkpoint
from lstmimg.errors import LstmimgError
from lstmimg.models.registry import build_model

CFG = ModelConfig(name="region_lstm", img_size=(8, 8), num_classes=3, hidden=4, embed=4)


def saved(tmp_path: Path, **kw) -> Path:
    path = tmp_path / "model.pt"
    torch.manual_seed(0)
    C.save_checkpoint(path, build_model(CFG), CFG, ["a", "b", "c"], [0.5], [0.25], meta={"epoch": 3}, **kw)
    return path


def test_round_trip_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = build_model(CFG).eval()
    path = tmp_path / "m.pt"
    C.save_checkpoint(path, model, CFG, ["a", "b", "c"], [0.5], [0.25], meta={"epoch": 3})
    ckpt = load_checkpoint(path)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(ckpt.model(x), model(x))
    assert ckpt.config == CFG and ckpt.classes == ["a", "b", "c"] and ckpt.mean == [0.5] and ckpt.meta == {"epoch": 3}
    # plain data only: loads with weights_only=True and no lstmimg classes
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "lstmimg" and raw["version"] == C.VERSION and isinstance(raw["model"], dict)


def test_run_folder_resolves_to_best_then_last(tmp_path):
    path = saved(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(LstmimgError, match="run folder has no best.pt or last.pt"):
        load_checkpoint(run)
    os.replace(path, run / "last.pt")
    assert load_checkpoint(run).path == run / "last.pt"


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_crafted_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "lstmimg", "version": C.VERSION, "x": RunsACommand(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(LstmimgError, match="evil.pt: refused to load: it would run code .*GLOBAL posix.system"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("size", [0, 10, 3000])
def test_garbage_files(tmp_path, size):
    path = tmp_path / "junk.pt"
    for seed in range(20):
        path.write_bytes(random.Random(seed).randbytes(size))
        with pytest.raises(LstmimgError, match="junk.pt: not a readable checkpoint"):
            load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(LstmimgError, match="model.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_other_tools_and_versions_and_kinds(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(LstmimgError, match="other.pt: not an lstmimg checkpoint"):
        load_checkpoint(other)
    path = saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(LstmimgError, match="format version 99; this lstmimg reads version 1"):
        load_checkpoint(tmp_path / "future.pt")
    with pytest.raises(LstmimgError, match="an image model, but this command needs a video model"):
        load_checkpoint(path, kind="video")
    with pytest.raises(LstmimgError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_damaged_weights(tmp_path):
    path = saved(tmp_path)
    raw = torch.load(path, weights_only=True)
    raw["state_dict"].pop(next(iter(raw["state_dict"])))
    torch.save(raw, path)
    with pytest.raises(LstmimgError, match="damaged lstmimg checkpoint"):
        load_checkpoint(path)


def test_new_run_dir_never_reuses_a_run(tmp_path):
    base = tmp_path / "runs" / "train"
    assert [R.new_run_dir(base=base).name for _ in range(3)] == ["exp", "exp2", "exp3"]
    out = tmp_path / "mine"
    assert R.new_run_dir(out) == out
    (out / "best.pt").write_bytes(b"keep me")
    with pytest.raises(LstmimgError, match="folder exists and is not empty"):
        R.new_run_dir(out)
    assert (out / "best.pt").read_bytes() == b"keep me"


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f.json"
    F.write_json(target, {"a": 1})
    F.write_json(target, {"a": 2})
    assert target.read_text().strip().endswith("}") and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_resolve_model_prefers_given_then_newest_run_then_bundled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if R.BUNDLED_MODELS["image"].is_file():
        assert R.resolve_model(None) == (R.BUNDLED_MODELS["image"], "bundled digits model")
    if R.BUNDLED_MODELS["video"].is_file():
        assert R.resolve_model(None, "video") == (R.BUNDLED_MODELS["video"], "bundled clips model")
    for name in ("exp", "exp2"):
        run = tmp_path / "runs" / "train" / name
        run.mkdir(parents=True)
        (run / "best.pt").write_bytes(b"x")
        (run / "summary.json").write_text('{"kind": "image"}')
    os.utime(tmp_path / "runs/train/exp/best.pt", (1e9, 1e9))
    assert R.resolve_model(None) == (Path("runs/train/exp2/best.pt"), "newest run")
    assert R.resolve_model(tmp_path / "runs/train/exp")[0] == tmp_path / "runs/train/exp/best.pt"
    monkeypatch.setitem(R.BUNDLED_MODELS, "video", tmp_path / "absent.pt")
    with pytest.raises(LstmimgError, match="no video model"):
        R.resolve_model(None, "video")


def test_a_file_claiming_an_odd_pickle_protocol_is_one_error_and_no_torch_warning(tmp_path):
    """torch.load warns "Detected pickle protocol 75 in the checkpoint ..." (two lines on stderr, before the
    one-line error) for a damaged file whose second byte is not 2; a user sees only the error."""
    import warnings

    path = tmp_path / "bad.pt"
    path.write_bytes(b"\x80\x4b" + bytes(range(200)))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(LstmimgError, match="not a readable checkpoint"):
            C.read_payload(path)
    assert [str(w.message) for w in seen] == []
