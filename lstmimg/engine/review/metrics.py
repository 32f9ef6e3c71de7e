"""The figures of labelled predictions: accuracy, per-class precision / recall / F1, the confusion matrix,
and how far confidence can be trusted (expected calibration error and the reliability bins)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

BINS = 10  # reliability diagram bins


def classification_report(targets: torch.Tensor, preds: torch.Tensor, classes: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy (the mean of the classes' recall), macro-F1 (the mean of their F1),
    per-class precision / recall / F1 / support and the confusion matrix (rows: truth); the means are
    over the classes that have samples."""
    k = len(classes)
    cm = torch.bincount(targets * k + preds, minlength=k * k).view(k, k)
    tp = cm.diag().float()
    precision = tp / cm.sum(0).clamp_min(1)
    recall = tp / cm.sum(1).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    per_class = [
        {"class": c, "precision": round(precision[i].item(), 4), "recall": round(recall[i].item(), 4), "f1": round(f1[i].item(), 4), "support": int(cm[i].sum())}
        for i, c in enumerate(classes)
    ]
    accuracy = (tp.sum() / max(1, len(targets))).item()
    present = cm.sum(1) > 0  # classes with samples: an absent class has no recall to average
    balanced = recall[present].mean().item() if present.any() else 0.0
    return {"accuracy": round(accuracy, 4), "balanced_accuracy": round(balanced, 4), "macro_f1": round(f1[present].mean().item() if present.any() else 0.0, 4),
            "samples": len(targets), "classes": list(classes), "per_class": per_class, "confusion_matrix": cm.tolist()}


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = BINS) -> tuple[float, list[dict]]:
    """ECE over ``bins`` equal-width confidence bins, and each bin's ``{lo, hi, count, confidence, accuracy}``."""
    edges = np.linspace(0, 1, bins + 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = (conf > edges[b]) & (conf <= edges[b + 1]) if b else (conf >= 0) & (conf <= edges[1])
        n = int(inside.sum())
        row = {"lo": round(float(edges[b]), 2), "hi": round(float(edges[b + 1]), 2), "count": n, "confidence": None, "accuracy": None}
        if n:
            row["confidence"], row["accuracy"] = round(float(conf[inside].mean()), 4), round(float(correct[inside].mean()), 4)
            ece += n / len(conf) * abs(row["confidence"] - row["accuracy"])
        rows.append(row)
    return round(ece, 4), rows


def metrics(labels: Sequence[int], probs: torch.Tensor, classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / support, the confusion matrix (rows:
    truth), ECE and the reliability bins of labelled predictions ``probs`` ``(N, K)``."""
    targets = torch.as_tensor(list(labels), dtype=torch.long)
    report = classification_report(targets, probs.argmax(1), classes)
    conf, pred = probs.max(1)
    ece, bins = expected_calibration_error(conf.numpy(), (pred == targets).numpy())
    return {**report, "ece": ece, "reliability": bins}
