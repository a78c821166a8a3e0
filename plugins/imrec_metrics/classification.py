"""``metrics.classification``: accuracy, weighted F1 and macro F1 for integer class labels.

Predictions are logits/scores ``(N, C)`` (the class is their argmax; ties go to the lowest index, numpy's rule)
or class indices ``(N,)``. F1 follows scikit-learn (see :mod:`.scores`): the classes are the union of those in
truth and predictions; a class that is predicted but never true counts in the macro mean with F1 = 0.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np

from imrec.errors import ImrecError
from imrec.interfaces import MetricDisplay

from .scores import accuracy, check_pair, f1_macro, f1_weighted

NAME = "metrics.classification"


def _as_classes(values: np.ndarray, what: str) -> np.ndarray:
    """Integer class indices; integral floats (e.g. labels stored as float) are accepted."""
    if np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.bool_):
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.floating) and np.all(values == np.round(values)):
        return values.astype(np.int64)
    raise ImrecError(f"metric {NAME!r}: {what} must be integer class indices, got dtype {values.dtype}")


class ClassificationMetrics:
    """Classification: accuracy, weighted F1 and macro F1 (scikit-learn's definitions), as fractions."""

    task: ClassVar[str] = "classification"
    higher_is_better: ClassVar[Mapping[str, bool]] = {"acc": True, "f1_weighted": True, "f1_macro": True}
    # ×100 to 2 decimals, after the regression metrics in tables that hold both.
    display: ClassVar[Mapping[str, MetricDisplay]] = {
        "acc": MetricDisplay("Accuracy", scale=100, decimals=2, order=20, headline=True),
        "f1_macro": MetricDisplay("Macro F1", scale=100, decimals=2, order=21, headline=True),
        "f1_weighted": MetricDisplay("Weighted F1", scale=100, decimals=2, order=22, headline=True),
    }

    def __call__(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Scores of logits ``(N, C)`` or class predictions ``(N,)`` against integer ``labels`` (N,)."""
        predictions, labels = check_pair(NAME, predictions, labels)
        if predictions.ndim == 2:
            pred = np.argmax(predictions, axis=1)
        elif predictions.ndim == 1:
            pred = _as_classes(predictions, "1-D predictions")
        else:
            raise ImrecError(
                f"metric {NAME!r}: predictions must be (N, C) logits or (N,) classes, got shape {predictions.shape}"
            )
        truth = _as_classes(labels, "labels")
        return {
            "acc": accuracy(truth, pred),
            "f1_weighted": f1_weighted(truth, pred),
            "f1_macro": f1_macro(truth, pred),
        }
