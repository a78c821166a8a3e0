"""Built-in imrec plugin: missing-modality protocols (``protocols.*``). Definitions: docs/protocols.md.

Factories are registered by name and imported on first use (as are the attributes): loading the plugin stays light."""

import importlib
from typing import Any

from imrec import hookimpl

_MODULES = {"FixedSubsets": ".fixed_subsets", "FrameDrop": ".frame_drop", "ImderBatch": ".imder_batch",
            "RandomMissing": ".random_missing"}

__all__ = ["FixedSubsets", "FrameDrop", "ImderBatch", "RandomMissing"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_protocols(register):
    # By name (module:Class), imported on first use (imrec.registry.Entry).
    for name, cls in (("random", "RandomMissing"), ("imder-batch", "ImderBatch"), ("fixed", "FixedSubsets"),
                      ("frame", "FrameDrop")):
        register(f"protocols.{name}", f"{__name__}{_MODULES[cls]}:{cls}")
