import pytest

from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.errors import LstmimgError


def test_round_trip_through_json_as_run_folders_store_it():
    """config.json turns tuples into lists; the configs read back equal the ones written."""
    import json

    cfg = ModelConfig(name="region_lstm", scan="snake", patch=7, img_size=(28, 28), cnn_channels=[8, 16])
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.img_size == (28, 28) and again.cnn_channels == (8, 16)
    train = TrainConfig(epochs=3, img_size=(16, 20), load="disk")
    assert TrainConfig.from_dict(json.loads(json.dumps(train.to_dict()))) == train


def test_unknown_keys_are_rejected():
    with pytest.raises(LstmimgError, match="unknown ModelConfig keys: hiden"):
        ModelConfig.from_dict({"hiden": 12})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scan": "spiral"}, "--scan 'spiral' is not one of: rows, cols, patches, snake"),
        ({"rnn": "transformer"}, "--rnn 'transformer' is not one of: lstm, gru, rnn"),
        ({"hidden": 0}, "--hidden must be >= 1"),
        ({"num_classes": 1}, "--num-classes must be >= 2"),
        ({"dropout": 1.0}, "--dropout must be in"),
    ],
)
def test_bad_model_values_name_the_allowed_ones(kwargs, message):
    with pytest.raises(LstmimgError, match=message.replace("(", r"\(").replace("[", r"\[")):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": -1}, "--epochs must be >= 1"),
        ({"lr": 0}, "--lr must be > 0"),
        ({"optimizer": "lion"}, "adam, adamw, sgd"),
        ({"schedule": "step"}, "cosine, onecycle, plateau, none"),
        ({"class_weights": "balanced"}, "auto"),
        ({"val_split": 1.5}, "--val-split must be in"),
        ({"device": "tpu"}, "auto, cpu, cuda, mps"),
        ({"load": "stream"}, "--load 'stream' is not one of: auto, memory, disk"),
        ({"workers": -1}, "--workers must be >= 0"),
    ],
)
def test_bad_train_values(kwargs, message):
    with pytest.raises(LstmimgError, match=message):
        TrainConfig(**kwargs)


def test_replace_validates():
    with pytest.raises(LstmimgError):
        ModelConfig().replace(pool="max")
