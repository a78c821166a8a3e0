"""``data.npy``: your own features as a folder of ``.npy`` files, memory-mapped (data bigger than memory).

Layout (one sub-folder per split, one ``.npy`` file per array, e.g. written with :func:`save` or ``np.save``)::

    folder/train/<modality>.npy    (N, T, D) sequences or (N, D) vectors, float32 (see ``mmap``)
    folder/train/<modality>__lengths.npy   optional, sequences only: (N,) whole numbers in [0, T]
    folder/train/labels.npy        (N,) floats (regression) or whole numbers 0 … num_classes-1
    folder/train/ids.npy           optional (N,) unicode strings, unique across splits (default "<split>-<row>")
    folder/train/present.npy       optional (N, K) bool, False where a modality is really missing
    folder/valid/…  folder/test/…  the same files

With ``mmap: true`` (default) the feature arrays are opened with ``np.load(mmap_mode="r")``: nothing is read
until a batch gathers its rows (``imrec.loader.read_rows``, which reads them with ``preadv`` rather than
through the mapping), so a dataset larger than memory trains with a resident set of a few batches; the
operating system's page cache holds what was read, once, shared and reclaimable. Memory
mapping needs float32 on disk (any other dtype would be converted, i.e. copied into memory): :func:`save`
writes float32. ``mmap: false`` loads every array into memory and converts any real dtype.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from imrec.errors import DataError, DataNotFoundError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import (SPLITS, check_splits, count_nonfinite, handle_nonfinite, task_options, user_ids, user_labels,
                     user_present, warn_label_traps)
from .paths import resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.npy"
RESERVED = ("labels", "ids", "present")
LENGTHS = "__lengths"


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header alone."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fh)
            data_bytes = os.fstat(fh.fileno()).st_size - fh.tell()
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from exc
    shape, dtype = tuple(int(s) for s in shape), np.dtype(dtype)
    # The header's shape is only a claim: check it against the bytes that follow before anything is allocated.
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > data_bytes and not dtype.hasobject:  # object arrays: np.load refuses them (no pickles)
        raise DataError(f"{path}: its header declares shape {shape} of {dtype} ({declared:,} bytes) but the file "
                        f"holds {data_bytes:,} bytes of data; the file is truncated or damaged")
    return shape, dtype


def _load(path: Path, **kwargs: object) -> np.ndarray:
    """``np.load`` of a checked ``.npy`` file (header sizes verified first; numpy's errors become DataErrors)."""
    _header(path)
    try:
        return np.load(path, allow_pickle=False, **kwargs)  # type: ignore[arg-type]
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({str(exc)[:200]})") from None


class NpyFolder:
    """Your own features as train/valid/test folders of .npy files, memory-mapped: datasets bigger than memory."""

    def __init__(
        self,
        folder: str,
        modalities: list[str] | None = None,
        task: str = "regression",
        num_classes: int | None = None,
        mmap: bool = True,
        nonfinite: str = "error",
        standardize: str = "none",
    ) -> None:
        num_classes = task_options(NAME, task, num_classes, nonfinite)
        # With mmap the transformed features are copies in memory: standardise the files beforehand to keep mmap's
        # small footprint on large data.
        self.standardize = standardize_mode(NAME, standardize)
        if modalities is not None and (not modalities or len(set(modalities)) != len(modalities)):
            raise DataError(f"{NAME}: modalities must be distinct names, got {modalities}")
        self.folder = resolve(folder, "npy")
        self.names = None if modalities is None else [str(m) for m in modalities]
        self.task, self.mmap, self.nonfinite = task, bool(mmap), nonfinite
        self.num_classes = num_classes
        self._spec: DatasetSpec | None = None

    # ------------------------------------------------------------------------------------------------ spec
    def _files(self, split: str) -> dict[str, Path]:
        folder = self.folder / split
        if not folder.is_dir():
            raise DataNotFoundError(
                f"{NAME}: split folder not found: {folder}. The folder must hold train/, valid/ and test/ "
                f"sub-folders of .npy files (see docs/data.md, 'data.npy')."
            )
        return {p.stem: p for p in sorted(folder.glob("*.npy"))}

    @property
    def spec(self) -> DatasetSpec:
        """Modalities from the .npy headers (no array read); class count from the labels if not given."""
        if self._spec is None:
            files = {s: self._files(s) for s in SPLITS}
            found = [k for k in files["train"] if k not in RESERVED and LENGTHS not in k]
            names = self.names if self.names is not None else found
            if not names:
                raise DataError(f"{self.folder / 'train'}: holds no modality files (.npy other than {RESERVED})")
            specs = []
            for split, f in files.items():
                if "labels" not in f:
                    raise DataError(f"{self.folder / split}: lacks labels.npy")
                extra = sorted(k for k in f if k not in RESERVED and LENGTHS not in k and k not in names)
                if self.names is None and extra:
                    raise DataError(f"{self.folder / split}: modalities {extra} are not in train/")
                for key in f:
                    if LENGTHS in key and key[: -len(LENGTHS)] not in names:
                        raise DataError(f"{f[key]}: lengths of {key[: -len(LENGTHS)]!r}, which is not a modality")
            for m in names:
                shapes = {}
                for split in SPLITS:
                    if m not in files[split]:
                        raise DataError(f"{self.folder / split}: lacks {m}.npy (modalities: {', '.join(names)})")
                    shape, dtype = _header(files[split][m])
                    if len(shape) not in (2, 3):
                        raise DataError(f"{files[split][m]}: shape {shape}; expected (N, T, D) or (N, D)")
                    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
                        raise DataError(f"{files[split][m]}: dtype {dtype}; features must be real numbers")
                    if self.mmap and dtype != np.float32:
                        raise DataError(
                            f"{files[split][m]}: dtype {dtype}; memory mapping needs float32 on disk (save with "
                            f"arr.astype(np.float32), or set `mmap: false` to load and convert in memory)"
                        )
                    shapes[split] = shape[1:]
                if len(set(shapes.values())) != 1:
                    raise DataError(f"{NAME}: modality {m!r} has per-sample shapes {shapes} across splits; pad "
                                    f"sequences to one length T (give {m}{LENGTHS}.npy)")
                inner = shapes["train"]
                specs.append(ModalitySpec(m, int(inner[-1]), int(inner[0]) if len(inner) == 2 else None))
            num_classes = self.num_classes
            if self.task == "classification" and num_classes is None:
                top = max((int(np.max(_load(files[s]["labels"]))) for s in SPLITS
                           if _header(files[s]["labels"])[0][0]), default=-1)
                num_classes = max(top + 1, 2)
            self._spec = DatasetSpec(
                name=self.folder.name or "npy",
                modalities=tuple(specs),
                task=TaskSpec(self.task, num_classes=num_classes),  # type: ignore[arg-type]
            )
        return self._spec

    # ------------------------------------------------------------------------------------------------ load
    def load(self) -> dict[str, Split]:
        """Open (memory-map) and validate every split."""
        spec = self.spec
        splits = check_splits(NAME, {s: self._split(s, spec) for s in SPLITS}, spec)
        warn_label_traps(NAME, splits, spec, self.num_classes is not None)
        return standardize_splits(splits, self.standardize, spec.names)

    def _split(self, split: str, spec: DatasetSpec) -> Split:
        files = self._files(split)
        where = self.folder / split
        labels = user_labels(f"{files['labels']}:", _load(files["labels"]), spec)
        n = labels.shape[0]
        ids = user_ids(f"{files.get('ids')}:", _load(files["ids"]) if "ids" in files else None,
                       n, split)
        present = (user_present(f"{files['present']}:", _load(files["present"]), n, spec)
                   if "present" in files else None)
        mode = "r" if self.mmap else None
        feats: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        for m in spec.modalities:
            a = _load(files[m.name], mmap_mode=mode)
            if a.shape[0] != n:
                raise DataError(f"{files[m.name]}: {a.shape[0]} rows but labels.npy has {n}")
            feats[m.name] = a if self.mmap else a.astype(np.float32, copy=False)
            key = m.name + LENGTHS
            if key not in files:
                continue
            if m.length is None:
                raise DataError(f"{files[key]}: given but {m.name!r} is a vector modality (N, D)")
            lens = _load(files[key])
            if lens.shape != (n,) or not np.issubdtype(lens.dtype, np.number) or (lens != np.round(lens)).any() or (
                n and (lens.min() < 0 or lens.max() > m.length)
            ):
                raise DataError(f"{files[key]}: must be {n} whole numbers in [0, {m.length}]")
            lengths[m.name] = lens.astype(np.int64)
        if self.mmap:
            self._repair_mapped(split, feats, files, ids, str(where))
        else:
            handle_nonfinite(NAME, split, feats, ids, self.nonfinite, str(where))
        return Split(modalities=feats, labels=labels, ids=ids, lengths=lengths, present=present)


    def _repair_mapped(self, split: str, feats: dict[str, np.ndarray], files: dict[str, Path], ids: np.ndarray,
                       where: str) -> None:
        """The non-finite check of mapped features: blocks read with ``read_rows`` (not through the mapping, so
        the scan does not grow the resident set). ``nonfinite: zero`` re-opens an array that needs repair as a
        copy-on-write map (the file is not changed; only repaired pages are copied)."""
        bad = [n for n, a in feats.items() if count_nonfinite(_Blocks(a)).total]
        if not bad:
            return
        if self.nonfinite == "error":
            handle_nonfinite(NAME, split, {n: _Blocks(feats[n]) for n in bad}, ids, "error", where)
        repaired = {n: _load(files[n], mmap_mode="c") for n in bad}
        handle_nonfinite(NAME, split, repaired, ids, "zero", where)
        feats.update(repaired)


class _Blocks:
    """A read-only memory map seen through :func:`imrec.loader.read_rows` (for block-wise scans)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype = array, array.shape, array.dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        from imrec.loader import read_rows  # imports torch: only when features are read, not to list datasets

        return read_rows(self.array, rows)


def save(folder: str | Path, splits: Mapping[str, Split], names: Sequence[str] | None = None,
         rows_per_write: int = 4096) -> Path:
    """Write ``splits`` (train/valid/test) in the ``data.npy`` layout, features as float32.

    Arrays are copied ``rows_per_write`` rows at a time into ``.npy`` files opened with
    ``np.lib.format.open_memmap``, so a memory-mapped source is never loaded whole. Returns the folder.
    """
    folder = Path(folder).expanduser()
    for split in SPLITS:
        s = splits[split]
        out = folder / split
        out.mkdir(parents=True, exist_ok=True)
        for name in names if names is not None else list(s.modalities):
            src = s.modalities[name]
            dst = np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=np.float32, shape=src.shape)
            for start in range(0, src.shape[0], rows_per_write):
                dst[start : start + rows_per_write] = src[start : start + rows_per_write]
            dst.flush()
            del dst
        for name, lens in s.lengths.items():
            np.save(out / f"{name}{LENGTHS}.npy", np.asarray(lens, dtype=np.int64))
        np.save(out / "labels.npy", np.asarray(s.labels))
        np.save(out / "ids.npy", np.asarray(s.ids).astype(str))
        if s.present is not None:
            np.save(out / "present.npy", np.asarray(s.present, dtype=bool))
    return folder
