"""Built-in imrec plugin: metrics (``metrics.*``). Definitions: docs/metrics.md."""

from imrec import hookimpl

from .classification import ClassificationMetrics
from .regression import RegressionMetrics

__all__ = ["ClassificationMetrics", "RegressionMetrics"]


@hookimpl
def register_metrics(register):
    register("metrics.regression", RegressionMetrics)
    register("metrics.classification", ClassificationMetrics)
