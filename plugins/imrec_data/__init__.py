"""Built-in imrec plugin: datasets (synthetic, MMSA pickles, CMU-SDK .csd, MOSI bc-LSTM features, handwritten
digits, your own .npz or memory-mapped .npy folders) and the ``imrec data`` command (get / verify / info).

Datasets are registered by name (``module:Class``) and imported on first use, as are the attributes
(``DATASETS`` included), and the
command module imports what a sub-command needs inside its handler: loading the plugin, which every CLI command
does to find the commands, stays light (docs/architecture.md, "Lazy imports")."""

from __future__ import annotations

import importlib
from typing import Any

from imrec import hookimpl

# Registered as "data.<key>": key → (module, class).
_DATASETS = {
    "synthetic": (".synthetic", "Synthetic"),
    "mmsa": (".mmsa", "MMSA"),
    "csd": (".csd", "CSD"),
    "mosi-bclstm": (".mosi_bclstm", "MosiBcLstm"),
    "handwritten": (".handwritten", "Handwritten"),
    "npz": (".npz", "Npz"),
    "npy": (".npy_folder", "NpyFolder"),
}
_CLASSES = {cls: module for module, cls in _DATASETS.values()}


def datasets() -> dict[str, Any]:
    """Short name → dataset factory (imports the dataset modules)."""
    return {key: getattr(importlib.import_module(module, __name__), cls) for key, (module, cls) in _DATASETS.items()}


def __getattr__(name: str) -> Any:
    if name == "DATASETS":
        return datasets()
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_datasets(register: Any) -> None:
    for name, (module, cls) in _DATASETS.items():
        register(f"data.{name}", f"{__name__}{module}:{cls}")  # imported on first use (imrec.registry.Entry)


@hookimpl
def register_commands(subparsers: Any) -> None:
    from .command import register as register_command

    register_command(subparsers)


__all__ = ["CSD", "DATASETS", "Handwritten", "MMSA", "MosiBcLstm", "NpyFolder", "Npz", "Synthetic"]
