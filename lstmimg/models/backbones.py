"""torchvision backbones for ``cnn_lstm`` and ``lrcn``: building them, pretrained weights through
torchvision's weights API, and what ``lstmimg backbones`` lists.

Pretrained weights are loaded with the weights' own ``get_state_dict``, so the file lands in (and is
read from) torch's hub cache, ``$TORCH_HOME/hub/checkpoints``, and is reused offline. A file not in the
cache is downloaded once, with a bounded wait; offline, the error names the file, its URL, the folder
to put it in, and ``--backbone-weights FILE`` as the other way. Inputs are then normalised as the
weights expect (their transforms' mean and std), not with the data set's statistics.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lstmimg.errors import LstmimgError

DOWNLOAD_TIMEOUT = 30.0  # seconds a download may wait on the network before it is given up
FAMILIES = ("resnet", "resnext", "wide_resnet", "mobilenet", "efficientnet", "regnet", "convnext", "vgg", "densenet")  # what feature_extractor cuts


def cache_dir() -> Path:
    """Where torchvision's weights files are kept: ``$TORCH_HOME/hub/checkpoints``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_for(name: str, weights: str | None = None):
    """The torchvision weights ``weights`` (default: the backbone's ``DEFAULT``) of backbone ``name``."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise LstmimgError(f"unknown torchvision backbone {name!r} (see `lstmimg backbones`)") from None
    key = weights or "DEFAULT"
    try:
        return enum[key]
    except KeyError:
        names = ", ".join(w.name for w in enum)
        raise LstmimgError(f"--weights {key!r} is not one of {name}'s: {names} (or DEFAULT)") from None


def is_cached(weights) -> bool:
    return (cache_dir() / Path(weights.url).name).is_file()


def pretrained_state(name: str, weights: str | None = None) -> dict:
    """The state dict of ``name``'s pretrained ``weights``: from the hub cache, else downloaded into it
    (waiting at most ``DOWNLOAD_TIMEOUT`` seconds on the network). ``LSTMIMG_OFFLINE=1`` never downloads."""
    w = weights_for(name, weights)
    file = cache_dir() / Path(w.url).name
    if not file.is_file() and os.environ.get("LSTMIMG_OFFLINE"):
        raise LstmimgError(_missing(name, w, file, "offline (LSTMIMG_OFFLINE is set)"))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # torch.hub's download sets none: restored below
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub prints its own "Downloading: ..." line
            return w.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError, ValueError) as err:
        if file.is_file():
            raise LstmimgError(f"{file}: not a readable {w} weights file ({type(err).__name__}); delete it to download it again") from None
        raise LstmimgError(_missing(name, w, file, f"cannot download it: {getattr(err, 'reason', err)}")) from None
    finally:
        socket.setdefaulttimeout(previous)


def _missing(name: str, w, file: Path, why: str) -> str:
    return (f"{name} {w.name} weights are not in the cache and {why}: download {w.url} into {file.parent}/ "
            f"(as {file.name}), or pass a local file with --backbone-weights FILE")


def normalization(name: str, weights: str | None = None) -> tuple[list[float], list[float]]:
    """The mean and std (0..1 scale, RGB) the weights were trained with."""
    transforms = weights_for(name, weights).transforms()
    return list(transforms.mean), list(transforms.std)


def weights_side(name: str, weights: str | None = None) -> int:
    """The image side the weights were trained at (their transforms' crop size, 224 for most)."""
    return int(weights_for(name, weights).transforms().crop_size[0])


def feature_extractor(net: nn.Module, name: str) -> nn.Module:
    """A torchvision classifier cut before its pooling and classifier, so it returns a feature map."""
    if hasattr(net, "features"):  # mobilenet, efficientnet, vgg, convnext, densenet, ...
        return net.features
    if hasattr(net, "layer4") or hasattr(net, "trunk_output"):  # resnet, resnext, wide_resnet, regnet
        return nn.Sequential(*list(net.children())[:-2])
    raise LstmimgError(f"backbone {name!r} is not supported: use a resnet, mobilenet, efficientnet, regnet, vgg or convnext")


def build_backbone(name: str, weights_file: str | None = None, pretrained: bool = False, weights: str | None = None) -> nn.Module:
    """Backbone ``name`` as a feature extractor: random weights, a local state-dict file, or the
    pretrained ``weights`` (torchvision's API and cache)."""
    import torchvision  # costs over a second: only when a backbone is asked for

    try:
        net = torchvision.models.get_model(name, weights=None)
    except ValueError:
        raise LstmimgError(f"unknown torchvision backbone {name!r} (see `lstmimg backbones`)") from None
    state, source = None, None
    if weights_file:
        from lstmimg.files import load_state_dict_file

        state, source = load_state_dict_file(weights_file), weights_file
    elif pretrained:
        state, source = pretrained_state(name, weights), f"{name} {weights or 'DEFAULT'} weights"
    if state is not None:
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise LstmimgError(f"{source}: weights do not fit backbone {name!r} ({first})") from None
    return feature_extractor(net, name)


@dataclass
class BackboneInfo:
    name: str
    weights: str
    params: int
    gflops: float
    top1: float
    cached: bool


def list_backbones() -> list[BackboneInfo]:
    """Every torchvision classification backbone lstmimg can use, with its default weights' figures."""
    import torchvision

    rows = []
    for name in torchvision.models.list_models(module=torchvision.models):
        if not name.startswith(FAMILIES):
            continue
        try:
            w = weights_for(name)
        except LstmimgError:
            continue
        metrics = w.meta.get("_metrics", {}).get("ImageNet-1K", {})
        rows.append(BackboneInfo(name, w.name, int(w.meta.get("num_params", 0)), float(w.meta.get("_ops", 0.0)), float(metrics.get("acc@1", 0.0)), is_cached(w)))
    return rows
