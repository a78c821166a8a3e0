"""``data.npz``: your own features, one ``.npz`` file per split.

Format (``folder/train.npz``, ``folder/valid.npz``, ``folder/test.npz``, written e.g. with ``np.savez``):

* ``<modality>``: ``(N, T, D)`` sequences or ``(N, D)`` vectors, any real dtype (stored as float32); the order of
  the modalities is their order in ``train.npz``; names may not contain ``__``;
* ``<modality>__lengths`` (optional, sequences only): ``(N,)`` whole numbers in ``[0, T]``;
* ``labels``: ``(N,)`` — floats for regression, whole numbers ``0 … num_classes-1`` for classification;
* ``ids`` (optional): ``(N,)`` unicode strings, unique across all splits (default ``"<split>-<row>"``);
* ``present`` (optional): ``(N, K)`` bool, False where a modality is really missing (K = number of modalities).

Every split must have the same modalities with the same ``T`` and ``D``. Files are opened with
``allow_pickle=False``: object arrays are refused (save ids with ``np.array(ids, dtype=str)``).
"""

from __future__ import annotations

import ast
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from imrec.errors import DataError, DataNotFoundError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import (SPLITS, check_splits, handle_nonfinite, task_options, user_ids, user_labels, user_present,
                     warn_label_traps)
from .paths import resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.npz"
RESERVED = ("labels", "ids", "present")
LENGTHS = "__lengths"


