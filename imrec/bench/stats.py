"""Statistics over tidy records: mean ± std over seeds, per-seed averages, paired significance, robustness.

Definitions (docs/benchmarks.md states them for readers):

* **Avg (random)** of a method and seed: the mean of its TEST values at the random missing rates MR > 0 (the
  field's "Avg" over MR 0.1 … 0.7 leaves the complete-data column out). **Avg (fixed)**: the mean over every
  fixed subset, the complete one included. Table cells are mean ± sample std (ddof = 1) over seeds of these
  per-seed values.
* **Paired tests** against the reference method use the seeds both methods have: a paired t-test
  (``scipy.stats.ttest_rel``) and, from 5 shared seeds on, the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, two-sided), both on the per-seed Avg.
* **AUC**: the area under metric-vs-MR over all random rates (0 included) by the trapezoid rule, divided by the
  MR range, i.e. the curve's mean height; per seed, then mean ± std.
* **Gap closed**: with seed means m, the mean over MR > 0 of
  (m(method, MR) − m(baseline, MR)) / (m(method, 0) − m(baseline, MR)): the share of the distance between the
  no-recovery baseline at that MR and the method's own complete-data score that the method recovers.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..runs import DDOF
from .records import condition_order, condition_rate

# Below this many shared seeds the Wilcoxon signed-rank test is not reported (with 5 its smallest two-sided p
# is 2/2^5 = 0.0625, so it still cannot reach 0.05; it is given for completeness).
MIN_WILCOXON = 5
ALPHA = 0.05

Values = dict[str, dict[str, dict[int, float]]]  # method → condition → seed → value


@dataclass(frozen=True)
class Stat:
    """Mean, sample std (ddof = 1; None below two values) and count of finite values."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True)
class PairedTest:
    """A method against the reference on their shared seeds: mean difference (method − reference), the paired
    t-test and, where n allows, the Wilcoxon signed-rank test (two-sided)."""

    n: int
    diff: float
    t: float | None
    p_t: float | None
    w: float | None
    p_w: float | None

    @property
    def significant(self) -> bool:
        return self.p_t is not None and self.p_t < ALPHA


def describe(values: Iterable[float | None]) -> Stat:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    mean = float(np.mean(finite)) if n else None
    std = float(np.std(finite, ddof=DDOF)) if n > DDOF else None
    return Stat(mean, std, n)


def values(records: Iterable[Mapping[str, Any]], metric: str) -> Values:
    """method → condition → seed → value for one metric (non-finite values left out)."""
    out: Values = {}
    for r in records:
        if r["metric"] != metric or r["value"] is None:
            continue
        out.setdefault(r["method"], {}).setdefault(r["condition"], {})[int(r["seed"])] = float(r["value"])
    return out


def random_conditions(conditions: Iterable[str]) -> list[tuple[str, float]]:
    """The random conditions among ``conditions`` as (name, rate), by rate."""
    found = {c: condition_rate(c) for c in set(conditions)}
    return sorted(((c, r) for c, r in found.items() if r is not None), key=lambda cr: cr[1])


def fixed_conditions(conditions: Iterable[str]) -> list[str]:
    return sorted({c for c in conditions if c.startswith("fixed/")}, key=condition_order)


def seed_average(per_condition: Mapping[str, Mapping[int, float]], conditions: Sequence[str]) -> dict[int, float]:
    """Per seed, the mean over ``conditions``; only seeds that have every one of them."""
    if not conditions:
        return {}
    seeds = set.intersection(*(set(per_condition.get(c, {})) for c in conditions))
    return {s: float(np.mean([per_condition[c][s] for c in conditions])) for s in sorted(seeds)}


def paired_test(method: Mapping[int, float], reference: Mapping[int, float]) -> PairedTest | None:
    """Paired tests on the seeds both have; None below two shared seeds."""
    from scipy import stats

    shared = sorted(set(method) & set(reference))
    if len(shared) < 2:
        return None
    a = np.array([method[s] for s in shared])
    b = np.array([reference[s] for s in shared])
    d = a - b
    t = p_t = w = p_w = None
    if np.ptp(d) > 0 or d[0] != 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # identical differences: t is ±inf, p is 0
            res = stats.ttest_rel(a, b)
        t, p_t = _finite(res.statistic), _finite(res.pvalue)
        if len(shared) >= MIN_WILCOXON and np.any(d != 0):
            res_w = stats.wilcoxon(a, b)
            w, p_w = _finite(res_w.statistic), _finite(res_w.pvalue)
    return PairedTest(len(shared), float(np.mean(d)), t, p_t, w, p_w)


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def auc(rates: Sequence[float], heights: Sequence[float]) -> float:
    """Area under ``heights`` over ``rates`` (trapezoid rule) divided by the rate range: the curve's mean height."""
    r = np.asarray(rates, dtype=float)
    h = np.asarray(heights, dtype=float)
    if len(r) < 2 or r[-1] == r[0]:
        raise ValueError("the area under the curve needs at least two distinct missing rates")
    area = float(np.sum((h[1:] + h[:-1]) * np.diff(r)) / 2.0)
    return area / float(r[-1] - r[0])


def seed_auc(per_condition: Mapping[str, Mapping[int, float]], conditions: Sequence[tuple[str, float]]) -> dict[int, float]:
    """Per seed (having every random condition), the normalised area under metric-vs-MR."""
    if len(conditions) < 2:
        return {}
    names = [c for c, _ in conditions]
    seeds = set.intersection(*(set(per_condition.get(c, {})) for c in names))
    rates = [r for _, r in conditions]
    return {s: auc(rates, [per_condition[c][s] for c in names]) for s in sorted(seeds)}


def gap_closed(
    method: Mapping[float, float], baseline: Mapping[float, float], higher_is_better: bool
) -> tuple[float | None, int]:
    """Mean over MR > 0 of (m(method, MR) − m(base, MR)) / (m(method, 0) − m(base, MR)), from curves
    rate → seed-mean value. A rate counts only where the denominator has the improving sign (the method's
    complete-data score is better than the baseline at that MR: > 0 if higher is better, < 0 if lower is);
    elsewhere the share is undefined. Returns (value or None, rates used). The formula is the same for both
    directions: numerator and denominator flip sign together."""
    if 0.0 not in method:
        return None, 0
    sign = 1.0 if higher_is_better else -1.0
    shares = []
    for rate in sorted(r for r in method if r > 0 and r in baseline):
        denom = method[0.0] - baseline[rate]
        if sign * denom <= 0:
            continue
        shares.append((method[rate] - baseline[rate]) / denom)
    return (float(np.mean(shares)) if shares else None), len(shares)
