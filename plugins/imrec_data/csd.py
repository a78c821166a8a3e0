"""``data.csd``: CMU-MultimodalSDK computational sequences (``.csd``, HDF5), aligned to the label intervals.

Layout of a ``.csd`` file: one root group ``<name>`` with ``data/<video_id>/features`` (T, D) and
``data/<video_id>/intervals`` (T, 2, seconds), plus ``metadata/<key>``. One file per modality and one label
sequence whose rows (one interval each) are the samples.

Alignment (the SDK's ``align`` with its averaging collapse function): for each label interval, take the
feature steps that overlap it (a zero-length step counts when it lies inside). With ``max_length: null`` the
sample's modality is the plain mean of those steps — one vector per utterance. With ``max_length: L`` the
overlapping steps are kept in time order, the first L of them, zero-padded, and ``lengths`` holds how many
were kept. A sample with no overlapping step of a modality gets zeros and ``present = False`` for it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from imrec.errors import DataError
from imrec.interfaces import DatasetSpec, ModalitySpec, Split, TaskSpec

from .checks import SPLITS, DataWarning, as_str_ids, check_splits, count_nonfinite, one_of
from .paths import data_dir, missing_files_error, resolve
from .standardize import standardize_mode, standardize_splits

NAME = "data.csd"
STANDARD_FOLDS = {"mosi": "mosi_std_folds.json", "mosei": "mosei_std_folds.json"}
FOLDS_FOLDER = "mosi_bclstm"  # `imrec data get mosi-bclstm` puts the SDK's standard folds there


def h5py_module() -> Any:
    """h5py, imported only when a .csd file is read."""
    try:
        import h5py
    except ImportError as exc:
        raise DataError(f"{NAME}: reading CMU-SDK .csd files needs h5py: pip install 'imrec[h5py]'") from exc
    return h5py


def read_folds(path: Path) -> dict[str, list[str]]:
    """Video-id folds from a JSON file with lists ``train``, ``valid``, ``test`` (other keys are ignored)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable folds JSON file ({exc})") from exc
    folds = {}
    for split in SPLITS:
        ids = raw.get(split) if isinstance(raw, dict) else None
        if not isinstance(ids, list) or not all(isinstance(v, (str, int)) for v in ids):
            raise DataError(f"{path}: needs a list of video ids under {split!r} (keys train, valid, test)")
        folds[split] = [str(v) for v in ids]
    return folds


# HDF5 datasets declare their shape; compressed storage can be ~1000x smaller than the data (deflate's limit), but a
# dataset claiming more than that over the bytes it really stores is crafted or damaged: refused before reading.
_MAX_EXPANSION = 1100


def _array(group: Any, key: str, path: Path, video: str, dtype: Any = None) -> np.ndarray:
    """``group[key]`` read as an array after checking its declared size against its stored bytes."""
    try:
        ds = group[key]
        declared = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
        stored = int(ds.id.get_storage_size())
    except (KeyError, TypeError, AttributeError, ValueError, OSError) as exc:
        raise DataError(f"{path}: {video}/{key}: not a readable dataset ({str(exc)[:200]})") from None
    if declared > _MAX_EXPANSION * stored + (1 << 20):
        raise DataError(f"{path}: {video}/{key} declares shape {tuple(ds.shape)} ({declared:,} bytes) but stores "
                        f"{stored:,} bytes; the file is damaged or not a CMU-SDK .csd file")
    return np.asarray(ds, dtype=dtype)


def _root(f: Any, path: Path) -> Any:
    roots = list(f.keys())
    if len(roots) != 1 or "data" not in f[roots[0]]:
        raise DataError(
            f"{path}: not a computational sequence: expected one root group holding 'data' and 'metadata', "
            f"found top-level keys {roots}"
        )
    return f[roots[0]]["data"]


