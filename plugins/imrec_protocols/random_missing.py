"""``protocols.random``: random missing rate over (sample, modality) pairs, exact count, ≥ 1 modality kept.

The RoHyDR/IMDer table protocol as its papers define it: MR = 1 − Σ_i Σ_k m_ik / (N·K), every sample keeps at
least one modality (so MR ≤ (K−1)/K). Unlike the reference code (per-batch quotas in loader order, see
``protocols.imder-batch``) the pattern is drawn per sample and the realised count is exact:
``round_half_up(MR·N·K)`` pairs are missing, for any N.

Selection rule (docs/protocols.md, "protocols.random"): every pair (i, k) has a stable uniform key u_ik
(:mod:`.keys`). Each sample's pair with the largest key is protected (never dropped); among the other N·(K−1)
pairs the M with the smallest keys are dropped. Equivalently: drop every pair with u_ik below a threshold, except
that a sample never loses the modality with its largest key, the threshold set so exactly M pairs go. Keys do
not depend on the rate, so the missing sets are nested across rates (what is missing at 0.3 is missing at 0.5).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from imrec.errors import ImrecError

from .keys import check_ids, check_names, pair_keys, ranks, salt
from .rates import decimal, format_rate, parse_rates

PROTOCOL = "protocols.random"
# Rates this far above (K−1)/K are float noise (0.6666666666666666 for 2/3), not a request for more missingness.
_TOLERANCE = Fraction(1, 10**12)


def max_rate(k: int) -> Fraction:
    """The largest MR with every sample keeping at least one of ``k`` modalities: (K−1)/K."""
    return Fraction(k - 1, k)


def check_rates(rates: Sequence[float], k: int) -> None:
    """Raise :class:`ImrecError` naming every rate above (K−1)/K for ``k`` modalities (never capped silently)."""
    bad = [r for r in rates if decimal(r) > max_rate(k) + _TOLERANCE]
    if bad:
        top = max_rate(k)
        raise ImrecError(
            f"protocol {PROTOCOL!r}: missing rate{'s' if len(bad) > 1 else ''} "
            f"{', '.join(repr(float(r)) for r in bad)} cannot be reached with K = {k} modalities: every sample "
            f"keeps at least one, so the maximum is (K-1)/K = {top.numerator}/{top.denominator} "
            f"= {float(top):.4f}. Use a rate <= {float(top)!r} (the reference's '0.7' for K = 3 is really "
            f"2/3 = 0.6666666666666666), or protocols.imder-batch to reproduce the reference's quotas."
        )


def missing_count(rate: float, n: int, k: int) -> int:
    """The exact number of missing pairs: ``round_half_up(MR·N·K)`` with MR read as the decimal written,
    at most N·(K−1)."""
    return min(math.floor(decimal(rate) * n * k + Fraction(1, 2)), n * (k - 1))


class RandomCondition:
    """One random missing rate: exactly ``round_half_up(rate·N·K)`` (sample, modality) pairs missing."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    @property
    def name(self) -> str:
        return f"random/mr={format_rate(self.rate)}"

    def describe(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "rate": self.rate, "unit": "sample-modality pair", "min_kept": 1}

    def masks(
        self, ids: Sequence[str], names: Sequence[str], seed: int, epoch: int | None = None
    ) -> np.ndarray:
        """``(N, K)`` bool availability (True = kept). ``epoch=None``: evaluation masks, a function of
        (rate, seed, the set of ids) only; an epoch: redrawn per (seed, epoch)."""
        ids, names = check_ids(ids), check_names(names)
        n, k = len(ids), len(names)
        check_rates([self.rate], k)
        prefix = salt(seed, epoch, "random")  # the rate is not hashed: masks are nested across rates
        keep = np.ones((n, k), dtype=bool)
        m = missing_count(self.rate, n, k)
        if m == 0:
            return keep
        keys = pair_keys(ids, names, prefix)
        name_rank = np.broadcast_to(ranks(names), (n, k))
        id_rank = ranks(ids)
        # Protect each sample's largest (key, name) pair; lexsort's last key is the primary one.
        protected = np.lexsort((name_rank, keys), axis=1)[:, -1]
        candidate = np.ones((n, k), dtype=bool)
        candidate[np.arange(n), protected] = False
        rows, cols = np.nonzero(candidate)
        # Smallest keys first; ties (probability ~2^-64) broken by id then modality name, never by position.
        order = np.lexsort((name_rank[rows, cols], id_rank[rows], keys[rows, cols]))
        drop = order[:m]
        keep[rows[drop], cols[drop]] = False
        return keep

    def __repr__(self) -> str:
        return f"RandomCondition(rate={self.rate!r})"


class RandomMissing:
    """Random missing rate MR over (sample, modality) pairs, exact count, every sample keeps ≥ 1 modality.

    ``rate``: one MR; ``rates``: a sweep (one condition each); give exactly one. MR ≤ (K−1)/K (2/3 for three
    modalities); a larger rate is an error, raised once the modalities are known. Evaluation masks depend only on
    (rate, seed, sample ids) and are nested across rates; training masks are redrawn every epoch.
    """

    def __init__(self, rate: float | None = None, rates: list[float] | None = None):
        self.rates = parse_rates(PROTOCOL, rate, rates)

    def conditions(self, names: Sequence[str]) -> list[RandomCondition]:
        check_rates(self.rates, len(check_names(names)))
        return [RandomCondition(r) for r in self.rates]
