"""The likely label errors of ``lstmimg check --labels``: out-of-sample probabilities from K-fold
cross-fitting, then confident learning.

Each fold is held out in turn, a model is trained on the rest with ``fit`` (the plan ``train`` uses,
within its share of the time budget), and the held-out fold is scored by it. Confident learning
(Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021)
then flags the samples whose probability for another class passes that class's threshold (its mean
self-confidence) by more than for their own: the off-diagonal of the confident joint. Issues are ranked
by self-confidence (lowest first), and each class's noise rate estimated from the calibrated joint.
Nothing in the data folder is changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lstmimg.data.folders import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, detect_kind, split_folder
from lstmimg.errors import LstmimgError


def confident_learning(labels: np.ndarray, probs: np.ndarray) -> tuple[list[dict], list[float]]:
    """Likely label errors from out-of-sample ``probs`` ``(N, K)`` and given ``labels`` ``(N,)``: each
    issue ``{"index", "given", "suggested", "score"}`` (score: 1 - the probability of the given label),
    ranked most likely first; and each class's estimated noise rate (the share of its samples whose true
    label is another, from the calibrated confident joint)."""
    n, k = probs.shape
    thresholds = np.array([probs[labels == j, j].mean() if (labels == j).any() else 1.0 for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-9
    masked = np.where(above, probs, -1.0)
    confident = masked.max(1) >= 0
    true = masked.argmax(1)
    joint = np.zeros((k, k))
    np.add.at(joint, (labels[confident], true[confident]), 1)
    counts = np.bincount(labels, minlength=k).astype(float)
    calibrated = joint / np.maximum(joint.sum(1, keepdims=True), 1) * counts[:, None]  # rows sum to the class counts
    noise = [round(float(1 - calibrated[j, j] / counts[j]), 4) if counts[j] else 0.0 for j in range(k)]
    flagged = np.nonzero(confident & (true != labels))[0]
    self_confidence = probs[np.arange(n), labels]
    order = flagged[np.argsort(self_confidence[flagged], kind="stable")]
    return [{"index": int(i), "given": int(labels[i]), "suggested": int(true[i]), "score": round(float(1 - self_confidence[i]), 4)} for i in order], noise


DEFAULT_FOLDS = 4


def label_issues(data: str | Path, folds: int = DEFAULT_FOLDS, time_budget: float | None = None, val_split: float = 0.1, seed: int = 0,
                 device: str = "auto", callback: Callable[[str, dict], None] | None = None, model_config=None, train_config=None) -> dict:
    """Likely label errors among the training files of ``data``: out-of-sample probabilities by
    ``folds``-fold cross-fitting (each fold scored by a model trained with ``fit``'s plan on the others,
    the data's own val split guiding it; ``model_config`` and ``train_config`` as ``fit`` takes them,
    default the defaults), then ``confident_learning``. ``time_budget`` (seconds, for all
    of it) is shared out over the folds still to train; a fold that cannot be trained in what is left is
    not trained, and its files are not judged. Returns ``{"issues": [{"path", "given", "suggested",
    "score", "probs" (out-of-sample, per class)}], "noise_rate": {class: rate}, "folds", "folds_done", "judged", "seconds", "budget"}``."""
    import tempfile

    from lstmimg.config import DEFAULT_MODELS, ModelConfig, TrainConfig
    from lstmimg.engine.infer.collection import classify_files
    from lstmimg.engine.infer.loading import load_checkpoint
    from lstmimg.engine.train.training import fit

    if folds < 2:
        raise LstmimgError(f"--folds must be >= 2, got {folds}")
    started = time.perf_counter()
    kind = detect_kind(data)
    splits = split_folder(data, val_split, seed, VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS)
    train = splits["train"]
    labels = np.array(train.labels)
    if folds > len(labels):
        raise LstmimgError(f"--folds {folds}: more than the {len(labels)} training files of {data}; each fold holds at least one out")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=int)
    for c in np.unique(labels):  # stratified: each class spread evenly over the folds
        members = rng.permutation(np.nonzero(labels == c)[0])
        fold_of[members] = np.arange(len(members)) % folds
    probs = np.full((len(labels), len(train.classes)), np.nan, dtype=np.float32)
    done = 0
    with tempfile.TemporaryDirectory(prefix="lstmimg-check-") as work:
        for k in range(folds):
            held = np.nonzero(fold_of == k)[0]
            if len(held) == 0:  # more folds than the largest class has files: nothing to hold out, no model to train
                done += 1
                continue
            limit = None
            if time_budget is not None:
                left = time_budget - (time.perf_counter() - started)
                limit = left / (folds - k) * 0.8  # the rest of a fold's share: loading the data and scoring the held-out files
                if limit < 5:
                    break
            cfg = (train_config or TrainConfig()).replace(exclude=tuple(str(train.paths[i]) for i in held), time_limit=limit, seed=seed + k, val_split=val_split,
                                                          device=device, report=False, tensorboard=False)
            summary = fit(data, model_config or ModelConfig(name=DEFAULT_MODELS[kind]), cfg, out=Path(work) / f"fold{k}", callback=callback)
            ckpt = load_checkpoint(summary["best_checkpoint"])
            paths = [train.paths[i] for i in held]
            scored = {}
            for batch in classify_files(paths, ckpt, batch_size=64, device=device, workers=0):
                for result, row in zip(batch.results, batch.probs):
                    scored[result["path"]] = row.numpy()
            for i in held:
                if str(train.paths[i]) in scored:
                    probs[i] = scored[str(train.paths[i])]
            done += 1
    judged = ~np.isnan(probs).any(1)
    found, noise = confident_learning(labels[judged], probs[judged]) if judged.any() else ([], [0.0] * len(train.classes))
    index = np.nonzero(judged)[0]
    issues = [{"path": str(train.paths[index[f["index"]]]), "given": train.classes[f["given"]], "suggested": train.classes[f["suggested"]], "score": f["score"],
               "probs": [round(float(p), 4) for p in probs[index[f["index"]]]]} for f in found]
    return {"issues": issues, "noise_rate": dict(zip(train.classes, noise)), "folds": folds, "folds_done": done, "judged": int(judged.sum()),
            "train_files": len(labels), "seconds": round(time.perf_counter() - started, 1), "budget": time_budget}
