"""Stable random keys for masks: functions of (seed, epoch, protocol, sample id, modality, step) only.

Evaluation masks must be identical across methods, batch sizes, loader order, processes and machines, so they
cannot come from a generator consumed in loader order, nor from Python's ``hash()`` (salted per process). Each
sample gets a 64-bit key from BLAKE2b of ``"{seed}|{phase}|{protocol}|{id}"``; keys of (sample, modality) and
(sample, modality, step) are derived from it with the SplitMix64 finaliser, vectorised in numpy. A key depends
on its sample's id and the modality's *name*, never on positions, so permuting ids (or modalities) permutes the
key rows (columns) identically.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from imrec.errors import DataError, ImrecError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


def stable_key(text: str) -> int:
    """A 64-bit unsigned integer from BLAKE2b of ``text`` (same on every machine and Python process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele et al., 2014) applied elementwise to a uint64 array (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def to_unit(keys: np.ndarray) -> np.ndarray:
    """Uniform floats in [0, 1) from uint64 keys (their top 53 bits)."""
    return (np.asarray(keys, dtype=np.uint64) >> _S11).astype(np.float64) * (2.0**-53)


def salt(seed: int, epoch: int | None, protocol: str) -> str:
    """The hashed prefix: evaluation (``epoch=None``) and every training epoch draw independent keys."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ImrecError(f"a mask seed must be an integer, got {seed!r}")
    if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer))):
        raise ImrecError(f"a mask epoch must be an integer or None, got {epoch!r}")
    phase = "eval" if epoch is None else f"epoch={int(epoch)}"
    return f"{int(seed)}|{phase}|{protocol}"


def check_ids(ids: Sequence[str] | np.ndarray) -> list[str]:
    """The ids as strings; raises :class:`DataError` if one is repeated (masks are defined per unique id)."""
    out = [str(i) for i in ids]
    if len(set(out)) != len(out):
        seen: set[str] = set()
        dup = next(i for i in out if i in seen or seen.add(i))
        raise DataError(f"sample ids must be unique within a split to draw missing-modality masks; {dup!r} repeats")
    return out


def check_names(names: Sequence[str]) -> list[str]:
    """The modality names as a list; raises :class:`ImrecError` if empty or repeated."""
    out = [str(n) for n in names]
    if not out:
        raise ImrecError("a missing-modality mask needs at least one modality name")
    if len(set(out)) != len(out):
        raise ImrecError(f"modality names must be unique, got {out}")
    return out


def sample_keys(ids: Sequence[str], prefix: str) -> np.ndarray:
    """``(N,)`` uint64: BLAKE2b key of each sample under ``prefix`` (see :func:`salt`)."""
    return np.fromiter((stable_key(f"{prefix}|{i}") for i in ids), dtype=np.uint64, count=len(ids))


def pair_keys(ids: Sequence[str], names: Sequence[str], prefix: str) -> np.ndarray:
    """``(N, K)`` uint64 keys of (sample, modality) pairs; column k depends on ``names[k]``, not on k."""
    name_keys = np.array([stable_key(f"modality|{n}") for n in names], dtype=np.uint64)
    return mix64(sample_keys(ids, prefix)[:, None] ^ name_keys[None, :])


def step_keys(pair_column: np.ndarray, steps: int) -> np.ndarray:
    """``(N, T)`` uint64 keys of the time steps of one modality, from its ``(N,)`` pair keys."""
    step_codes = mix64(np.arange(steps, dtype=np.uint64) ^ np.uint64(0x5851F42D4C957F2D))
    return mix64(np.asarray(pair_column, dtype=np.uint64)[:, None] ^ step_codes[None, :])


def ranks(values: Sequence[str]) -> np.ndarray:
    """``(n,)`` int: the position of each string in sorted order (a tie-break independent of input order)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = np.empty(len(values), dtype=np.int64)
    out[order] = np.arange(len(values))
    return out
