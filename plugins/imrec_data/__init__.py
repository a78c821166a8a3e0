"""Built-in imrec plugin: datasets (synthetic, MMSA pickles, CMU-SDK .csd, MOSI bc-LSTM features, handwritten
digits, your own .npz or memory-mapped .npy folders) and the ``imrec data`` command (get / verify / info)."""

from __future__ import annotations

from typing import Any

from imrec import hookimpl

from .command import register as _register_command
from .csd import CSD
from .handwritten import Handwritten
from .mmsa import MMSA
from .mosi_bclstm import MosiBcLstm
from .npy_folder import NpyFolder
from .npz import Npz
from .synthetic import Synthetic

# Registered as "data.<key>".
DATASETS: dict[str, Any] = {
    "synthetic": Synthetic,
    "mmsa": MMSA,
    "csd": CSD,
    "mosi-bclstm": MosiBcLstm,
    "handwritten": Handwritten,
    "npz": Npz,
    "npy": NpyFolder,
}


@hookimpl
def register_datasets(register: Any) -> None:
    for name, factory in DATASETS.items():
        register(f"data.{name}", factory)


@hookimpl
def register_commands(subparsers: Any) -> None:
    _register_command(subparsers)


__all__ = ["CSD", "DATASETS", "Handwritten", "MMSA", "MosiBcLstm", "NpyFolder", "Npz", "Synthetic"]
