"""lstmimg: classify images and videos with LSTMs.

Public API (imported lazily, so ``import lstmimg`` and ``lstmimg --help`` stay fast)::

    from lstmimg import ModelConfig, TrainConfig, fit, evaluate, predict, classify_video, load_checkpoint
    summary = fit("my_images/", ModelConfig(name="region_lstm", scan="rows"), TrainConfig(epochs=10))
    results, errors = predict(["a.png", "b.png"], model=summary["run_dir"])
    report = evaluate("my_images/", model=summary["run_dir"])
"""

from lstmimg.config import ModelConfig, TrainConfig
from lstmimg.errors import LstmimgError

__version__ = "0.1.0"

_LAZY = {
    "build_model": "lstmimg.models.registry",
    "list_models": "lstmimg.models.registry",
    "register_model": "lstmimg.models.registry",
    "fit": "lstmimg.engine.train.training",
    "evaluate": "lstmimg.engine.review.evaluation",
    "predict": "lstmimg.engine.infer.collection",
    "classify_files": "lstmimg.engine.infer.collection",
    "classify_video": "lstmimg.engine.infer.timeline",
    "explain": "lstmimg.engine.review.explanations",
    "export_model": "lstmimg.engine.infer.export",
    "load_checkpoint": "lstmimg.engine.infer.loading",
    "slice_regions": "lstmimg.models.regions",
    "check": "lstmimg.engine.health.check",
    "label_issues": "lstmimg.engine.health.labels",
    "tune": "lstmimg.engine.tune.study",
    "ReportWriter": "lstmimg.engine.review.report",
}

__all__ = ["ModelConfig", "TrainConfig", "LstmimgError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstmimg' has no attribute {name!r}")
