"""Checks of single values beyond their type (each returns a message, or None when the value is fine), and what
validation reads from registered components: metrics' directions and components' auxiliary losses."""

from __future__ import annotations

from typing import Any, Mapping

from ..boundary import short_repr
from ..registry import Registry
from .recipe import DEVICE_RE, NAME_RE


def check_positive(v: Any) -> str | None:
    return None if v is None or v > 0 else f"must be > 0 (found {v!r})"


def check_non_negative(v: Any) -> str | None:
    return None if v >= 0 else f"must be >= 0 (found {v!r})"


def non_empty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def check_name(v: str) -> str | None:
    if NAME_RE.match(v):
        return None
    return (f"{short_repr(v)} cannot name a run directory: use letters, digits and _ . + - "
            "(starting with a letter or digit)")


def check_threads(v: int | None) -> str | None:
    return None if v is None or v >= 1 else f"threads must be ≥ 1 (or null for the default), got {v}"


def check_device(v: str) -> str | None:
    return None if DEVICE_RE.match(v) else f"unknown device {short_repr(v)}; use auto, cpu, cuda or cuda:N"


def check_seeds(v: list[int]) -> str | None:
    if not v:
        return "must list at least one seed"
    if len(set(v)) != len(v):
        return f"seeds must be distinct (found {v})"
    if any(s < 0 for s in v):
        return f"seeds must be >= 0 (found {v})"
    return None


def check_betas(v: tuple[float, float] | None) -> str | None:
    return None if v is None or all(0 <= b < 1 for b in v) else f"each beta must be in [0, 1) (found {list(v)})"


def metric_directions(registry: Registry) -> dict[str, str | None]:
    """Metric name → ``"min"``/``"max"`` (``None`` where registered metrics disagree), plus ``loss``; empty when
    no registered metric declares ``higher_is_better`` (then selection metrics are not checked)."""
    directions: dict[str, str | None] = {}
    for entry in registry.entries("metric"):
        hib = getattr(entry.factory, "higher_is_better", None)
        if isinstance(hib, Mapping):
            for name, higher in hib.items():
                mode = "max" if higher else "min"
                directions[name] = mode if directions.get(name, mode) == mode else None
    if directions:
        directions.setdefault("loss", "min")
    return directions


def aux_losses(factory: Any) -> tuple[str, ...] | None:
    """The auxiliary losses a component factory declares (``aux_losses``), or None if it declares none."""
    aux = getattr(factory, "aux_losses", None)
    if isinstance(aux, (tuple, list, set, frozenset)) and all(isinstance(a, str) for a in aux):
        return tuple(aux)
    return None
