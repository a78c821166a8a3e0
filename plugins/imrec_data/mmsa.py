"""``data.mmsa``: the MMSA feature pickles of CMU-MOSI, CMU-MOSEI and CH-SIMS (``aligned_50.pkl`` …).

Schema (per split ``train`` / ``valid`` / ``test``): ``id`` ("video$_$clip"), ``regression_labels`` (N,),
``text`` (N, 50, 768) BERT features, ``audio`` (N, La, Da), ``vision`` (N, Lv, Dv), and for unaligned files
``audio_lengths`` / ``vision_lengths``; ``raw_text``, ``text_bert``, ``annotations`` and
``classification_labels`` may be present and are not needed (``text_bert``'s attention mask gives the text
lengths). The file is read with a restricted unpickler (numpy arrays only) and validated key by key.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from imrec.errors import DataError, DataNotFoundError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from . import safe_pickle
from .checks import SPLITS, DataWarning, as_str_ids, check_splits, handle_nonfinite, one_of
from .paths import data_dir, data_dir_note, resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.mmsa"
MODALITIES = ("text", "audio", "vision")
RELEASE = (
    "MMSA's processed feature pickles are linked from the 'Datasets' section of the MMSA README "
    "(https://github.com/thuiar/MMSA; Google Drive / Baidu Netdisk)"
)
# Published split sizes and (steps, width) per modality, per file (MMSA's README and config).
PUBLISHED: dict[str, dict[str, object]] = {
    "mosi": {
        "folder": "MOSI",
        "sizes": (1284, 229, 686),
        "label_range": (-3.0, 3.0),
        "files": {
            "aligned_50.pkl": {"text": (50, 768), "audio": (50, 5), "vision": (50, 20)},
            "unaligned_50.pkl": {"text": (50, 768), "audio": (375, 5), "vision": (500, 20)},
        },
    },
    "mosei": {
        "folder": "MOSEI",
        "sizes": (16326, 1871, 4659),
        "label_range": (-3.0, 3.0),
        "files": {
            "aligned_50.pkl": {"text": (50, 768), "audio": (50, 74), "vision": (50, 35)},
            "unaligned_50.pkl": {"text": (50, 768), "audio": (500, 74), "vision": (500, 35)},
        },
    },
    "sims": {
        "folder": "SIMS",
        "sizes": (1368, 456, 457),
        "label_range": (-1.0, 1.0),
        "files": {"unaligned_39.pkl": {"text": (39, 768), "audio": (400, 33), "vision": (55, 709)}},
    },
}
SHA256_PREFIXES = {
    ("mosi", "unaligned_50.pkl"): "78e0f8b5…2524",
    ("mosi", "aligned_50.pkl"): "d3994fd2…e5f9",
    ("mosei", "unaligned_50.pkl"): "ad8b23d5…ec1f",
    ("mosei", "aligned_50.pkl"): "45eccfb7…f791",
}


def _aligned_from_name(path: Path) -> bool | None:
    stem = path.name.lower()
    if stem.startswith("unaligned"):
        return False
    if stem.startswith("aligned"):
        return True
    return None


class MMSA:
    """MMSA feature pickles (MOSI, MOSEI, SIMS): validated schema, restricted unpickler, non-finite policy."""

    def __init__(
        self,
        path: str | None = None,
        dataset: str | None = None,
        aligned: bool | None = None,
        nonfinite: str = "zero",
        on_mismatch: str = "error",
        standardize: str = "none",
    ) -> None:
        self.standardize = standardize_mode(NAME, standardize)
        one_of(NAME, "dataset", dataset, [None, *PUBLISHED])
        one_of(NAME, "nonfinite", nonfinite, ["error", "zero"])
        one_of(NAME, "on_mismatch", on_mismatch, ["error", "warn"])
        self.dataset, self.nonfinite, self.on_mismatch = dataset, nonfinite, on_mismatch
        if path is None:
            if dataset is None:
                raise DataError(
                    f"{NAME}: give `path` (an MMSA pickle such as .../MOSI/aligned_50.pkl) or `dataset` "
                    f"(mosi, mosei, sims) to use <data dir>/mmsa/<DATASET>/<file>"
                )
            files = list(PUBLISHED[dataset]["files"])  # type: ignore[arg-type]
            if aligned is None:
                aligned = "aligned_50.pkl" in files
            name = "aligned_50.pkl" if aligned else next(f for f in files if f.startswith("unaligned"))
            if name not in files:
                raise DataError(f"{NAME}: {dataset} is published only as {', '.join(files)}")
            self.path = data_dir() / "mmsa" / str(PUBLISHED[dataset]["folder"]) / name
        else:
            self.path = resolve(path, "mmsa")
            if aligned is None:
                aligned = _aligned_from_name(self.path)
        self.aligned = aligned
        self._spec: DatasetSpec | None = self._published_spec()
        self._loaded: dict[str, Split] | None = None

    # ---------------------------------------------------------------------------------------------- spec
    def _published_spec(self) -> DatasetSpec | None:
        """The spec from the published shapes, when dataset and file are known (no file access)."""
        if self.dataset is None:
            return None
        shapes = PUBLISHED[self.dataset]["files"].get(self.path.name)  # type: ignore[union-attr]
        if shapes is None:
            return None
        return self._make_spec({m: shapes[m] for m in MODALITIES})

    def _make_spec(self, shapes: dict[str, tuple[int, int]]) -> DatasetSpec:
        label_range = PUBLISHED[self.dataset]["label_range"] if self.dataset else None
        return DatasetSpec(
            name=f"mmsa-{self.dataset}" if self.dataset else "mmsa",
            modalities=tuple(ModalitySpec(m, shapes[m][1], shapes[m][0]) for m in MODALITIES),
            task=TaskSpec("regression", label_range=label_range),  # type: ignore[arg-type]
        )

    @property
    def spec(self) -> DatasetSpec:
        """Published shapes when ``dataset`` names a known file; otherwise read from the file (a full load)."""
        if self._spec is None:
            self._loaded = self.load()
        assert self._spec is not None
        return self._spec

    # ---------------------------------------------------------------------------------------------- load
    def check(self) -> None:
        """Raise a DataError saying where to get the pickle if it is absent."""
        if self.path.is_file():
            return
        prefix = SHA256_PREFIXES.get((self.dataset or "", self.path.name))
        sums = "; ".join(f"{d} {f}: {p}" for (d, f), p in SHA256_PREFIXES.items())
        raise DataNotFoundError(
            f"{NAME}: MMSA pickle not found: {self.path}\n"
            f"  {RELEASE}. Download {self.path.name} and place it at that path, or give `path:` in the recipe"
            f" (the default is <data dir>/mmsa/<MOSI|MOSEI|SIMS>/<file>; data dir: {data_dir()}, because "
            f"{data_dir_note()}).\n"
            f"  Published SHA-256 (prefix…suffix): "
            + (f"{prefix} for this file; all: {sums}" if prefix else sums)
        )

    def load(self) -> dict[str, Split]:
        """Read, validate and convert the pickle; features stay float32 and are converted in place."""
        if self._loaded is not None:
            loaded, self._loaded = self._loaded, None
            return loaded
        self.check()
        raw = safe_pickle.load(self.path)
        where = str(self.path)
        if not isinstance(raw, dict):
            raise DataError(f"{where}: expected a dict with keys train, valid, test; found {type(raw).__name__}")
        missing = [s for s in SPLITS if s not in raw]
        if missing:
            raise DataError(f"{where}: missing split(s) {missing}; top-level keys are {sorted(map(str, raw))}")
        aligned = self.aligned
        if aligned is None:
            aligned = "audio_lengths" not in raw["train"] if isinstance(raw["train"], dict) else True
        splits: dict[str, Split] = {}
        for split in SPLITS:
            # Pop as we go so each converted array replaces its original instead of living beside it.
            splits[split] = self._split(raw.pop(split), split, aligned, where)
        del raw
        shapes = {}
        for m in MODALITIES:
            seen = {s: splits[s].modalities[m].shape[1:] for s in SPLITS}
            if len(set(seen.values())) != 1:
                raise DataError(f"{where}: {m} has different (steps, width) across splits: {seen}")
            shapes[m] = seen["train"]
        actual = self._make_spec(shapes)
        self._compare_published(actual, {s: len(splits[s]) for s in SPLITS}, where)
        self._spec = actual
        return standardize_splits(check_splits(NAME, splits, actual), self.standardize, actual.names)

    def _split(self, d: object, split: str, aligned: bool, where: str) -> Split:
        if not isinstance(d, dict):
            raise DataError(f"{where}: split {split!r} must be a dict of arrays, found {type(d).__name__}")
        required = ["id", "regression_labels", *MODALITIES]
        if not aligned:
            required += ["audio_lengths", "vision_lengths"]
        missing = [k for k in required if k not in d]
        if missing:
            kind = "aligned" if aligned else "unaligned"
            raise DataError(
                f"{where}: split {split!r} lacks key(s) {missing} required in {kind} MMSA data; "
                f"its keys are {sorted(map(str, d))}"
            )
        raw_ids = np.asarray(d.pop("id"))
        if raw_ids.ndim != 1:
            raise DataError(f"{where}: {split}/id must be 1-D, has shape {raw_ids.shape}")
        n = len(raw_ids)
        ids = as_str_ids(str(i).replace("$_$", "_") for i in raw_ids)
        labels = np.asarray(d.pop("regression_labels"))
        if labels.shape not in ((n,), (n, 1)) or not np.issubdtype(labels.dtype, np.number):
            raise DataError(
                f"{where}: {split}/regression_labels must be {n} numbers (shape ({n},)), "
                f"has shape {labels.shape} dtype {labels.dtype}"
            )
        labels = labels.reshape(n).astype(np.float32, copy=False)
        if not np.isfinite(labels).all():
            bad = np.flatnonzero(~np.isfinite(labels))
            raise DataError(f"{where}: {split}/regression_labels has {len(bad)} non-finite values, e.g. ids {list(ids[bad[:5]])}")
        feats: dict[str, np.ndarray] = {}
        for m in MODALITIES:
            a = d.pop(m)
            if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[0] != n:
                shape = getattr(a, "shape", type(a).__name__)
                raise DataError(f"{where}: {split}/{m} must be an array (N={n}, steps, width); found {shape}")
            if not np.issubdtype(a.dtype, np.number):
                raise DataError(f"{where}: {split}/{m} must be numeric, is {a.dtype}")
            feats[m] = a if a.dtype == np.float32 else a.astype(np.float32)
            del a
        lengths: dict[str, np.ndarray] = {}
        for m in ("audio", "vision") if not aligned else ():
            lengths[m] = self._lengths(d.pop(f"{m}_lengths"), n, feats[m].shape[1], f"{split}/{m}_lengths", where)
        bert = d.pop("text_bert", None)
        if isinstance(bert, np.ndarray) and bert.shape == (n, 3, feats["text"].shape[1]):
            lengths["text"] = (bert[:, 1, :] > 0).sum(axis=1).astype(np.int64)
        d.clear()
        handle_nonfinite(NAME, split, feats, ids, self.nonfinite, where)
        return Split(modalities=feats, labels=labels, ids=ids, lengths=lengths)

    @staticmethod
    def _lengths(a: object, n: int, steps: int, key: str, where: str) -> np.ndarray:
        a = np.asarray(a)
        if a.shape not in ((n,), (n, 1)) or not np.issubdtype(a.dtype, np.number):
            raise DataError(f"{where}: {key} must be {n} integers, has shape {a.shape} dtype {a.dtype}")
        a = a.reshape(n)
        if not np.isfinite(a).all() or (a != np.round(a)).any() or (n and (a.min() < 0 or a.max() > steps)):
            raise DataError(f"{where}: {key} must hold whole numbers in [0, {steps}] (the padded length)")
        return a.astype(np.int64)

    def _compare_published(self, actual: DatasetSpec, sizes: dict[str, int], where: str) -> None:
        if self.dataset is None:
            return
        pub = PUBLISHED[self.dataset]
        problems = []
        want_sizes = dict(zip(SPLITS, pub["sizes"]))  # type: ignore[arg-type]
        if sizes != want_sizes:
            problems.append(f"split sizes {sizes} differ from the published {want_sizes}")
        shapes = pub["files"].get(self.path.name)  # type: ignore[union-attr]
        if shapes is not None:
            for m in actual.modalities:
                if (m.length, m.dim) != tuple(shapes[m.name]):
                    problems.append(f"{m.name} is (steps, width) = {(m.length, m.dim)}, published {tuple(shapes[m.name])}")
        if not problems:
            return
        text = f"{where}: declared dataset {self.dataset!r} but " + "; ".join(problems)
        if self.on_mismatch == "error":
            raise DataError(text + ". Use the published file, or set `on_mismatch: warn` to use this one anyway.")
        warnings.warn(text, DataWarning, stacklevel=3)
