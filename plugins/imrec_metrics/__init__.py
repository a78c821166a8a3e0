"""Built-in imrec plugin: metrics (``metrics.*``, definitions: docs/metrics.md) and the loggers that send them to
experiment trackers (``log.*``: TensorBoard, MLflow; docs/api.md)."""

from imrec import hookimpl

from .classification import ClassificationMetrics
from .mlflow_logger import MLflowLogger
from .regression import RegressionMetrics
from .tensorboard_logger import TensorBoardLogger

__all__ = ["ClassificationMetrics", "MLflowLogger", "RegressionMetrics", "TensorBoardLogger"]


@hookimpl
def register_metrics(register):
    register("metrics.regression", RegressionMetrics)
    register("metrics.classification", ClassificationMetrics)


@hookimpl
def register_loggers(register):
    register("log.tensorboard", TensorBoardLogger)
    register("log.mlflow", MLflowLogger)
