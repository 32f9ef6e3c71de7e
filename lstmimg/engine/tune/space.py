"""What `lstmimg tune` searches: the settings per kind of data, the defaults among them (trial 0), the
model and training configs of a setting, and the `lstmimg train` command that reproduces one."""

from __future__ import annotations

import shlex

from lstmimg.config import DEFAULT_MODELS, ModelConfig, TrainConfig


def defaults(kind: str) -> dict:
    """The defaults as settings of the search space (the first trial)."""
    if kind == "video":
        return {"clip_len": 8, "frame_stride": "auto", "motion": "flow", "backbone": "built-in", "hidden": 128, "lr": 3e-3}
    return {"model": "cnn_lstm", "side": "auto", "hidden": 128, "lr": 3e-3, "weight_decay": 1e-4, "augment": True}


def suggest(trial, kind: str, backbones: list[str]) -> dict:
    """One trial's settings: for images the model and its scan, the input side, hidden size, learning
    rate, weight decay and augmentation; for videos the clip length, frame stride (0: segments; auto: as
    `train` chooses), motion input, backbone
    (the built-in CNN, or a torchvision one whose weights are on disk), hidden size and learning rate."""
    if kind == "video":
        p = {"clip_len": trial.suggest_categorical("clip_len", [4, 8, 16]), "frame_stride": trial.suggest_categorical("frame_stride", ["auto", 0, 1, 2, 4]),
             "motion": trial.suggest_categorical("motion", ["flow", "diff", "none"]), "backbone": trial.suggest_categorical("backbone", ["built-in", *backbones])}
    else:
        p = {"model": trial.suggest_categorical("model", ["cnn_lstm", "region_lstm"])}
        if p["model"] == "region_lstm":
            p["scan"] = trial.suggest_categorical("scan", ["rows", "patches", "snake"])
        p["side"] = trial.suggest_categorical("side", ["auto", "16", "24", "32", "48"])
        p["weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
        p["augment"] = trial.suggest_categorical("augment", [True, False])
    p["hidden"] = trial.suggest_categorical("hidden", [64, 128, 256])
    p["lr"] = trial.suggest_float("lr", 3e-4, 1e-2, log=True)
    return p


def configs(p: dict, kind: str) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs of settings ``p`` (anything not in ``p`` stays the default)."""
    model = ModelConfig(name=DEFAULT_MODELS[kind], hidden=p["hidden"])
    train = TrainConfig(lr=p["lr"])
    if kind == "video":
        model = model.replace(motion=p["motion"])
        if p["backbone"] != "built-in":
            model = model.replace(backbone=p["backbone"], pretrained=True, freeze_backbone=True)
        train = train.replace(clip_len=p["clip_len"], frame_stride=None if p["frame_stride"] == "auto" else p["frame_stride"])
    else:
        model = model.replace(name=p["model"], scan=p.get("scan", "rows"))
        train = train.replace(weight_decay=p["weight_decay"], augment=p["augment"])
        if p["side"] != "auto":
            train = train.replace(img_size=(int(p["side"]), int(p["side"])))
    return model, train


def train_command(data: str, p: dict, kind: str) -> str:
    """The `lstmimg train` command line of settings ``p`` (only what differs from the defaults)."""
    base, args = defaults(kind), ["lstmimg", "train", str(data)]
    names = {"clip_len": "--clip-len", "frame_stride": "--frame-stride", "motion": "--motion", "hidden": "--hidden", "lr": "--lr", "weight_decay": "--weight-decay", "scan": "--scan"}
    order = ["model", "scan", "side", "backbone", "clip_len", "frame_stride", "motion", "hidden", "lr", "weight_decay", "augment"]
    for key, value in sorted(p.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        if key in base and value == base[key]:
            continue
        if key == "model":
            args += ["--model", value]
        elif key == "side":
            args += ["--img-size", f"{value}x{value}"]
        elif key == "augment":
            args.append("--augment" if value else "--no-augment")
        elif key == "backbone":
            args += ["--backbone", value, "--pretrained", "--freeze-backbone"]
        elif key in ("lr", "weight_decay"):
            args += [names[key], f"{value:.3g}"]
        else:
            args += [names[key], str(value)]
    return shlex.join(args)
