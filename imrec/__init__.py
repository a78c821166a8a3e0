"""imrec — incomplete multimodal learning: recover missing modalities, from YAML recipes."""

from .hookspecs import hookimpl
from .interfaces import (
    Batch,
    DatasetSpec,
    ModalitySpec,
    Output,
    Split,
    TaskSpec,
)

__version__ = "0.1.0"

# The Python API (docs/api.md), imported on first use: `import imrec` stays light.
_API = {"run": "api", "RunResult": "api", "load": "predict", "Predictor": "predict", "Prediction": "predict"}


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'imrec' has no attribute {name!r}")


__all__ = [
    "Batch",
    "DatasetSpec",
    "ModalitySpec",
    "Output",
    "Split",
    "TaskSpec",
    "hookimpl",
    "__version__",
    "run",
    "load",
    "Predictor",
    "Prediction",
    "RunResult",
]