def _header_3_0(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a version 3.0 ``.npy`` header (read as text and parsed as a literal, as numpy does)."""
    (length,) = struct.unpack("<I", f.read(4))
    if length > 1 << 20:
        raise ValueError(f"a .npy header of {length:,} bytes")
    header = ast.literal_eval(f.read(length).decode("utf-8"))
    if not isinstance(header, dict) or not {"descr", "shape"} <= set(header):
        raise ValueError("malformed .npy header")
    return tuple(header["shape"]), np.lib.format.descr_to_dtype(header["descr"])


def npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an ``.npz`` file, read from the array headers only."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:  # format 3.0 (utf-8 field names): the 2.0 layout with a utf-8 header; no public reader
                        shape, dtype = _header_3_0(f)
                    header_end = f.tell()
                shape, dtype = tuple(int(d) for d in shape), np.dtype(dtype)
                # The header's shape is only a claim: it must fit in the member's size before numpy allocates it.
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if declared > info.file_size - header_end and not dtype.hasobject:
                    raise ValueError(f"array {info.filename[:-4]!r}: its header declares shape {shape} of {dtype} "
                                     f"({declared:,} bytes) but the archive holds {info.file_size - header_end:,} "
                                     f"bytes for it; the file is truncated or damaged")
                out[info.filename[:-4]] = (shape, dtype)
    except (zipfile.BadZipFile, ValueError, OSError, SyntaxError, struct.error, TypeError, RecursionError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    return out


class Npz:
    """Your own features: train/valid/test .npz files with arrays per modality, labels, optional ids and lengths."""

    def __init__(
        self,
        folder: str,
        task: str = "regression",
        num_classes: int | None = None,
        nonfinite: str = "error",
        standardize: str = "none",
    ) -> None:
        num_classes = task_options(NAME, task, num_classes, nonfinite)
        self.standardize = standardize_mode(NAME, standardize)
        self.folder = resolve(folder, "npz")
        self.task, self.nonfinite = task, nonfinite
        self.num_classes = num_classes
        self._spec: DatasetSpec | None = None

    def paths(self) -> dict[str, Path]:
        return {s: self.folder / f"{s}.npz" for s in SPLITS}

    def check(self) -> None:
        """Raise a DataError naming the absent split files."""
        missing = [str(p) for p in self.paths().values() if not p.is_file()]
        if missing:
            raise DataNotFoundError(
                f"{NAME}: split files not found: {', '.join(missing)}. The folder must hold train.npz, valid.npz "
                f"and test.npz (see docs/data.md, section '`data.npz` — the format for your own features'; `imrec data check FOLDER` lists every problem at once)."
            )

    @property
    def spec(self) -> DatasetSpec:
        """Modalities from the array headers (no arrays read); class count from the labels if not given."""
        if self._spec is None:
            self.check()
            headers = {s: npz_headers(p) for s, p in self.paths().items()}
            modalities = self._modalities(headers)
            num_classes = self.num_classes
            if self.task == "classification" and num_classes is None:
                top = -1
                for s, p in self.paths().items():
                    with np.load(p, allow_pickle=False) as npz:
                        labels = npz["labels"]
                        if labels.size:
                            top = max(top, int(np.max(labels)))
                num_classes = max(top + 1, 2)
            self._spec = DatasetSpec(
                name=self.folder.name or "npz",
                modalities=modalities,
                task=TaskSpec(self.task, num_classes=num_classes),  # type: ignore[arg-type]
            )
        return self._spec

    def _modalities(self, headers: dict[str, dict[str, tuple[tuple[int, ...], np.dtype]]]) -> tuple[ModalitySpec, ...]:
        paths = self.paths()
        names = [k for k in headers["train"] if k not in RESERVED and "__" not in k]
        if not names:
            raise DataError(f"{paths['train']}: holds no modality arrays (arrays other than {', '.join(RESERVED)})")
        specs = []
        for split, h in headers.items():
            if "labels" not in h:
                raise DataError(f"{paths[split]}: lacks the array 'labels'")
            mods = [k for k in h if k not in RESERVED and "__" not in k]
            if sorted(mods) != sorted(names):
                raise DataError(f"{paths[split]}: modalities {sorted(mods)} differ from train.npz's {sorted(names)}")
            for key in h:
                if "__" in key and not (key.endswith(LENGTHS) and key[: -len(LENGTHS)] in names):
                    raise DataError(
                        f"{paths[split]}: array {key!r}: names with '__' must be '<modality>__lengths' of a modality"
                    )
        for m in names:
            shapes = {s: headers[s][m][0] for s in SPLITS}
            dtypes = {s: headers[s][m][1] for s in SPLITS}
            for s in SPLITS:
                if len(shapes[s]) not in (2, 3):
                    raise DataError(f"{paths[s]}: {m!r} has shape {shapes[s]}; expected (N, T, D) or (N, D)")
                if not (np.issubdtype(dtypes[s], np.floating) or np.issubdtype(dtypes[s], np.integer)):
                    raise DataError(f"{paths[s]}: {m!r} has dtype {dtypes[s]}; features must be real numbers")
            inner = {s: shapes[s][1:] for s in SPLITS}
            if len(set(inner.values())) != 1:
                raise DataError(
                    f"{NAME}: modality {m!r} has per-sample shapes {inner} across splits; pad sequences to one "
                    f"length T (give {m}__lengths) so every split has the same (T, D)"
                )
            shape = inner["train"]
            specs.append(ModalitySpec(m, int(shape[-1]), int(shape[0]) if len(shape) == 2 else None))
        return tuple(specs)

    def load(self) -> dict[str, Split]:
        """Read and validate every split."""
        spec = self.spec
        splits = {s: self._split(s, p, spec) for s, p in self.paths().items()}
        splits = check_splits(NAME, splits, spec)
        warn_label_traps(NAME, splits, spec, self.num_classes is not None)
        return standardize_splits(splits, self.standardize, spec.names)

    def _split(self, split: str, path: Path, spec: DatasetSpec) -> Split:
        try:
            npz = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
        with npz:
            try:
                arrays = {k: npz[k] for k in npz.files}
            except ValueError as exc:
                raise DataError(
                    f"{path}: holds an object array, which is not loaded (allow_pickle=False); save ids with "
                    f"np.array(ids, dtype=str) and features as numbers ({exc})"
                ) from exc
        labels = user_labels(f"{path}: 'labels'", arrays.pop("labels"), spec)
        n = labels.shape[0]
        ids = user_ids(f"{path}: 'ids'", arrays.pop("ids", None), n, split)
        present = user_present(f"{path}: 'present'", arrays.pop("present", None), n, spec)
        feats: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        for m in spec.modalities:
            a = arrays.pop(m.name)
            if a.shape[0] != n:
                raise DataError(f"{path}: {m.name!r} has {a.shape[0]} rows but 'labels' has {n}")
            feats[m.name] = a.astype(np.float32, copy=False)
            lens = arrays.pop(m.name + LENGTHS, None)
            if lens is None:
                continue
            if m.length is None:
                raise DataError(f"{path}: {m.name}{LENGTHS} is given but {m.name!r} is a vector modality (N, D)")
            if lens.shape != (n,) or not np.issubdtype(lens.dtype, np.number) or (lens != np.round(lens)).any() or (
                n and (lens.min() < 0 or lens.max() > m.length)
            ):
                raise DataError(f"{path}: {m.name}{LENGTHS} must be {n} whole numbers in [0, {m.length}]")
            lengths[m.name] = lens.astype(np.int64)
        handle_nonfinite(NAME, split, feats, ids, self.nonfinite, str(path))
        return Split(modalities=feats, labels=labels, ids=ids, lengths=lengths, present=present)
