"""``data.handwritten``: UCI Multiple Features (handwritten digits), six real views, 10-class classification.

``handwritten_6views.mat`` (the file of the incomplete multi-view literature: TMC, CPM-Nets) holds 2000 digits
split 1600 / 400, keys ``x1_train … x6_test`` and ``gt_train`` / ``gt_test`` (labels 1..10). The views, named
after UCI's files: pix (240 pixel averages), fou (76 Fourier coefficients), fac (216 profile correlations),
zer (47 Zernike moments), kar (64 Karhunen-Loève coefficients), mor (6 morphological features).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import as_str_ids, check_splits, fraction, handle_nonfinite
from .manifest import BUNDLES
from .paths import missing_files_error, resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.handwritten"
BUNDLE = BUNDLES["handwritten"]
FILE = "handwritten_6views.mat"
VIEWS = (("pix", 240), ("fou", 76), ("fac", 216), ("zer", 47), ("kar", 64), ("mor", 6))
SIZES = {"train": 1600, "test": 400}
CLASSES = 10


class Handwritten:
    """UCI handwritten digits, six views (pix 240, fou 76, fac 216, zer 47, kar 64, mor 6); 10 classes."""

    def __init__(
        self,
        root: str | None = None,
        valid_fraction: float = 0.125,
        split_seed: int = 0,
        standardize: bool | str = "train",
    ) -> None:
        self.root = resolve(root, BUNDLE.folder)
        self.valid_fraction = fraction(NAME, "valid_fraction", valid_fraction, low_open=True)
        self.split_seed = int(split_seed)
        self.standardize = standardize_mode(NAME, standardize)
        self.spec = DatasetSpec(
            name="handwritten",
            modalities=tuple(ModalitySpec(n, d) for n, d in VIEWS),
            task=TaskSpec("classification", num_classes=CLASSES),
        )

    @property
    def path(self) -> Path:
        return self.root / FILE

    def check(self) -> None:
        """Raise a DataError naming the absent file and how to get it."""
        if not self.path.is_file():
            raise missing_files_error(NAME, [self.path], "imrec data get handwritten")

    def load(self) -> dict[str, Split]:
        """Read the views, carve a stratified validation set from train, standardise with train statistics."""
        self.check()
        import scipy.io

        try:
            mat = scipy.io.loadmat(self.path)
        except Exception as exc:  # scipy's readers raise many types (MatReadError, IndexError …) on a bad file
            raise DataError(f"{self.path}: not a readable MATLAB file ({type(exc).__name__}: {exc}); fetch it again") from exc
        raw: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
        for split, n in SIZES.items():
            views = {}
            for k, (name, dim) in enumerate(VIEWS, start=1):
                key = f"x{k}_{split}"
                if key not in mat:
                    raise DataError(f"{self.path}: key {key!r} missing; keys are {sorted(k for k in mat if not k.startswith('__'))}")
                if mat[key].shape != (n, dim):
                    raise DataError(f"{self.path}: {key} has shape {mat[key].shape}, expected {(n, dim)} ({name})")
                views[name] = mat[key].astype(np.float32)
            gt = np.asarray(mat.get(f"gt_{split}", np.zeros(0)))
            if gt.size != n or not np.isin(gt, np.arange(1, CLASSES + 1)).all():
                raise DataError(f"{self.path}: gt_{split} must hold {n} labels in 1..{CLASSES}, has shape {gt.shape}")
            raw[split] = (views, gt.reshape(n).astype(np.int64) - 1)

        views, labels = raw["train"]
        rng = np.random.default_rng(self.split_seed)
        is_valid = np.zeros(len(labels), dtype=bool)
        for c in range(CLASSES):
            members = np.flatnonzero(labels == c)
            take = max(1, int(round(self.valid_fraction * len(members))))
            is_valid[rng.choice(members, size=take, replace=False)] = True
        rows = {"train": np.flatnonzero(~is_valid), "valid": np.flatnonzero(is_valid)}
        splits = {
            s: Split(
                modalities={m: np.ascontiguousarray(a[r]) for m, a in views.items()},
                labels=labels[r],
                ids=as_str_ids(f"train{i:04d}" for i in r),
            )
            for s, r in rows.items()
        }
        test_views, test_labels = raw["test"]
        splits["test"] = Split(test_views, test_labels, as_str_ids(f"test{i:04d}" for i in range(len(test_labels))))
        for name, s in splits.items():
            handle_nonfinite(NAME, name, s.modalities, s.ids, "error", str(self.path))
        # Statistics of the training rows only: valid and test must not inform the preprocessing.
        return standardize_splits(check_splits(NAME, splits, self.spec), self.standardize, self.spec.names)
