"""``protocols.frame``: frame-level (intra-modal) missingness, as in TFR-Net and LNLN.

Every modality is available, but each time step of each sequence modality is dropped independently with
probability r, per (sample, modality, step), from stable keys (:mod:`.keys`): step t of modality k of sample i is
dropped iff u_ikt < r. Keys do not depend on r, so dropped steps are nested across rates. Vector modalities
(one step) are never dropped. What "dropped" means (zeroed features, [UNK] text tokens) is the caller's concern.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from imrec.errors import ImrecError

from .keys import check_ids, check_names, pair_keys, salt, step_keys, to_unit
from .rates import format_rate, parse_rates

PROTOCOL = "protocols.frame"


class FrameCondition:
    """Each time step of each sequence modality dropped with probability ``rate``; no modality missing."""

    def __init__(self, rate: float):
        self.rate = float(rate)

    @property
    def name(self) -> str:
        return f"frame/r={format_rate(self.rate)}"

    def describe(self) -> dict[str, Any]:
        return {"protocol": PROTOCOL, "rate": self.rate, "unit": "sample-modality-step (Bernoulli)"}

    def masks(
        self, ids: Sequence[str], names: Sequence[str], seed: int, epoch: int | None = None
    ) -> np.ndarray:
        """``(N, K)`` all True: frame-level missingness never removes a whole modality."""
        ids, names = check_ids(ids), check_names(names)
        return np.ones((len(ids), len(names)), dtype=bool)

    def frame_masks(
        self,
        ids: Sequence[str],
        names: Sequence[str],
        steps: Mapping[str, int],
        seed: int,
        epoch: int | None = None,
    ) -> dict[str, np.ndarray]:
        """``{name: (N, T) bool}`` for every modality in ``steps`` (True = step kept).

        ``steps[name]`` is the padded length T of that modality; T = 1 (vector modality) is never dropped.
        With ``epoch=None`` a function of (rate, seed, ids) only; permuting ids permutes rows identically.
        """
        ids, names = check_ids(ids), check_names(names)
        unknown = [m for m in steps if m not in names]
        if unknown:
            raise ImrecError(
                f"protocol {PROTOCOL!r}: frame masks asked for unknown modalit{'ies' if len(unknown) > 1 else 'y'} "
                f"{', '.join(map(repr, unknown))}; modalities: {', '.join(names)}"
            )
        keys = pair_keys(ids, names, salt(seed, epoch, "frame"))  # not hashed with the rate: nested across rates
        out: dict[str, np.ndarray] = {}
        for k, name in enumerate(names):
            if name not in steps:
                continue
            t = steps[name]
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
                raise ImrecError(f"protocol {PROTOCOL!r}: steps[{name!r}] must be a positive integer, got {t!r}")
            if t == 1 or self.rate == 0.0:
                out[name] = np.ones((len(ids), int(t)), dtype=bool)
            else:
                out[name] = to_unit(step_keys(keys[:, k], int(t))) >= self.rate
        return out

    def __repr__(self) -> str:
        return f"FrameCondition(rate={self.rate!r})"


class FrameDrop:
    """Frame-level missingness: every modality present, each time step dropped with rate r (TFR-Net, LNLN).

    ``rate``: one drop rate r in [0, 1]; ``rates``: a sweep (one condition each); give exactly one. Steps are
    dropped independently per (sample, modality, step); vector modalities (one step) are never dropped.
    """

    def __init__(self, rate: float | None = None, rates: list[float] | None = None):
        self.rates = parse_rates(PROTOCOL, rate, rates)

    def conditions(self, names: Sequence[str]) -> list[FrameCondition]:
        check_names(names)
        return [FrameCondition(r) for r in self.rates]
