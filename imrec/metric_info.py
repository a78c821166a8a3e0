"""What the result tables know of each metric: its display (label, scale, decimals, order, headline), its
direction and its task, as the metrics' plugins declare them.

A metric plugin declares, on its factory (``imrec.interfaces.Metric``), ``higher_is_better`` (name → direction)
and ``display`` (name → :class:`~imrec.interfaces.MetricDisplay`). The core's own metrics, which no plugin
computes (``loss``; the recovery metrics of ``imrec.trainer.evaluate``), are declared here, in
:data:`CORE_METRICS`. ``imrec run``'s results table (imrec/display.py), ``imrec bench``'s tables and plots read
this module; none of them names a metric.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from .errors import PluginError
from .interfaces import Metric, MetricDisplay, declared
from .registry import Registry


@dataclass(frozen=True)
class MetricInfo:
    """One metric name as the tables show it. ``display`` is what is declared (``None``: nothing, so the metric
    is shown by its name, unscaled); ``higher_is_better`` is ``None`` where nothing declares it; ``task`` is the
    declaring metric's task kind (``None``: any task, or not declared by a plugin)."""

    name: str
    display: MetricDisplay | None = None
    higher_is_better: bool | None = None
    task: str | None = None

    @property
    def shown(self) -> MetricDisplay:
        return self.display or MetricDisplay(self.name)

    @property
    def label(self) -> str:
        return self.shown.label

    @property
    def scale(self) -> float:
        return self.shown.scale

    @property
    def decimals(self) -> int:
        return self.shown.decimals

    @property
    def order(self) -> float | None:
        return self.shown.order

    @property
    def headline(self) -> bool:
        return self.shown.headline


# Scored by the core itself, on the missing entries only (imrec.trainer.evaluate, ``eval.recovery_metrics``): the
# error and cosine of the recovered tokens to the encoder's tokens of the true features; ``recovery_mse_zero`` is
# the error all-zero tokens (zero filling) would have there, the scale of recovery_mse. ``loss``: the task loss.
CORE_METRICS: dict[str, MetricInfo] = {
    "loss": MetricInfo("loss", MetricDisplay("loss"), False),
    "recovery_mse": MetricInfo("recovery_mse", MetricDisplay("recovery_mse", headline=True), False),
    "recovery_cos": MetricInfo("recovery_cos", MetricDisplay("recovery_cos"), True),
    "recovery_mse_zero": MetricInfo("recovery_mse_zero", MetricDisplay("recovery_mse_zero", headline=True), False),
}

_cache: tuple[Registry, dict[str, MetricInfo]] | None = None


def metric_infos(registry: Registry | None = None) -> dict[str, MetricInfo]:
    """Every metric name a registered metric (or the core) declares → its :class:`MetricInfo`.

    Metrics are read in the registry's order (by registered name); where two declare the same metric name, the
    later one's direction and task win, and its display unless it declares none; the core's own metrics come
    last. Cached for the registry it was read from (registering a
    plugin builds a new registry)."""
    global _cache
    if registry is None:
        from .plugins import get_registry

        registry = get_registry()
    if _cache is not None and _cache[0] is registry:
        return _cache[1]
    out: dict[str, MetricInfo] = {}
    for entry in registry.entries("metric"):
        for name, info in _declared_by(entry.name, entry.factory).items():
            earlier = out.get(name)
            out[name] = info if info.display or earlier is None else replace(info, display=earlier.display)
    out.update(CORE_METRICS)
    _cache = (registry, out)
    return out


def _declared_by(component: str, factory: Any) -> dict[str, MetricInfo]:
    """The metric names ``factory`` declares (its ``higher_is_better`` and ``display``), checked."""
    hib = getattr(factory, "higher_is_better", None)
    hib = dict(hib) if isinstance(hib, Mapping) else {}
    display = declared(factory, Metric, "display")
    if not isinstance(display, Mapping) or not all(isinstance(k, str) and isinstance(v, MetricDisplay)
                                                   for k, v in display.items()):
        raise PluginError(f"metric {component!r}: `display` must map metric names to imrec.interfaces.MetricDisplay, "
                          f"got {display!r}")
    unknown = sorted(set(display) - set(hib))
    if unknown:
        raise PluginError(f"metric {component!r} declares how to display {', '.join(map(repr, unknown))}, which its "
                          f"`higher_is_better` does not list (it lists: {', '.join(hib) or 'nothing'}); every "
                          f"metric it returns belongs in `higher_is_better`")
    task = getattr(factory, "task", None)
    return {name: MetricInfo(name, display.get(name), bool(hib[name]), task) for name in hib}


def metric_info(name: str) -> MetricInfo:
    """What is declared of ``name``; a metric nothing declares is shown as it is: its name, unscaled."""
    return metric_infos().get(name) or MetricInfo(name)


def label(name: str) -> str:
    """The metric's display name (``"Acc-2 (Non0)"``); its name where none is declared."""
    return metric_info(name).label


def directions() -> dict[str, bool]:
    """Every declared metric name → whether higher is better."""
    return {n: i.higher_is_better for n, i in metric_infos().items() if i.higher_is_better is not None}


def ordered(names: Iterable[str]) -> list[str]:
    """``names`` in table order: by declared ``order``, then the rest alphabetically."""
    def key(name: str) -> tuple[bool, float, str]:
        order = metric_info(name).order
        return (order is None, 0.0 if order is None else float(order), name)

    return sorted(dict.fromkeys(names), key=key)
