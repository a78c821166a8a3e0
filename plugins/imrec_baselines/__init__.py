"""Built-in imrec plugin: baseline recovery components (``baselines.*``).

Recoverers: ``baselines.zero_fill`` (no recovery), ``baselines.mean_fill`` (training-mean tokens),
``baselines.regression`` (regression imputation), ``baselines.mmin`` (MMIN's cascade residual imagination).
Fuser: ``baselines.late_fusion`` (average of per-modality representations over available modalities).
IMDer is a recipe over ``rohydr.hddm``, not a component of its own.
"""

from typing import Any, Callable

from imrec import hookimpl

from .late_fusion import LateFusion
from .mean_fill import MeanFill
from .mmin import MMIN
from .regression import RegressionImputer
from .zero_fill import ZeroFill

__all__ = ["LateFusion", "MeanFill", "MMIN", "RegressionImputer", "ZeroFill"]


@hookimpl
def register_recoverers(register: Callable[[str, Any], None]) -> None:
    register("baselines.zero_fill", ZeroFill)
    register("baselines.mean_fill", MeanFill)
    register("baselines.regression", RegressionImputer)
    register("baselines.mmin", MMIN)


@hookimpl
def register_fusers(register: Callable[[str, Any], None]) -> None:
    register("baselines.late_fusion", LateFusion)
