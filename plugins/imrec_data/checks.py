"""Checks every dataset plugin shares: parameter values, non-finite values, ids, splits against their spec."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import DatasetSpec, Split

SPLITS = ("train", "valid", "test")
NONFINITE_MODES = ("error", "zero")
# Rows per block when scanning big arrays, so a scan never allocates more than a small fraction of the array.
_BLOCK_ELEMENTS = 1 << 22


class DataWarning(UserWarning):
    """Something in the data was repaired or is questionable; the message says what and where."""


def one_of(dataset: str, key: str, value: object, allowed: Sequence[object]) -> None:
    """Raise a DataError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise DataError(f"{dataset}: {key}={value!r} is not allowed; use one of {', '.join(map(repr, allowed))}")


def fraction(dataset: str, key: str, value: float, *, low_open: bool = False) -> float:
    """``value`` as a float in [0, 1) (or (0, 1) with ``low_open``), else a DataError."""
    v = float(value)
    if not (0.0 < v < 1.0 if low_open else 0.0 <= v < 1.0):
        raise DataError(f"{dataset}: {key}={value!r} must be in {'(0, 1)' if low_open else '[0, 1)'}")
    return v


def _blocks(arr: np.ndarray) -> Iterator[slice]:
    per_row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)))
    step = max(1, _BLOCK_ELEMENTS // per_row)
    for start in range(0, arr.shape[0], step):
        yield slice(start, min(start + step, arr.shape[0]))


@dataclass
class NonFinite:
    """Non-finite values of one array: counts by kind and the rows (samples) that hold any."""

    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    rows: np.ndarray | None = None

    @property
    def total(self) -> int:
        return self.nan + self.posinf + self.neginf

    def describe(self, ids: np.ndarray | None = None, show: int = 5) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in (("NaN", self.nan), ("+inf", self.posinf), ("-inf", self.neginf)) if n)
        rows = self.rows if self.rows is not None else np.zeros(0, dtype=np.int64)
        names = [str(ids[r]) if ids is not None else str(int(r)) for r in rows[:show]]
        more = f" and {len(rows) - show} more" if len(rows) > show else ""
        return f"{self.total} non-finite values ({kinds}) in {len(rows)} samples, e.g. {', '.join(names)}{more}"


def count_nonfinite(arr: np.ndarray) -> NonFinite:
    """Count NaN / +inf / -inf in ``arr`` block by block (no full-size temporary)."""
    out = NonFinite(rows=np.zeros(0, dtype=np.int64))
    if not np.issubdtype(arr.dtype, np.floating):
        return out
    rows: list[np.ndarray] = []
    for sl in _blocks(arr):
        block = arr[sl]
        bad = ~np.isfinite(block)
        if not bad.any():
            continue
        out.nan += int(np.isnan(block).sum())
        out.posinf += int(np.isposinf(block).sum())
        out.neginf += int(np.isneginf(block).sum())
        per_row = bad.reshape(bad.shape[0], -1).any(axis=1) if block.ndim > 1 else bad
        rows.append(np.flatnonzero(per_row) + sl.start)
    out.rows = np.concatenate(rows) if rows else out.rows
    return out


def zero_nonfinite(arr: np.ndarray) -> None:
    """Replace non-finite values by 0 in place, block by block."""
    for sl in _blocks(arr):
        block = arr[sl]
        block[~np.isfinite(block)] = 0


def handle_nonfinite(
    dataset: str, split: str, arrays: Mapping[str, np.ndarray], ids: np.ndarray, mode: str, where: str = ""
) -> dict[str, int]:
    """Find non-finite feature values; ``mode="error"`` raises with counts and places, ``"zero"`` sets them to 0
    in place and warns with the same report. Returns the count per array name."""
    found = {name: count_nonfinite(arr) for name, arr in arrays.items()}
    bad = {n: f for n, f in found.items() if f.total}
    if bad:
        lines = "\n".join(f"    {split}/{n}: {f.describe(ids)}" for n, f in bad.items())
        src = f" in {where}" if where else ""
        if mode == "error":
            raise DataError(
                f"{dataset}: non-finite feature values{src}:\n{lines}\n"
                f"  Set `nonfinite: zero` to replace them by 0 (MMSA's convention for audio -inf), or fix the data."
            )
        for n in bad:
            zero_nonfinite(arrays[n])
        warnings.warn(f"{dataset}: replaced non-finite feature values by 0{src}:\n{lines}", DataWarning, stacklevel=3)
    return {n: f.total for n, f in found.items()}


