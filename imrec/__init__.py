"""imrec — incomplete multimodal learning: recover missing modalities, from YAML recipes."""

from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

# The data types and the Python API (docs/api.md) are imported on first use (PEP 562), so `import imrec` (every
# CLI command, every plugin's `from imrec import hookimpl`) stays light: see "Lazy imports" in docs/architecture.md.
_INTERFACES = ("Batch", "DatasetSpec", "ModalitySpec", "Output", "Split", "TaskSpec")
_API = {"run": "api", "RunResult": "api", "load": "predict", "Predictor": "predict", "Prediction": "predict"}


def __getattr__(name: str) -> Any:
    if name in _INTERFACES:
        from . import interfaces

        return getattr(interfaces, name)
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
