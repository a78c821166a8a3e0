"""``protocols.imder-batch``: the IMDer/RoHyDR reference's per-batch quota missingness, reproduced on purpose.

What the reference trainer does (``trains/mainNets/ROHYDR.py``, ``do_train``/``do_test``), for K = 3: the split
is cut into L = ceil(N / B) consecutive batches in loader order; with ``denom = np.round(L / 10) * 10`` and the
tables below indexed by ``int(MR·10 − 1)``, batch j (in order) misses

* two modalities  while ``miss_two / denom < TWO[idx]`` (then ``miss_two += 1``),
* else one         while ``miss_one / denom < ONE[idx]`` (then ``miss_one += 1``),
* else none.

All samples of a batch share one pattern: the available modality (missing two) or the missing one (missing one)
is drawn uniformly per batch. We reproduce the batch plan exactly (same float expressions) and draw the per-batch
modality from a generator seeded by (seed, epoch) instead of Python's global RNG. The realised per-pair missing
rate is :func:`effective_rate`, which differs from the nominal MR (docs/protocols.md has the table).
Deliberate differences, each documented: MR = 0.0 means complete data unless ``reference_zero`` (the reference
indexes the tables at −1 and drops two modalities in every batch); 5 or fewer batches is an error (the
reference divides 0 by 0 and then never drops anything).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from imrec.errors import ImrecError

from .keys import check_ids, check_names, salt, stable_key
from .rates import format_rate, parse_rates

PROTOCOL = "protocols.imder-batch"

# Fraction of batches missing two / one modality for MR = 0.1 … 0.7 (the reference's ``miss_2`` / ``miss_1``).
TWO = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
ONE = (0.1, 0.2, 0.3, 0.2, 0.1, 0.0, 0.0)
# The only rates the reference's tables define. Index = int(MR·10 − 1) as the reference computes it; for these
# literals that expression gives 0 … 6 exactly (0.3·10 − 1 = 2.0000000000000004 truncates to 2).
TABLE_RATES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def _table_index(rate: float, reference_zero: bool) -> int | None:
    """Index into TWO/ONE, or None for complete data (MR = 0.0 without ``reference_zero``)."""
    if rate == 0.0:
        return -1 if reference_zero else None  # the reference's int(0.0·10 − 1) = −1
    return int(rate * 10 - 1)


def batch_plan(rate: float, n_batches: int, reference_zero: bool = False) -> np.ndarray:
    """``(L,)`` int: how many modalities batch j misses (2, 1 or 0), by the reference's quota loop."""
    idx = _table_index(rate, reference_zero)
    plan = np.zeros(n_batches, dtype=np.int64)
    if idx is None:
        return plan
    denom = np.round(n_batches / 10) * 10  # numpy's round: half to even, as in the reference
    if denom == 0:
        raise ImrecError(
            f"protocol {PROTOCOL!r}: the split has {n_batches} batch(es); the reference's quota divides by "
            f"np.round(L/10)*10 = 0 for 5 or fewer batches (numpy rounds 0.5 to 0) and "
            f"then never drops a modality. Use a smaller 'batch_size' (at least 6 batches per split) or "
            f"protocols.random"
        )
    miss_two = miss_one = 0
    for j in range(n_batches):
        if miss_two / denom < TWO[idx]:
            plan[j], miss_two = 2, miss_two + 1
        elif miss_one / denom < ONE[idx]:
            plan[j], miss_one = 1, miss_one + 1
    return plan


def batch_sizes(n: int, batch_size: int) -> np.ndarray:
    """``(L,)`` sizes of the consecutive batches of ``n`` samples (the last one may be short; no drop_last)."""
    n_batches = math.ceil(n / batch_size)
    sizes = np.full(n_batches, batch_size, dtype=np.int64)
    if n_batches:
        sizes[-1] = n - batch_size * (n_batches - 1)
    return sizes


def effective_rate(rate: float, n: int, batch_size: int = 32, reference_zero: bool = False) -> float:
    """The per-pair missing rate imder-batch really produces on a split of ``n`` samples (K = 3):
    Σ_j missing_j · size_j / (3·n)."""
    sizes = batch_sizes(n, batch_size)
    plan = batch_plan(rate, len(sizes), reference_zero)
    return float((plan * sizes).sum() / (3 * n))


def asymptotic_rate(rate: float, reference_zero: bool = False) -> float:
    """The effective rate when L is a multiple of 10 and every batch is full: (2·TWO + min(ONE, 1 − TWO)) / 3."""
    idx = _table_index(rate, reference_zero)
    if idx is None:
        return 0.0
    return (2 * TWO[idx] + min(ONE[idx], 1 - TWO[idx])) / 3