def check_unique_ids(dataset: str, splits: Mapping[str, np.ndarray]) -> None:
    """Ids must be unique within a split and must not repeat across splits (that would be leakage)."""
    seen: dict[str, str] = {}
    for split, ids in splits.items():
        uniq, counts = np.unique(ids, return_counts=True)
        dup = uniq[counts > 1]
        if len(dup):
            raise DataError(
                f"{dataset}: {len(dup)} sample ids repeat within split {split!r}, e.g. {', '.join(map(str, dup[:5]))};"
                f" ids must be unique"
            )
        for i in uniq.tolist():
            if i in seen:
                raise DataError(f"{dataset}: sample id {i!r} is in both split {seen[i]!r} and split {split!r}")
            seen[i] = split


def check_split_against_spec(dataset: str, name: str, split: Split, spec: DatasetSpec) -> None:
    """Shapes, dtypes and lengths of a built split agree with the spec (a bug guard for every plugin)."""
    n = len(split.labels)
    if split.ids.shape != (n,):
        raise DataError(f"{dataset}: split {name!r} has {len(split.ids)} ids for {n} labels")
    for m in spec.modalities:
        arr = split.modalities.get(m.name)
        if arr is None:
            raise DataError(f"{dataset}: split {name!r} lacks modality {m.name!r}")
        want = (n, m.dim) if m.length is None else (n, m.length, m.dim)
        if arr.shape != want:
            raise DataError(
                f"{dataset}: split {name!r}, modality {m.name!r} has shape {arr.shape}, expected {want}"
            )
        if arr.dtype != np.float32:
            raise DataError(f"{dataset}: split {name!r}, modality {m.name!r} is {arr.dtype}, expected float32")
        if m.name in split.lengths:
            lengths = split.lengths[m.name]
            if lengths.shape != (n,) or (n and (lengths.min() < 0 or lengths.max() > (m.length or 1))):
                raise DataError(
                    f"{dataset}: split {name!r}, lengths of {m.name!r} must be {n} integers in [0, {m.length or 1}]"
                )
    want_dtype = np.float32 if spec.task.kind == "regression" else np.int64
    if split.labels.dtype != want_dtype:
        raise DataError(f"{dataset}: split {name!r} labels are {split.labels.dtype}, expected {want_dtype.__name__}")
    if spec.task.kind == "classification" and n and (split.labels.min() < 0 or split.labels.max() >= (spec.task.num_classes or 0)):
        raise DataError(
            f"{dataset}: split {name!r} has class labels outside 0..{(spec.task.num_classes or 0) - 1}"
        )
    if split.present is not None and split.present.shape != (n, len(spec.modalities)):
        raise DataError(f"{dataset}: split {name!r} present mask has shape {split.present.shape}")


def check_splits(dataset: str, splits: Mapping[str, Split], spec: DatasetSpec) -> dict[str, Split]:
    """All three splits exist, match the spec, and have unique ids; returns them in train/valid/test order."""
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise DataError(f"{dataset}: splits {missing} are missing")
    for name in SPLITS:
        check_split_against_spec(dataset, name, splits[name], spec)
    check_unique_ids(dataset, {s: splits[s].ids for s in SPLITS})
    return {s: splits[s] for s in SPLITS}


def as_str_ids(values: Iterable[object]) -> np.ndarray:
    """Ids as a numpy unicode array."""
    return np.array([str(v) for v in values], dtype=str)


