"""Giving freed heap memory back to the operating system between training and evaluation."""

from __future__ import annotations

import functools
from typing import Any


def release_freed_memory() -> None:
    """Return heap memory the allocator keeps after frees to the operating system (glibc ``malloc_trim``;
    nothing elsewhere). glibc keeps freed blocks for reuse: after a training epoch that is about one batch's
    activations (hundreds of MB for RoHyDR at MOSI shapes), which the next evaluation, with larger batches that
    fit none of those blocks, would add to the process's peak."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, looked up once; None where the C library has none."""
    import ctypes
    import ctypes.util

    try:
        name = ctypes.util.find_library("c")
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None