class ImderBatchCondition:
    """One nominal MR under the reference's per-batch quotas (batches of ``batch_size`` in the given id order)."""

    def __init__(self, rate: float, batch_size: int, reference_zero: bool):
        self.rate, self.batch_size, self.reference_zero = float(rate), int(batch_size), bool(reference_zero)

    @property
    def name(self) -> str:
        zero = "/reference-zero" if self.reference_zero and self.rate == 0.0 else ""
        return f"imder-batch/mr={format_rate(self.rate)}/b={self.batch_size}{zero}"

    def describe(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "rate": self.rate,
            "batch_size": self.batch_size,
            "reference_zero": self.reference_zero,
            "unit": "batch (quota, in the order of the ids given)",
        }

    def masks(
        self, ids: Sequence[str], names: Sequence[str], seed: int, epoch: int | None = None
    ) -> np.ndarray:
        """``(N, 3)`` bool availability; batches are consecutive runs of ``batch_size`` ids in the order given.

        Unlike the other protocols this depends on the order of ``ids`` (the reference's semantics); with
        ``epoch=None`` it is a function of (rate, batch_size, seed, the ids in order)."""
        ids, names = check_ids(ids), check_names(names)
        _check_k(len(names), names)
        n, k = len(ids), len(names)
        keep = np.ones((n, k), dtype=bool)
        sizes = batch_sizes(n, self.batch_size)
        plan = batch_plan(self.rate, len(sizes), self.reference_zero)
        rng = np.random.default_rng(stable_key(f"{salt(seed, epoch, 'imder-batch')}|{format_rate(self.rate)}"))
        chosen = rng.integers(k, size=len(sizes))  # per batch: the one kept (missing two) or the one dropped
        start = 0
        for size, missing, c in zip(sizes, plan, chosen):
            rows = slice(start, start + size)
            if missing == 2:
                keep[rows, :] = False
                keep[rows, c] = True
            elif missing == 1:
                keep[rows, c] = False
            start += size
        return keep

    def effective_rate(self, n: int) -> float:
        """The per-pair missing rate this condition realises on ``n`` samples."""
        return effective_rate(self.rate, n, self.batch_size, self.reference_zero)

    def __repr__(self) -> str:
        return (
            f"ImderBatchCondition(rate={self.rate!r}, batch_size={self.batch_size}, "
            f"reference_zero={self.reference_zero})"
        )


def _check_k(k: int, names: Sequence[str]) -> None:
    if k != 3:
        raise ImrecError(
            f"protocol {PROTOCOL!r} reproduces the reference's quota tables, defined for exactly 3 modalities; "
            f"this dataset has {k} ({', '.join(names)}). Use protocols.random for any number of modalities"
        )


class ImderBatch:
    """The IMDer/RoHyDR reference's per-batch quota missingness (K = 3), reproduced for comparison.

    ``rate``/``rates``: nominal MR in {0.0, 0.1, …, 0.7} (the reference's tables); ``batch_size``: the batches
    the quotas count (consecutive, in the split's order). The realised per-pair rate differs from the nominal
    one (docs/protocols.md). ``reference_zero``: MR = 0.0 drops two modalities everywhere, as the reference does.
    """

    def __init__(
        self,
        rate: float | None = None,
        rates: list[float] | None = None,
        batch_size: int = 32,
        reference_zero: bool = False,
    ):
        self.rates = parse_rates(PROTOCOL, rate, rates)
        bad = [r for r in self.rates if r != 0.0 and r not in TABLE_RATES]
        if bad:
            raise ImrecError(
                f"protocol {PROTOCOL!r}: rate(s) {', '.join(map(repr, bad))} are not in the reference's tables; "
                f"allowed: 0.0, {', '.join(map(str, TABLE_RATES))} (use protocols.random for other rates)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ImrecError(f"protocol {PROTOCOL!r}: 'batch_size' must be a positive integer, got {batch_size!r}")
        if not isinstance(reference_zero, bool):
            raise ImrecError(f"protocol {PROTOCOL!r}: 'reference_zero' must be true or false, got {reference_zero!r}")
        self.batch_size, self.reference_zero = batch_size, reference_zero

    def conditions(self, names: Sequence[str]) -> list[ImderBatchCondition]:
        names = check_names(names)
        _check_k(len(names), names)
        return [ImderBatchCondition(r, self.batch_size, self.reference_zero) for r in self.rates]
