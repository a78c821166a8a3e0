"""A pickle loader that builds only numpy arrays, numpy scalars and plain containers.

MMSA ships its features as pickles; ``pickle.load`` on a downloaded file runs whatever callable the file
names (``os.system`` included). This unpickler resolves only the globals that numpy's own array pickles use;
any other global is refused with a :class:`DataError` before it is imported, let alone called.
"""

from __future__ import annotations

import builtins
import codecs
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from imrec.errors import DataError

try:  # numpy >= 2 names its internals numpy._core; pickles written by numpy 1.x say numpy.core.
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray, numeric as _numeric  # type: ignore[no-redef]

_ALLOWED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _multiarray._reconstruct  # ndarray, protocols 0-4
    _ALLOWED[(f"{_mod}.multiarray", "scalar")] = _multiarray.scalar  # numpy scalars (np.float32(1.0))
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _numeric._frombuffer  # ndarray, protocol 5
_ALLOWED[("numpy", "ndarray")] = np.ndarray
_ALLOWED[("numpy", "dtype")] = np.dtype
_ALLOWED[("_codecs", "encode")] = codecs.encode  # how protocol 2 stores bytes (array buffers) under Python 3
for _name in ("bytearray", "complex", "set", "frozenset", "slice"):
    # Protocols < 3 (and Python 2 pickles) spell the module __builtin__.
    _ALLOWED[("builtins", _name)] = _ALLOWED[("__builtin__", _name)] = getattr(builtins, _name)
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(_ALLOWED)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, source: str = "<stream>") -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refused to load: the pickle asks for {module}.{name}, which is not a numpy array "
                f"type. Only numpy arrays, numpy scalars and plain containers are loaded from data pickles; this "
                f"file is not an MMSA feature pickle or has been tampered with."
            ) from None


def load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`, streaming from the file (no second copy in memory)."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, str(path)).load()
        except DataError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
            raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
