"""``metrics.regression``: MMSA's sentiment-regression metrics (MOSI/MOSEI), same definitions, as fractions.

MMSA (``utils/metricsTop.py``, ``__eval_mosei_regression``), which IMDer and RoHyDR inherit:

* Has0 Acc-2 / F1: (pred ≥ 0) vs (truth ≥ 0) on all samples; F1 weighted.
* Non0 Acc-2 / F1: only samples with truth ≠ 0; (pred > 0) vs (truth > 0); F1 weighted.
* Acc-3/5/7: ``np.round(np.clip(x, -c, c))`` equal for pred and truth, c = 1, 2, 3. ``np.round`` rounds half
  to even (0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → −0); MOSI labels are means of annotator scores: halves occur.
* MAE: mean |pred − truth|, unclipped. Corr: Pearson r.

Our choices (docs/metrics.md): values are fractions (MMSA prints ×100 and rounds to 4 decimals; we do neither);
computed in float64; Corr is 0.0 when predictions or labels are constant (MMSA's ``np.corrcoef`` gives NaN and a
warning); Non0 metrics are NaN when no truth is non-zero (MMSA would crash on the empty index array).
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np

from imrec.errors import ImrecError
from imrec.interfaces import MetricDisplay

from .scores import accuracy, check_pair, f1_weighted

NAME = "metrics.regression"


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two float vectors; 0.0 when either is constant (no linear association is measurable)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    r = float(np.sum(dx * dy) / np.sqrt(np.sum(dx * dx) * np.sum(dy * dy)))
    return min(1.0, max(-1.0, r))  # np.corrcoef clips the same way against rounding


def multiclass_accuracy(pred: np.ndarray, truth: np.ndarray, clip: float) -> float:
    """MMSA's Acc-(2·clip+1): round-half-to-even of the clipped values must match."""
    return accuracy(np.round(np.clip(truth, -clip, clip)), np.round(np.clip(pred, -clip, clip)))


class RegressionMetrics:
    """Sentiment regression (MMSA): Acc-2 and F1 (Has0, Non0), Acc-3/5/7, MAE, Pearson Corr; as fractions."""

    task: ClassVar[str] = "regression"
    higher_is_better: ClassVar[Mapping[str, bool]] = {
        "acc2_has0": True,
        "f1_has0": True,
        "acc2_non0": True,
        "f1_non0": True,
        "acc3": True,
        "acc5": True,
        "acc7": True,
        "mae": False,
        "corr": True,
    }
    # As the field's tables show them: accuracies and F1 ×100 to 2 decimals, Non0 first (RoHyDR's and IMDer's
    # headline numbers); imrec run's table shows the headline ones.
    display: ClassVar[Mapping[str, MetricDisplay]] = {
        "acc2_non0": MetricDisplay("Acc-2 (Non0)", scale=100, decimals=2, order=10, headline=True),
        "f1_non0": MetricDisplay("F1 (Non0)", scale=100, decimals=2, order=11, headline=True),
        "acc2_has0": MetricDisplay("Acc-2 (Has0)", scale=100, decimals=2, order=12, headline=True),
        "f1_has0": MetricDisplay("F1 (Has0)", scale=100, decimals=2, order=13),
        "acc7": MetricDisplay("Acc-7", scale=100, decimals=2, order=14, headline=True),
        "acc5": MetricDisplay("Acc-5", scale=100, decimals=2, order=15),
        "acc3": MetricDisplay("Acc-3", scale=100, decimals=2, order=16),
        "mae": MetricDisplay("MAE", decimals=3, order=17, headline=True),
        "corr": MetricDisplay("Corr", decimals=3, order=18, headline=True),
    }

    def __call__(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Scores of ``predictions`` (N,) or (N, 1) against float ``labels`` (N,)."""
        predictions, labels = check_pair(NAME, predictions, labels)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.ndim != 1:
            raise ImrecError(f"metric {NAME!r}: predictions must be (N,) or (N, 1), got shape {predictions.shape}")
        pred, truth = predictions.astype(np.float64), labels.astype(np.float64)

        has0_pred, has0_truth = pred >= 0, truth >= 0
        non0 = truth != 0
        if non0.any():
            non0_pred, non0_truth = pred[non0] > 0, truth[non0] > 0
            acc2_non0, f1_non0 = accuracy(non0_truth, non0_pred), f1_weighted(non0_truth, non0_pred)
        else:
            acc2_non0 = f1_non0 = float("nan")
        return {
            "acc2_has0": accuracy(has0_truth, has0_pred),
            "f1_has0": f1_weighted(has0_truth, has0_pred),
            "acc2_non0": acc2_non0,
            "f1_non0": f1_non0,
            "acc3": multiclass_accuracy(pred, truth, 1.0),
            "acc5": multiclass_accuracy(pred, truth, 2.0),
            "acc7": multiclass_accuracy(pred, truth, 3.0),
            "mae": float(np.mean(np.abs(pred - truth))),
            "corr": pearson(pred, truth),
        }
