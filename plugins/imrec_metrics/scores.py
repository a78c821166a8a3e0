"""Shared scoring primitives: input checks, accuracy and scikit-learn-compatible F1, in plain numpy.

F1 follows ``sklearn.metrics.f1_score`` exactly (checked against it when written): the classes are the union of
the labels seen in truth and predictions; per class F1 = 2·TP / (2·TP + FP + FN), 0 where that denominator is 0
(sklearn's ``zero_division=0``, its default value after the warning); ``weighted`` averages per-class F1 with
weights = true support (a class only predicted, never true, weighs 0); ``macro`` is the unweighted mean over the
same union (a class only predicted counts, with F1 = 0).
"""

from __future__ import annotations

import numpy as np

from imrec.errors import ImrecError


def check_pair(metric: str, predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as arrays with the same number of samples N ≥ 1; predictions' non-finite values are an error."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if labels.ndim != 1:
        labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1:
        raise ImrecError(f"metric {metric!r}: labels must be 1-D (N,), got shape {labels.shape}")
    if len(labels) == 0:
        raise ImrecError(f"metric {metric!r}: cannot score zero samples")
    if predictions.shape[:1] != labels.shape:
        raise ImrecError(
            f"metric {metric!r}: predictions have shape {predictions.shape} but labels {labels.shape}; "
            f"both need the same number of samples"
        )
    if np.issubdtype(predictions.dtype, np.floating) and not np.isfinite(predictions).all():
        bad = int((~np.isfinite(predictions)).sum())
        raise ImrecError(f"metric {metric!r}: {bad} prediction value(s) are NaN or infinite; the model diverged")
    if np.issubdtype(labels.dtype, np.floating) and not np.isfinite(labels).all():
        raise ImrecError(f"metric {metric!r}: labels contain NaN or infinite values")
    return predictions, labels


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of equal entries."""
    return float(np.mean(y_true == y_pred))


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(classes, f1, support)`` over the union of labels in truth and predictions (sorted)."""
    classes = np.union1d(np.unique(y_true), np.unique(y_pred))
    f1 = np.zeros(len(classes), dtype=np.float64)
    support = np.zeros(len(classes), dtype=np.int64)
    for c, cls in enumerate(classes):
        is_true, is_pred = y_true == cls, y_pred == cls
        tp = int(np.sum(is_true & is_pred))
        denom = 2 * tp + int(np.sum(is_pred & ~is_true)) + int(np.sum(is_true & ~is_pred))
        f1[c] = 2 * tp / denom if denom else 0.0
        support[c] = int(is_true.sum())
    return classes, f1, support


def f1_weighted(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn's ``f1_score(y_true, y_pred, average="weighted")``."""
    _, f1, support = per_class_f1(y_true, y_pred)
    return float(np.sum(f1 * support) / np.sum(support))


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn's ``f1_score(y_true, y_pred, average="macro")``."""
    _, f1, _ = per_class_f1(y_true, y_pred)
    return float(np.mean(f1))
