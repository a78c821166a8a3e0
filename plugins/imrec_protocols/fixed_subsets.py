"""``protocols.fixed``: a fixed set of available modalities for every sample, or the sweep over all subsets.

The fixed-availability tables ({l}, {a}, {v}, {l,a}, {l,v}, {a,v}, {l,a,v}; Avg over the 7) evaluate each
non-empty subset in turn. No randomness: seed and epoch do not change the masks.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Literal, Sequence

import numpy as np

from imrec.errors import ImrecError

from .keys import check_ids, check_names

PROTOCOL = "protocols.fixed"


class FixedCondition:
    """Every sample has exactly the modalities ``available`` (named in the dataset's order)."""

    def __init__(self, available: Sequence[str]):
        self.available = tuple(available)

    @property
    def name(self) -> str:
        return "fixed/" + "+".join(self.available)

    def describe(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "available": list(self.available)}

    def masks(
        self, ids: Sequence[str], names: Sequence[str], seed: int, epoch: int | None = None
    ) -> np.ndarray:
        """``(N, K)`` bool: column k is True for every sample iff ``names[k]`` is available."""
        ids, names = check_ids(ids), check_names(names)
        _check_known(self.available, names)
        row = np.array([n in self.available for n in names], dtype=bool)
        return np.tile(row, (len(ids), 1))

    def __repr__(self) -> str:
        return f"FixedCondition(available={list(self.available)!r})"


def _check_known(subset: Sequence[str], names: Sequence[str]) -> None:
    unknown = [m for m in subset if m not in names]
    if unknown:
        raise ImrecError(
            f"protocol {PROTOCOL!r}: unknown modalit{'ies' if len(unknown) > 1 else 'y'} "
            f"{', '.join(map(repr, unknown))}; this dataset's modalities are: {', '.join(names)}"
        )


def _subset(value: Any, where: str, names: Sequence[str]) -> tuple[str, ...]:
    """A validated subset, as names in the dataset's order."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ImrecError(f"protocol {PROTOCOL!r}: {where} must be a list of modality names, got {value!r}")
    value = [str(v) for v in value]
    if not value:
        raise ImrecError(f"protocol {PROTOCOL!r}: {where} is empty; at least one modality must be available")
    if len(set(value)) != len(value):
        raise ImrecError(f"protocol {PROTOCOL!r}: {where} names a modality twice: {value}")
    _check_known(value, names)
    return tuple(n for n in names if n in value)


class FixedSubsets:
    """Fixed available modalities: one subset (``available``), given ones, or all 2^K − 1 (``subsets: all``).

    ``available``: the modality names every sample keeps; ``subsets``: ``all`` (every non-empty subset, by size
    then dataset order: 7 for three modalities) or a list of such lists. Give exactly one. Masks are the same
    for every seed and epoch.
    """

    def __init__(
        self,
        available: list[str] | None = None,
        subsets: Literal["all"] | list[list[str]] | None = None,
    ):
        if (available is None) == (subsets is None):
            raise ImrecError(
                f"protocol {PROTOCOL!r}: give exactly one of 'available' (a list of modality names) or 'subsets' "
                f"('all' or a list of lists); got available={available!r}, subsets={subsets!r}"
            )
        if isinstance(subsets, str) and subsets != "all":
            raise ImrecError(f"protocol {PROTOCOL!r}: 'subsets' must be 'all' or a list of lists, got {subsets!r}")
        if subsets is not None and not isinstance(subsets, str):
            if not isinstance(subsets, Sequence) or len(subsets) == 0:
                raise ImrecError(f"protocol {PROTOCOL!r}: 'subsets' must be 'all' or a non-empty list of lists")
        self.available, self.subsets = available, subsets

    def conditions(self, names: Sequence[str]) -> list[FixedCondition]:
        names = check_names(names)
        if self.available is not None:
            chosen = [_subset(self.available, "'available'", names)]
        elif self.subsets == "all":
            chosen = [c for size in range(1, len(names) + 1) for c in combinations(names, size)]
        else:
            chosen = [_subset(s, f"'subsets'[{i}]", names) for i, s in enumerate(self.subsets)]
            if len(set(chosen)) != len(chosen):
                dup = next(c for i, c in enumerate(chosen) if c in chosen[:i])
                raise ImrecError(f"protocol {PROTOCOL!r}: subset {list(dup)} is listed twice in 'subsets'")
        return [FixedCondition(c) for c in chosen]
