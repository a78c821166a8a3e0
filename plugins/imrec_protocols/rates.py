"""Rate parameters shared by the rate-based protocols: ``rate`` (one) or ``rates`` (a sweep), and their names."""

from __future__ import annotations

from fractions import Fraction
from numbers import Real
from typing import Sequence

from imrec.errors import ImrecError


def parse_rates(protocol: str, rate: float | None, rates: Sequence[float] | None) -> tuple[float, ...]:
    """The rates a protocol sweeps: exactly one of ``rate``/``rates``; each a number in [0, 1]; no repeats."""
    if (rate is None) == (rates is None):
        raise ImrecError(
            f"protocol {protocol!r}: give exactly one of 'rate' (one condition) or 'rates' (a list, one condition "
            f"each); got rate={rate!r}, rates={rates!r}"
        )
    if rate is not None:
        values = [rate]
    else:
        if isinstance(rates, (str, bytes)) or not isinstance(rates, Sequence) or len(rates) == 0:
            raise ImrecError(f"protocol {protocol!r}: 'rates' must be a non-empty list of numbers, got {rates!r}")
        values = list(rates)
    out: list[float] = []
    for r in values:
        if isinstance(r, bool) or not isinstance(r, Real):
            raise ImrecError(f"protocol {protocol!r}: a rate must be a number in [0, 1], got {r!r}")
        r = float(r)
        if not 0.0 <= r <= 1.0:
            raise ImrecError(f"protocol {protocol!r}: a rate must be in [0, 1], got {r!r}")
        if r in out:
            raise ImrecError(f"protocol {protocol!r}: rate {r!r} is listed twice in 'rates'")
        out.append(r)
    return tuple(out)


def format_rate(rate: float) -> str:
    """A short decimal that reads back as exactly ``rate``: 0.3 → "0.30", 0.125 → "0.125", 2/3 → repr."""
    for digits in range(2, 7):
        text = f"{rate:.{digits}f}"
        if float(text) == rate:
            return text
    return repr(float(rate))


def decimal(rate: float) -> Fraction:
    """``rate`` as the exact decimal it is written as (its shortest round-trip repr): 0.3 → 3/10, not 0.2999…"""
    return Fraction(repr(float(rate)))
