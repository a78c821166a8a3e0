"""Turn a dataset split (numpy arrays or memory maps) into batches, with the missing-modality condition applied.

Masks are computed once per split and epoch by the condition (never per batch), so the test pattern of a sample
does not depend on batch size or order. Rows are gathered per batch (:func:`read_rows`), so a memory-mapped
split is never copied whole into memory, nor mapped into the process's resident set.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from .interfaces import Batch, Condition, Split


@dataclass
class MaskedSplit:
    """A split with one condition's availability (``mask`` (N, K)) and optional per-step keep masks."""

    split: Split
    names: tuple[str, ...]
    mask: np.ndarray
    frame_keep: dict[str, np.ndarray] | None = None


def condition_masks(
    condition: Condition, split: Split, names: Sequence[str], seed: int, epoch: int | None
) -> MaskedSplit:
    """Evaluate ``condition`` on a whole split. Really missing data (``split.present``) stays missing."""
    ids = [str(i) for i in split.ids]
    mask = np.asarray(condition.masks(ids, list(names), seed, epoch), dtype=bool)
    if mask.shape != (len(split), len(names)):
        raise ValueError(
            f"condition {condition.name!r} returned masks of shape {mask.shape}, expected {(len(split), len(names))}"
        )
    if split.present is not None:
        mask = mask & np.asarray(split.present, dtype=bool)
    frame_keep = None
    if hasattr(condition, "frame_masks"):
        steps = {n: int(split.modalities[n].shape[1]) for n in names if split.modalities[n].ndim == 3}
        if steps:
            frame_keep = condition.frame_masks(ids, list(names), steps, seed, epoch)
    return MaskedSplit(split, tuple(names), mask, frame_keep)


def read_rows(array: np.ndarray, idx: np.ndarray | slice) -> np.ndarray:
    """``array[idx]`` (rows ``idx`` sorted ascending, or a slice with step 1) as an in-memory array.

    A read-only ``np.memmap`` of a whole file (``np.load(path, mmap_mode="r")``) is read with ``os.preadv``
    into the result, one call per run of consecutive rows, instead of through the mapping: the bytes pass
    through the page cache (shared, reclaimable) but are never mapped into this process, so its resident set
    stays a few batches however much of a dataset larger than memory an epoch touches. Anything else is
    plain indexing.
    """
    if not (isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and not array.flags.writeable
            and array.flags.c_contiguous and array.filename and hasattr(os, "preadv")):
        return np.asarray(array[idx])
    if isinstance(idx, slice):
        start, stop, step = idx.indices(array.shape[0])
        if step != 1:
            return np.asarray(array[idx])
        idx = np.arange(start, stop)
    idx = np.asarray(idx, dtype=np.int64)
    out = np.empty((len(idx), *array.shape[1:]), dtype=array.dtype)
    if not len(idx):
        return out
    row = int(np.prod(array.shape[1:], dtype=np.int64)) * array.itemsize  # bytes per row, C order
    flat = out.reshape(len(idx), -1).view(np.uint8)
    breaks = np.flatnonzero(np.diff(idx) != 1) + 1
    with open(array.filename, "rb", buffering=0) as fh:
        for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(idx)]):
            view = memoryview(flat[lo:hi]).cast("B")
            offset = array.offset + int(idx[lo]) * row
            done = 0
            while done < len(view):  # preadv may return short reads
                got = os.preadv(fh.fileno(), [view[done:]], offset + done)
                if got <= 0:
                    raise OSError(f"{array.filename}: unexpected end of file reading rows {idx[lo]}…{idx[hi - 1]}")
                done += got
    return out


def _rows(array: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    rows = read_rows(array, idx)
    if rows.dtype == np.float64:
        rows = rows.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(rows))


def iterate(
    masked: MaskedSplit, batch_size: int, order: np.ndarray | None = None
) -> Iterator[tuple[Batch, torch.Tensor, dict[str, torch.Tensor] | None]]:
    """Yield ``(full batch, mask (B, K), frame keep masks)`` in ``order`` (default: split order).

    The full batch holds every modality; the caller zeroes what the mask says is missing
    (:func:`imrec.model.apply_mask`) before anything reaches the model.
    """
    split = masked.split
    n = len(split)
    order = np.arange(n) if order is None else np.asarray(order)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        # Sorted gathers are much faster on memory maps; the batch keeps the sorted order.
        idx = np.sort(idx)
        mods = {name: _rows(split.modalities[name], idx) for name in masked.names}
        lengths = {k: torch.from_numpy(np.asarray(v[idx]).astype(np.int64)) for k, v in split.lengths.items()}
        labels = torch.from_numpy(np.ascontiguousarray(np.asarray(split.labels[idx])))
        if labels.dtype == torch.float64:
            labels = labels.float()
        ids = [str(i) for i in np.asarray(split.ids)[idx]]
        batch = Batch(masked.names, mods, torch.ones(len(idx), len(masked.names), dtype=torch.bool), labels, ids, lengths)
        mask = torch.from_numpy(masked.mask[idx])
        frames = None
        if masked.frame_keep:
            frames = {k: torch.from_numpy(np.asarray(v[idx], dtype=bool)) for k, v in masked.frame_keep.items()}
        yield batch, mask, frames


def epoch_order(n: int, seed: int, phase: int, epoch: int, shard: tuple[int, int] = (0, 1)) -> np.ndarray:
    """The training order of one epoch: a permutation seeded by (seed, phase, epoch), so a resumed run replays
    it exactly; with ``shard=(rank, world)`` each rank takes every world-th element (equal-length shards)."""
    rng = np.random.default_rng([seed, phase, epoch])
    order = rng.permutation(n)
    rank, world = shard
    if world > 1:
        usable = (n // world) * world
        order = order[:usable][rank::world]
    return order
