"""TensorBoard event files: what a run writes with the package, a resumed run without duplicated steps,
and nothing imported or written without it."""

import subprocess
import sys

import pytest
from conftest import TINY_MODEL

from lstmimg import ModelConfig, TrainConfig, fit


def read_events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_a_run_writes_steps_epochs_hparams_and_two_images(bars, tmp_path):
    pytest.importorskip("tensorboard")
    summary = fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=2, batch_size=16), out=tmp_path / "r")
    events = read_events(tmp_path / "r")
    steps = [e.step for e in events.Scalars("train/step_loss")]
    assert steps == list(range(1, 2 * 5 + 1))  # 72 images at batch 16: 5 steps an epoch
    assert len(events.Scalars("train/lr")) == 10
    val = events.Scalars("epoch/val_acc")
    assert [e.step for e in val] == [5, 10] and max(e.value for e in val) == pytest.approx(summary["val_accuracy"])
    assert {"epoch/train_loss", "epoch/val_loss", "time/seconds", "time/samples_per_s"} <= set(events.Tags()["scalars"])
    assert set(events.Tags()["images"]) == {"confusion_matrix", "mistakes"}
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(events.PluginTagToContent("hparams"))
    assert events.Scalars("hparam/val_accuracy")[0].value == pytest.approx(summary["val_accuracy"])


def test_a_resumed_run_has_no_step_twice(bars, tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "r"

    def crash(event, info):  # dies in epoch 3, after last.pt of epoch 2, with steps of epoch 3 logged
        if event == "step" and info["epoch"] == 3 and info["step"] == 3:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        fit(bars, ModelConfig(**TINY_MODEL), TrainConfig(epochs=4, batch_size=16), out=out, callback=crash)
    fit(resume=out)
    steps = [e.step for e in read_events(out).Scalars("train/step_loss")]
    assert steps == list(range(1, 4 * 5 + 1))


BLOCK = """
import sys
class NoTensorBoard:  # as if the package were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ModuleNotFoundError(name)
        return None
sys.meta_path.insert(0, NoTensorBoard())
from lstmimg import ModelConfig, TrainConfig, fit
fit(sys.argv[1], ModelConfig(hidden=8, cnn_channels=(4, 8)), TrainConfig(epochs=1, batch_size=16), out=sys.argv[2])
loaded = [m for m in sys.modules if "tensorboard" in m]
assert not loaded, loaded
"""


@pytest.mark.slow
def test_without_tensorboard_nothing_is_imported_and_the_run_folder_is_as_before(bars, tmp_path):
    done = subprocess.run([sys.executable, "-c", BLOCK, str(bars), str(tmp_path / "r")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert names == {"best.pt", "last.pt", "config.json", "metrics.csv", "summary.json", "curves.png", "confusion_matrix.png", "mistakes.png", "report"}
