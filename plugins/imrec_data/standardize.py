"""Per-feature standardisation with statistics from the TRAIN split only, shared by every dataset plugin.

``standardize: train`` z-scores each feature of each modality with the mean and standard deviation of the
training split: over samples, and for sequences over the valid time steps of each sample (frames past
``lengths`` are padding and would drag the mean toward 0); entries that ``present`` marks absent are left out of
the statistics (they hold no data). VALID and TEST are transformed with those statistics and never inform them.
Why it matters: real feature sets mix scales (mosi-bclstm's audio reaches 376 and vision 198 while text is near
unit scale), and a network trained on raw values is dominated by the large-scale modality.

The statistics are attached to every split (``Split.standardization``) so the runner can write them into the
run directory (``preprocessing.json``) and a predictor can apply them to new data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import Split

MODES = ("none", "train")
# A feature whose TRAIN spread is below this is treated as constant: it is centred, not scaled (dividing by a
# near-zero std would turn rounding noise into huge values on VALID/TEST).
_MIN_STD = 1e-8


def standardize_mode(dataset: str, value: object) -> str:
    """The ``standardize`` option as one of MODES; ``true``/``false`` are accepted as ``train``/``none``."""
    if value is True:
        return "train"
    if value is False or value is None:
        return "none"
    if value not in MODES:
        raise DataError(
            f"{dataset}: standardize={value!r} is not allowed; use 'train' (z-score every feature with TRAIN "
            f"statistics) or 'none'"
        )
    return str(value)


def _valid_rows(split: Split, k: int) -> np.ndarray | None:
    """Rows of ``split`` whose modality at column ``k`` of ``present`` holds data, or None for all rows."""
    if split.present is None:
        return None
    return np.flatnonzero(split.present[:, k])


def train_statistics(train: Split, names: tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-feature (mean, std) of each modality over the TRAIN split's observed entries (float64 sums)."""
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k, name in enumerate(names):
        x = train.modalities[name]
        rows = _valid_rows(train, k)
        if rows is not None:
            x = x[rows]
        if x.ndim == 3:
            lengths = train.lengths.get(name)
            if lengths is not None:
                lens = lengths if rows is None else lengths[rows]
                keep = np.arange(x.shape[1])[None, :] < lens[:, None]
                x = x[keep]  # (frames, D): the valid time steps only
            else:
                x = x.reshape(-1, x.shape[-1])
        if x.shape[0] == 0:
            raise DataError(
                f"standardize: modality {name!r} has no observed TRAIN entries to take statistics from; set "
                f"standardize: none or provide training data for it"
            )
        x64 = x.astype(np.float64, copy=False)
        mean = x64.mean(axis=0)
        std = x64.std(axis=0)
        std[std < _MIN_STD] = 1.0
        stats[name] = (mean.astype(np.float32), std.astype(np.float32))
    return stats


def apply_statistics(split: Split, stats: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Transform ``split`` in place with ``stats``; padding frames and absent entries stay exactly zero."""
    for name, (mean, std) in stats.items():
        x = split.modalities[name]
        if not x.flags.writeable:
            x = np.array(x, dtype=np.float32)  # a read-only memory map: transform a copy in memory
        x -= mean
        x /= std
        # Padding and absent entries carry no data; keep them at 0 (their raw value) rather than at -mean/std.
        if x.ndim == 3 and name in split.lengths:
            pad = np.arange(x.shape[1])[None, :] >= split.lengths[name][:, None]
            x[pad] = 0.0
        split.modalities[name] = x
    if split.present is not None:
        for k, name in enumerate(stats):
            absent = ~split.present[:, k]
            if absent.any():
                split.modalities[name][absent] = 0.0
    split.standardization = stats if isinstance(stats, dict) else dict(stats)


def standardize_splits(splits: dict[str, Split], mode: str, names: tuple[str, ...]) -> dict[str, Split]:
    """Apply ``mode`` ('none' or 'train') to every split; returns ``splits`` (transformed in place)."""
    if mode == "none":
        return splits
    stats = train_statistics(splits["train"], names)
    for split in splits.values():
        apply_statistics(split, stats)
    return splits

