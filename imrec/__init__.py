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

__all__ = [
    "Batch",
    "DatasetSpec",
    "ModalitySpec",
    "Output",
    "Split",
    "TaskSpec",
    "hookimpl",
    "__version__",
]