class CSD:
    """CMU-SDK computational sequences (.csd): per-modality files aligned to a label sequence, split by video folds."""

    def __init__(
        self,
        path: str | None = None,
        features: dict[str, str] | None = None,
        labels: str = "labels",
        folds: str = "mosi",
        max_length: int | None = None,
        label_index: int = 0,
        task: str = "regression",
        num_classes: int | None = None,
        nonfinite: str = "zero",
        standardize: str = "none",
    ) -> None:
        one_of(NAME, "task", task, ["regression", "classification"])
        self.standardize = standardize_mode(NAME, standardize)
        one_of(NAME, "nonfinite", nonfinite, ["error", "zero"])
        if task == "classification" and (num_classes is None or int(num_classes) < 2):
            raise DataError(f"{NAME}: task: classification needs num_classes >= 2")
        if max_length is not None and int(max_length) < 1:
            raise DataError(f"{NAME}: max_length must be positive or null (null = one averaged vector per sample)")
        self.root = resolve(path, "csd")
        self.labels_path = self._file(labels)
        if features is None:
            found = sorted(p for p in self.root.glob("*.csd") if p.resolve() != self.labels_path.resolve())
            self.features = {p.stem: p for p in found}
        else:
            self.features = {str(k): self._file(v) for k, v in features.items()}
        if folds in STANDARD_FOLDS:
            self.folds_path = data_dir() / FOLDS_FOLDER / STANDARD_FOLDS[folds]
        else:
            self.folds_path = resolve(folds, FOLDS_FOLDER)
        self.max_length = None if max_length is None else int(max_length)
        self.label_index = int(label_index)
        self.task, self.nonfinite = task, nonfinite
        self.num_classes = int(num_classes) if num_classes is not None else None
        self._spec: DatasetSpec | None = None

    def _file(self, name: str) -> Path:
        p = Path(os.path.expanduser(str(name)))
        if p.suffix != ".csd":
            p = p.with_name(p.name + ".csd")
        return p if p.is_absolute() else self.root / p

    def check(self) -> None:
        """Raise a DataError listing every absent file (features, labels, folds)."""
        if not self.features and self.root.is_dir():
            raise DataError(f"{NAME}: no feature .csd files in {self.root} besides the labels {self.labels_path.name}")
        wanted = [*self.features.values(), self.labels_path, self.folds_path]
        missing = [p for p in wanted if not p.is_file()] or ([self.root] if not self.features else [])
        if missing:
            raise missing_files_error(
                NAME,
                missing,
                "download the computational sequences (.csd) of your dataset with the CMU-MultimodalSDK and put "
                "them in the folder given by `path`; `imrec data get mosi-bclstm` fetches the SDK's standard folds",
                param="path",
            )

    @property
    def spec(self) -> DatasetSpec:
        """Modality widths read from each file's first video (a header read, no feature arrays)."""
        if self._spec is None:
            self.check()
            h5py = h5py_module()
            mods = []
            for name, path in self.features.items():
                with h5py.File(path, "r") as f:
                    data = _root(f, path)
                    first = next(iter(data.keys()), None)
                    if first is None:
                        raise DataError(f"{path}: holds no videos")
                    shape = data[first]["features"].shape
                    if len(shape) != 2:
                        raise DataError(f"{path}: {first}/features must be (steps, width), has shape {shape}")
                mods.append(ModalitySpec(name, int(shape[1]), self.max_length))
            self._spec = DatasetSpec(
                name="csd",
                modalities=tuple(mods),
                task=TaskSpec(self.task, num_classes=self.num_classes),  # type: ignore[arg-type]
            )
        return self._spec

    # ---------------------------------------------------------------------------------------------- load
    def load(self) -> dict[str, Split]:
        """Align every modality to the label intervals and split the samples by the video folds."""
        spec = self.spec
        h5py = h5py_module()
        folds = read_folds(self.folds_path)
        rows: dict[str, list[tuple[str, int, np.ndarray, float]]] = {s: [] for s in SPLITS}
        absent_videos: list[str] = []
        with h5py.File(self.labels_path, "r") as f:
            data = _root(f, self.labels_path)
            for split in SPLITS:
                for video in folds[split]:
                    if video not in data:
                        absent_videos.append(video)
                        continue
                    feats = _array(data[video], "features", self.labels_path, video)
                    ivals = _array(data[video], "intervals", self.labels_path, video, np.float64)
                    if feats.ndim != 2 or ivals.shape != (len(feats), 2) or self.label_index >= feats.shape[1]:
                        raise DataError(
                            f"{self.labels_path}: {video}: features {feats.shape} / intervals {ivals.shape} do not "
                            f"fit (need (n, >{self.label_index}) and (n, 2))"
                        )
                    for i in range(len(feats)):
                        rows[split].append((video, i, ivals[i], float(feats[i, self.label_index])))
        if absent_videos:
            warnings.warn(
                f"{NAME}: {len(absent_videos)} fold videos are not in {self.labels_path.name}, e.g. "
                f"{', '.join(absent_videos[:5])}; they are skipped",
                DataWarning,
                stacklevel=2,
            )
        splits = {s: self._split(s, rows[s], spec, h5py) for s in SPLITS}
        return standardize_splits(check_splits(NAME, splits, spec), self.standardize, spec.names)

    def _labels(self, values: list[float], split: str) -> np.ndarray:
        y = np.asarray(values, dtype=np.float64)
        if not np.isfinite(y).all():
            raise DataError(f"{self.labels_path}: {int((~np.isfinite(y)).sum())} non-finite labels in split {split!r}")
        if self.task == "regression":
            return y.astype(np.float32)
        if (y != np.round(y)).any() or (len(y) and (y.min() < 0 or y.max() >= (self.num_classes or 0))):
            raise DataError(
                f"{self.labels_path}: classification labels must be whole numbers 0..{(self.num_classes or 0) - 1}"
            )
        return y.astype(np.int64)

    def _split(self, split: str, rows: list[tuple[str, int, np.ndarray, float]], spec: DatasetSpec, h5py: Any) -> Split:
        n = len(rows)
        ids = as_str_ids(f"{video}[{i}]" for video, i, _, _ in rows)
        labels = self._labels([r[3] for r in rows], split)
        by_video: dict[str, list[int]] = {}
        for row, (video, *_rest) in enumerate(rows):
            by_video.setdefault(video, []).append(row)
        present = np.ones((n, len(spec.modalities)), dtype=bool)
        modalities: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        for k, m in enumerate(spec.modalities):
            path = self.features[m.name]
            shape = (n, m.dim) if self.max_length is None else (n, self.max_length, m.dim)
            out = np.zeros(shape, dtype=np.float32)
            used = np.zeros(n, dtype=np.int64)
            bad_values, bad_videos = 0, []
            with h5py.File(path, "r") as f:
                data = _root(f, path)
                for video, idx in by_video.items():
                    if video not in data:
                        continue
                    feats = _array(data[video], "features", path, video, np.float32)
                    ivals = _array(data[video], "intervals", path, video, np.float64)
                    if feats.ndim != 2 or feats.shape[1] != m.dim or ivals.shape != (len(feats), 2):
                        raise DataError(
                            f"{path}: {video}: features {feats.shape} / intervals {ivals.shape}; expected "
                            f"(steps, {m.dim}) and (steps, 2)"
                        )
                    nf = count_nonfinite(feats)
                    if nf.total:
                        bad_values += nf.total
                        bad_videos.append(video)
                        feats[~np.isfinite(feats)] = 0.0
                    order = np.argsort(ivals[:, 0], kind="stable")
                    feats, ivals = feats[order], ivals[order]
                    label_ivals = np.stack([rows[r][2] for r in idx])
                    overlap = self._overlap(label_ivals, ivals)
                    for j, r in enumerate(idx):
                        steps = np.flatnonzero(overlap[j])
                        if self.max_length is None:
                            if len(steps):
                                out[r] = feats[steps].mean(axis=0)
                            used[r] = min(len(steps), 1)
                        else:
                            steps = steps[: self.max_length]
                            out[r, : len(steps)] = feats[steps]
                            used[r] = len(steps)
            if bad_values:
                text = (
                    f"{path}: {bad_values} non-finite feature values in {len(bad_videos)} videos, e.g. "
                    f"{', '.join(bad_videos[:5])}"
                )
                if self.nonfinite == "error":
                    raise DataError(f"{NAME}: {text}. Set `nonfinite: zero` to replace them by 0.")
                warnings.warn(f"{NAME}: {text}; replaced by 0", DataWarning, stacklevel=3)
            present[:, k] = used > 0
            modalities[m.name] = out
            if self.max_length is not None:
                lengths[m.name] = used
        return Split(
            modalities=modalities,
            labels=labels,
            ids=ids,
            lengths=lengths,
            present=None if present.all() else present,
        )

    @staticmethod
    def _overlap(labels: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """(n_labels, n_steps) bool: step overlaps the label interval (zero-length steps: lie inside it)."""
        ls, le = labels[:, :1], labels[:, 1:]
        ss, se = steps[None, :, 0], steps[None, :, 1]
        inter = np.minimum(se, le) - np.maximum(ss, ls)
        point = (se == ss) & (ss >= ls) & (ss < le)
        return (inter > 0) | point