def user_labels(where: str, labels: np.ndarray, spec: DatasetSpec) -> np.ndarray:
    """A user's labels array checked and typed: 1-D, numeric, finite; classification labels whole numbers in
    ``0..num_classes-1`` (int64), regression float32. ``where`` names the file (and key) at the start of every message."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number):
        raise DataError(f"{where} must be a 1-D numeric array (N,), has shape {labels.shape} dtype {labels.dtype}")
    if not np.isfinite(labels).all():
        raise DataError(f"{where} has {int((~np.isfinite(labels)).sum())} non-finite values")
    if spec.task.kind == "classification":
        c = spec.task.num_classes or 0
        fractional = int((labels != np.round(labels)).sum())
        if fractional or (len(labels) and (labels.min() < 0 or labels.max() >= c)):
            found = f"{fractional} are not whole numbers; " if fractional else ""
            if len(labels):
                found += f"they range from {labels.min():g} to {labels.max():g}"
            hint = (" (1-based labels? subtract 1 so they start at 0)" if len(labels) and labels.min() >= 1
                    and labels.max() == c else "")
            raise DataError(f"{where} must hold classification labels, whole numbers 0..{c - 1} for "
                            f"num_classes={c}, but {found}{hint}")
        return labels.astype(np.int64)
    return labels.astype(np.float32)


def user_ids(where: str, ids: np.ndarray | None, n: int, split: str) -> np.ndarray:
    """A user's sample ids (``n`` strings), or ``<split>-<i>`` when the user gave none."""
    if ids is None:
        return np.array([f"{split}-{i}" for i in range(n)], dtype=str)
    if ids.shape != (n,) or ids.dtype.kind not in "US":
        raise DataError(f"{where} must be {n} strings (shape ({n},), dtype str), has shape {ids.shape} "
                        f"dtype {ids.dtype}")
    return ids.astype(str)


def user_present(where: str, present: np.ndarray | None, n: int, spec: DatasetSpec) -> np.ndarray | None:
    """A user's availability matrix, bool ``(n, K)`` in the dataset's modality order, if given."""
    k = len(spec.modalities)
    if present is not None and (present.shape != (n, k) or present.dtype != np.bool_):
        raise DataError(f"{where} must be bool of shape ({n}, {k}) (columns in the order "
                        f"{', '.join(spec.names)}), has shape {present.shape} dtype {present.dtype}")
    return present


def task_options(dataset: str, task: str, num_classes: int | None, nonfinite: str) -> int | None:
    """Check the options every user-data loader takes (``task``, ``num_classes``, ``nonfinite``); return
    ``num_classes`` as an int (or None: counted from the labels)."""
    one_of(dataset, "task", task, ["regression", "classification"])
    one_of(dataset, "nonfinite", nonfinite, ["error", "zero"])
    if task == "regression" and num_classes is not None:
        raise DataError(f"{dataset}: num_classes is only meaningful with task: classification")
    if num_classes is not None and int(num_classes) < 2:
        raise DataError(f"{dataset}: num_classes must be at least 2, got {num_classes}")
    return None if num_classes is None else int(num_classes)


def warn_label_traps(dataset: str, splits: Mapping[str, Split], spec: DatasetSpec, num_classes_given: bool) -> None:
    """Warn (``DataWarning``) about labels that load but are probably not what the user meant: whole numbers with
    few values under ``task: regression`` (classes trained as a regression), and, with the class count taken
    from the labels, 1-based labels (class 0 empty: C + 1 classes) or classes no split holds."""
    labels = [s.labels for s in splits.values() if len(s.labels)]
    if not labels:
        return
    every = np.concatenate(labels)
    values = np.unique(every)
    if spec.task.kind == "regression":
        if len(values) <= 20 and np.all(values == np.round(values)):
            warnings.warn(f"{dataset}: task is regression but the labels are {len(values)} whole numbers "
                          f"({', '.join(f'{v:g}' for v in values[:8])}{', …' if len(values) > 8 else ''}); if they "
                          f"are classes, set task: classification", DataWarning, stacklevel=3)
        return
    if num_classes_given:
        return
    c = spec.task.num_classes or 0
    empty = sorted(set(range(c)) - set(values.tolist()))
    if empty == [0]:
        warnings.warn(f"{dataset}: class labels run 1..{c - 1} (1-based?): class 0 has no sample, so they load as "
                      f"{c} classes; subtract 1 so they start at 0", DataWarning, stacklevel=3)
    elif empty:
        warnings.warn(f"{dataset}: classes {', '.join(map(str, empty[:8]))} of 0..{c - 1} have no sample in any "
                      f"split; renumber the classes without gaps", DataWarning, stacklevel=3)
