"""Models, chosen by name from one registry.

Image models take ``(B, C, H, W)``, video models ``(B, T, C, H, W)`` (float, normalised); both return
logits ``(B, num_classes)``. Every built-in model is registered at the bottom of this module, by name,
from the modules that define them (``image``, ``video``), so ``list_models()`` sees them all: nothing
registers itself as a side effect of being imported. ``register_model`` adds a model of your own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from lstmimg.config import ModelConfig
from lstmimg.errors import LstmimgError
from lstmimg.models.image import CNNLSTM, RegionLSTM
from lstmimg.models.video import LRCN


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "image" (input B,C,H,W) or "video" (input B,T,C,H,W)
    description: str
    builder: Callable[[ModelConfig], nn.Module]
    fixed: dict = field(default_factory=dict)  # settings this model always has, whatever the config says

    def complete(self, cfg: ModelConfig) -> ModelConfig:
        """``cfg`` with this model's fixed settings, so what a run records is what was built."""
        return cfg.replace(**self.fixed) if self.fixed else cfg


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, kind: str, description: str, fixed: dict | None = None):
    """Decorator that adds a builder to ``MODELS``; a name can be registered once only. ``fixed``:
    config settings the model always has (see ``ModelSpec.complete``)."""

    def add(builder: Callable[[ModelConfig], nn.Module]):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        MODELS[name] = ModelSpec(name, kind, description, builder, dict(fixed or {}))
        return builder

    return add


def list_models() -> list[ModelSpec]:
    """All registered models, sorted by name."""
    return [MODELS[name] for name in sorted(MODELS)]


def get_model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise LstmimgError(f"unknown model {name!r}; registered: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the model ``cfg.name`` from its config (random weights unless the config names a file)."""
    spec = get_model_spec(cfg.name)
    return spec.builder(spec.complete(cfg))


register_model("region_lstm", "image", "image sliced into rows, columns or patches (raster/snake); LSTM over the regions")(RegionLSTM)
register_model("cnn_lstm", "image", "CNN feature map read as a sequence (rows or positions) by an LSTM; optional torchvision backbone")(CNNLSTM)
register_model("lrcn", "video", "video: a CNN encodes every frame (batched over B*T), an LSTM reads the frames in order (LRCN)", fixed={"bidirectional": False})(LRCN)
