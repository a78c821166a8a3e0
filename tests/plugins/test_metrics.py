"""Metrics against hand-computed values: MMSA's regression metrics and scikit-learn-style classification F1."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from imrec.errors import ImrecError
from imrec_metrics import ClassificationMetrics, RegressionMetrics
from imrec_metrics.scores import f1_macro, f1_weighted

# A hand-worked example (see the comments in test_regression_by_hand).
TRUTH = np.array([2.5, -0.5, 0.0, 1.0, -3.0, 0.5], dtype=np.float32)
PRED = np.array([1.5, 0.5, -0.2, 0.0, -2.5, 0.4], dtype=np.float32)


def test_metrics_are_registered():
    from imrec.plugins import get_registry

    reg = get_registry()
    assert reg.resolve("metric", "metrics.regression").factory is RegressionMetrics
    assert reg.resolve("metric", "metrics.classification").factory is ClassificationMetrics


def test_regression_by_hand():
    m = RegressionMetrics()(PRED, TRUTH)
    assert set(m) == set(RegressionMetrics.higher_is_better) and RegressionMetrics.task == "regression"
    # Has0: truth >= 0 = TFTTFT, pred >= 0 = TTFTFT → 4/6 equal.
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    # F1(True): tp 3, fp 1, fn 1 → 6/8; F1(False): tp 1, fp 1, fn 1 → 2/4; weights = true support 4 and 2.
    assert m["f1_has0"] == pytest.approx((0.75 * 4 + 0.5 * 2) / 6)
    # Non0 drops the truth-0 sample: truth > 0 = TFTFT, pred > 0 = TTFFT (pred 0.0 is negative) → 3/5.
    assert m["acc2_non0"] == pytest.approx(3 / 5)
    # F1(True): tp 2, fp 1, fn 1 → 4/6 (support 3); F1(False): tp 1, fp 1, fn 1 → 2/4 (support 2).
    assert m["f1_non0"] == pytest.approx((4 / 6 * 3 + 0.5 * 2) / 5)
    # Acc-7 (half to even): truth → 2, -0, 0, 1, -3, 0; pred → 2, 0, -0, 0, -2, 0 → 4/6.
    assert m["acc7"] == pytest.approx(4 / 6)
    # Acc-5 clips to [-2, 2]: -3 → -2 and -2.5 → -2 now agree → 5/6. Acc-3 clips to [-1, 1] → 5/6.
    assert m["acc5"] == pytest.approx(5 / 6)
    assert m["acc3"] == pytest.approx(5 / 6)
    assert m["mae"] == pytest.approx((1 + 1 + 0.2 + 1 + 0.5 + 0.1) / 6, abs=1e-7)
    assert m["corr"] == pytest.approx(np.corrcoef(PRED.astype(float), TRUTH.astype(float))[0, 1])
    assert all(isinstance(v, float) for v in m.values())


def test_rounding_is_half_to_even_like_mmsa():
    halves = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])
    assert RegressionMetrics()(halves, np.array([0.0, 2.0, 2.0, 0.0, -2.0, -2.0]))["acc7"] == 1.0
    # Half away from zero would give 1, 2, 3, -1, -2, -3: these truths match none of the predictions.
    assert RegressionMetrics()(halves, np.array([1.0, 1.0, 3.0, -1.0, -1.0, -3.0]))["acc7"] == 0.0


def test_clipping_before_rounding_and_unclipped_mae():
    m = RegressionMetrics()(np.array([5.0, -7.0]), np.array([3.0, -3.0]))
    assert m["acc7"] == 1.0 and m["acc5"] == 1.0 and m["acc3"] == 1.0
    assert m["mae"] == pytest.approx((2 + 4) / 2)


def test_zero_truth_counts_as_positive_in_has0_and_is_dropped_in_non0():
    m = RegressionMetrics()(np.array([0.0, -1.0, 2.0]), np.array([0.0, 0.0, 1.0]))
    # Has0: truth T,T,T vs pred T,F,T → 2/3. Non0: only the last sample (truth 1, pred 2) → 1.
    assert m["acc2_has0"] == pytest.approx(2 / 3)
    assert m["acc2_non0"] == 1.0 and m["f1_non0"] == 1.0


def test_all_zero_truth_makes_non0_nan():
    m = RegressionMetrics()(np.array([0.3, -0.2, 1.0]), np.zeros(3))
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["f1_non0"])
    assert m["acc2_has0"] == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "pred, truth",
    [(np.full(5, 0.7), np.arange(5.0)), (np.arange(5.0), np.full(5, -1.0)), (np.array([1.0]), np.array([2.0])),
     (np.full(3, 0.1), np.array([0.1, 0.2, 0.3]))],
)
def test_corr_of_constant_input_is_zero_without_warning(pred, truth):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert RegressionMetrics()(pred, truth)["corr"] == 0.0


def test_corr_perfect_and_anti():
    x = np.array([-2.0, 0.0, 1.0, 3.0])
    assert RegressionMetrics()(2 * x + 1, x)["corr"] == pytest.approx(1.0)
    assert RegressionMetrics()(-x, x)["corr"] == pytest.approx(-1.0)


def test_regression_accepts_column_predictions():
    m1 = RegressionMetrics()(PRED[:, None], TRUTH)
    m2 = RegressionMetrics()(PRED, TRUTH)
    assert m1 == m2


@pytest.mark.parametrize(
    "pred, truth",
    [(np.zeros(3), np.zeros(4)), (np.zeros(0), np.zeros(0)), (np.array([np.nan, 1.0]), np.zeros(2)),
     (np.zeros((3, 2)), np.zeros(3)), (np.zeros(2), np.array([np.inf, 0.0]))],
)
def test_regression_bad_input(pred, truth):
    with pytest.raises(ImrecError):
        RegressionMetrics()(pred, truth)


def test_weighted_f1_zero_division_is_zero():
    # Always predicting True: F1(True) = 4/6, F1(False) = 0 (tp 0, fn 2); weights 2 and 2.
    truth = np.array([True, True, False, False])
    assert f1_weighted(truth, np.ones(4, dtype=bool)) == pytest.approx((4 / 6 * 2 + 0 * 2) / 4)
    assert f1_weighted(truth, truth) == 1.0
    assert f1_weighted(np.ones(3, bool), np.ones(3, bool)) == 1.0  # one class present in both


def test_classification_by_hand():
    labels = np.array([0, 1, 2, 2, 2, 0])
    preds = np.array([0, 2, 2, 2, 1, 1])
    logits = np.eye(3)[preds] * 2.0 - 1.0
    m = ClassificationMetrics()(logits, labels)
    assert set(m) == set(ClassificationMetrics.higher_is_better) and ClassificationMetrics.task == "classification"
    assert m["acc"] == pytest.approx(3 / 6)
    # class 0: tp 1, fp 0, fn 1 → 2/3 (support 2); class 1: tp 0 → 0 (support 1);
    # class 2: tp 2, fp 1, fn 1 → 2/3 (support 3)
    assert m["f1_weighted"] == pytest.approx((2 / 3 * 2 + 0 + 2 / 3 * 3) / 6)
    assert m["f1_macro"] == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert ClassificationMetrics()(preds, labels) == m  # class indices give the same


def test_classification_predicted_only_class_counts_in_macro_not_weighted():
    labels, preds = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    # class 0: 2/3, class 1: 1, class 2 (never true): 0.
    assert f1_macro(labels, preds) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert f1_weighted(labels, preds) == pytest.approx((2 / 3 * 2 + 1 * 2) / 4)


def test_classification_argmax_ties_go_to_lowest_index_and_float_labels():
    m = ClassificationMetrics()(np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]]), np.array([0.0, 1.0]))
    assert m["acc"] == 1.0


@pytest.mark.parametrize(
    "pred, labels",
    [(np.zeros((3, 2)), np.array([0.5, 1.0, 0.0])), (np.array([0.5, 1.0]), np.array([0, 1])),
     (np.zeros((2, 2, 2)), np.array([0, 1])), (np.zeros((3, 2)), np.array([0, 1]))],
)
def test_classification_bad_input(pred, labels):
    with pytest.raises(ImrecError):
        ClassificationMetrics()(pred, labels)
