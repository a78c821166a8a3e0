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


# Every allowed callable that can allocate memory from a *number* in the pickle (rather than from bytes the pickle
# holds) is wrapped: the size asked for is checked against a budget before anything is allocated. A 42-byte pickle
# calling bytearray(10**11) or numpy.ndarray((10**11,)) is refused instead of exhausting memory.
_SLACK = 1 << 20  # bytes allowed on top of the file's size (small arrays, dtype and scalar bookkeeping)
_LATIN1 = {"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"}


class _ArrayType:
    """Stands for ``numpy.ndarray`` in a pickle: ``_reconstruct`` gets the real type, a direct call is checked."""

    def __init__(self, unpickler: "RestrictedUnpickler") -> None:
        self.unpickler = unpickler

    def __call__(self, shape: Any = (), dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
        if args or kwargs:  # buffer=/offset=/strides= views are not something numpy's pickles use
            raise self.unpickler.refuse("numpy.ndarray with a buffer, offset or strides")
        self.unpickler.spend(_nbytes(shape, dtype), "numpy.ndarray")
        return np.ndarray(shape, dtype)


def _nbytes(shape: Any, dtype: Any) -> int:
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        raise ValueError(f"bad array shape {dims!r}")
    count = 1
    for d in dims:
        count *= int(d)
    return count * np.dtype(dtype).itemsize


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`, and whose allocations from
    sizes written in the pickle are bounded by the size of the file (``budget`` bytes in all)."""

    def __init__(self, file: Any, source: str = "<stream>", budget: int | None = None) -> None:
        super().__init__(file)
        self.source = source
        self.budget = budget if budget is not None else _SLACK
        self._array_type = _ArrayType(self)
        unpickler = self

        class _Building(np.ndarray):
            """An array while it is unpickled: its ``__setstate__`` (the BUILD opcode, which carries the shape
            and dtype) is checked before numpy allocates. Turned back into plain ndarrays by :func:`load`."""

            def __setstate__(self, state: Any) -> None:
                if not isinstance(state, tuple) or len(state) not in (4, 5):
                    raise ValueError("bad array state")
                shape, dtype = state[-4], state[-3]
                unpickler.spend(_nbytes(shape, dtype), "an array")
                np.ndarray.__setstate__(self, state)

        self._building = _Building
        self._guarded: dict[tuple[str, str], Any] = {
            **{(m, "_reconstruct"): self._reconstruct for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
            **{(m, "scalar"): self._scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
            ("numpy", "ndarray"): self._array_type,
            ("builtins", "bytearray"): self._bytearray, ("__builtin__", "bytearray"): self._bytearray,
            ("_codecs", "encode"): self._encode,
        }

    def refuse(self, what: str) -> DataError:
        return DataError(f"{self.source}: refused to load: the pickle asks for {what}, more memory than a file of "
                         f"this size can describe; it is not an MMSA feature pickle or has been tampered with")

    def spend(self, nbytes: int, what: str) -> None:
        """Account for ``nbytes`` about to be allocated; refuse past the budget (before allocating)."""
        if nbytes > self.budget:
            raise self.refuse(f"{what} of {nbytes:,} bytes")
        self.budget -= nbytes

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not self._array_type and subtype is not np.ndarray:
            raise self.refuse("an array of a type other than numpy.ndarray")
        self.spend(_nbytes(shape, dtype if not isinstance(dtype, bytes) else dtype.decode("latin1")),
                   "an array")
        return _multiarray._reconstruct(self._building, shape, dtype)

    def _scalar(self, dtype: Any, *args: Any) -> Any:
        self.spend(np.dtype(dtype).itemsize, "a numpy scalar")
        return _multiarray.scalar(dtype, *args)

    def _bytearray(self, *args: Any) -> bytearray:
        if args and isinstance(args[0], (int, np.integer)):
            self.spend(int(args[0]), "bytearray")
        return bytearray(*args)

    def _encode(self, obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        # Protocol 2 stores bytes as latin-1 text; other codecs (hex, base64, …) could be chained to grow data.
        if str(encoding).lower() not in _LATIN1:
            raise self.refuse(f"_codecs.encode with encoding {str(encoding)[:40]!r}")
        return codecs.encode(obj, encoding, errors)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._guarded:
            return self._guarded[(module, name)]
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.source}: refused to load: the pickle asks for {module}.{name}, which is not a numpy array "
                f"type. Only numpy arrays, numpy scalars and plain containers are loaded from data pickles; this "
                f"file is not an MMSA feature pickle or has been tampered with."
            ) from None


def _plain_arrays(obj: Any) -> Any:
    """``obj`` with every array built by the unpickler viewed as a plain ``numpy.ndarray`` (no copy)."""
    if isinstance(obj, np.ndarray):
        plain = obj.view(np.ndarray) if type(obj) is not np.ndarray else obj
        if plain.dtype == object:
            flat = plain.reshape(-1)
            for i, v in enumerate(flat):
                if isinstance(v, (np.ndarray, dict, list, tuple)):
                    flat[i] = _plain_arrays(v)
        return plain
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _plain_arrays(v)
        return obj
    if isinstance(obj, list):
        obj[:] = [_plain_arrays(v) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_plain_arrays(v) for v in obj)
    return obj


def load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`, streaming from the file (no second copy in memory).
    Allocations from sizes written in the pickle may total twice the file's size (plus 1 MiB): array data itself
    is in the file, so a genuine pickle never needs more."""
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            return _plain_arrays(RestrictedUnpickler(f, str(path), budget=2 * size + _SLACK).load())
        except DataError:
            raise
        except MemoryError:
            raise DataError(f"{path}: ran out of memory while loading it; it is larger than this machine can hold, "
                            f"or not an MMSA feature pickle") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError,
                IndexError, OverflowError, RecursionError, UnicodeError) as exc:
            raise DataError(f"{path}: not a readable pickle ({type(exc).__name__}: {str(exc)[:200]})") from None
