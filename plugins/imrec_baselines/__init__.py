"""Built-in imrec plugin: baseline recovery components (``baselines.*``).

Recoverers: ``baselines.zero_fill`` (no recovery), ``baselines.mean_fill`` (training-mean tokens),
``baselines.regression`` (regression imputation), ``baselines.mmin`` (MMIN's cascade residual imagination).
Fuser: ``baselines.late_fusion`` (average of per-modality representations over available modalities).
IMDer is a recipe over ``rohydr.hddm``, not a component of its own.

Factories are registered by name (``module:Class``) and imported on first use, as are the attributes below, so
that loading the plugin (which every CLI command does) does not import torch.
"""

import importlib
from typing import Any, Callable

from imrec import hookimpl

_MODULES = {
    "LateFusion": ".late_fusion",
    "MeanFill": ".mean_fill",
    "MMIN": ".mmin",
    "RegressionImputer": ".regression",
    "ZeroFill": ".zero_fill",
}

__all__ = ["LateFusion", "MeanFill", "MMIN", "RegressionImputer", "ZeroFill"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lazy(name: str) -> str:
    return f"{__name__}{_MODULES[name]}:{name}"  # imported when first used (imrec.registry.Entry)


@hookimpl
def register_recoverers(register: Callable[[str, Any], None]) -> None:
    register("baselines.zero_fill", _lazy("ZeroFill"))
    register("baselines.mean_fill", _lazy("MeanFill"))
    register("baselines.regression", _lazy("RegressionImputer"))
    register("baselines.mmin", _lazy("MMIN"))


@hookimpl
def register_fusers(register: Callable[[str, Any], None]) -> None:
    register("baselines.late_fusion", _lazy("LateFusion"))
