"""Built-in imrec plugin: metrics (``metrics.*``, definitions: docs/metrics.md) and the loggers that send them to
experiment trackers (``log.*``: TensorBoard, MLflow; docs/api.md).

Factories are registered by name and imported on first use (as are the attributes): loading the plugin stays light."""

import importlib
from typing import Any

from imrec import hookimpl

_MODULES = {
    "ClassificationMetrics": ".classification",
    "MLflowLogger": ".mlflow_logger",
    "RegressionMetrics": ".regression",
    "TensorBoardLogger": ".tensorboard_logger",
}

__all__ = ["ClassificationMetrics", "MLflowLogger", "RegressionMetrics", "TensorBoardLogger"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_metrics(register):
    # By name (module:Class), imported on first use (imrec.registry.Entry).
    register("metrics.regression", f"{__name__}.regression:RegressionMetrics")
    register("metrics.classification", f"{__name__}.classification:ClassificationMetrics")


@hookimpl
def register_loggers(register):
    # By name too: tensorboard and mlflow are imported only by a run that logs to them.
    register("log.tensorboard", f"{__name__}.tensorboard_logger:TensorBoardLogger")
    register("log.mlflow", f"{__name__}.mlflow_logger:MLflowLogger")
