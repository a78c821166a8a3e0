"""``imrec data check FOLDER``: every problem of a user's ``data.npz`` or ``data.npy`` folder at once.

The loader stops at its first error; this check reads the raw arrays itself and reports everything it can see in
one pass — the loader's own verdict (its first error, or its warnings), plus the traps a loader cannot refuse
because the data is legal but probably not what the user meant:

* class labels that start at 1 (MATLAB style: class 0 empty) or have gaps; classes absent from TRAIN;
* whole-number labels with few distinct values under ``task: regression`` (classes trained as a regression);
* constant features, features on very different scales, and the scale ratio between modalities (the models
  see raw values unless the loader standardises them: ``standardize: train``);
* splits so small that an epoch is one or two optimiser steps, or that VALID cannot select a model;
* per-modality missingness (``present``) and all-zero rows that look like missing modalities not marked so.

It ends with a summary and the settings it recommends. Findings are ``error`` (the loader refuses the data, or
it cannot be used), ``warning`` (legal but likely wrong) and ``note``; only errors make the command fail.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imrec.errors import ImrecError

from .checks import SPLITS

RESERVED = ("labels", "ids", "present")
LENGTHS = "__lengths"
# Whole-number labels with at most this many distinct values look like classes, not a continuous target.
MAX_CLASS_LIKE = 20
# A modality whose typical feature std or mean/std is outside these bounds is reported as not standardised.
STD_RANGE = (0.2, 5.0)
MEAN_OVER_STD = 2.0
# Modalities whose typical scales differ by more than this factor dominate one another before standardisation.
SCALE_RATIO = 10.0
MIN_VALID = 30
BLOCK_ELEMENTS = 1 << 22


@dataclass
class Finding:
    level: str  # "error" | "warning" | "note"
    where: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "where": self.where, "message": self.message}


@dataclass
class Report:
    """What ``data check`` found: the findings, a per-split summary and the recommended settings."""

    folder: Path
    format: str
    findings: list[Finding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    recommended: dict[str, Any] = field(default_factory=dict)
    command: str = ""

    def add(self, level: str, where: str, message: str) -> None:
        self.findings.append(Finding(level, where, message))

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "format": self.format, "findings": [f.as_dict() for f in self.findings],
                "summary": self.summary, "recommended": self.recommended, "command": self.command}


# ------------------------------------------------------------------------------------------------ reading
def detect_format(folder: Path) -> str:
    """``npz`` (train.npz …) or ``npy`` (train/ …); a DataError naming what was looked for otherwise."""
    from imrec.errors import DataNotFoundError

    if (folder / "train.npz").is_file() or any((folder / f"{s}.npz").is_file() for s in SPLITS):
        return "npz"
    if any((folder / s).is_dir() for s in SPLITS):
        return "npy"
    raise DataNotFoundError(
        f"{folder}: neither an npz folder (train.npz, valid.npz, test.npz) nor an npy folder (train/, valid/, "
        f"test/ of .npy files); see docs/data.md, sections '`data.npz`' and '`data.npy`'"
    )


def _read_raw(folder: Path, fmt: str, report: Report) -> dict[str, dict[str, np.ndarray]]:
    """Every array of every split that can be read (npy files memory-mapped); unreadable ones are findings."""
    raw: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLITS:
        arrays: dict[str, np.ndarray] = {}
        if fmt == "npz":
            path = folder / f"{split}.npz"
            if not path.is_file():
                report.add("error", str(path), "missing: the folder needs train.npz, valid.npz and test.npz")
                continue
            try:
                with np.load(path, allow_pickle=False) as npz:
                    for key in npz.files:
                        try:
                            arrays[key] = npz[key]
                        except ValueError:
                            report.add("error", f"{path}: {key!r}", "an object array (not loaded: allow_pickle="
                                       "False); save ids with np.array(ids, dtype=str) and features as numbers")
            except (ValueError, OSError) as exc:
                report.add("error", str(path), f"not a readable .npz file ({exc})")
                continue
        else:
            sub = folder / split
            if not sub.is_dir():
                report.add("error", str(sub), "missing: the folder needs train/, valid/ and test/ sub-folders")
                continue
            for path in sorted(sub.glob("*.npy")):
                try:
                    arrays[path.stem] = np.load(path, mmap_mode="r", allow_pickle=False)
                except (ValueError, OSError) as exc:
                    report.add("error", str(path), f"not a readable .npy file ({exc})")
        raw[split] = arrays
    return raw


def _feature_stats(arr: np.ndarray, lengths: np.ndarray | None, rows: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Per-feature mean and std over samples (and valid steps) of the rows ``rows`` (None = all), in float64,
    block by block; non-finite values are left out. None if nothing to average."""
    d = arr.shape[-1]
    s1, s2, n = np.zeros(d), np.zeros(d), np.zeros(d)
    per_row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)))
    step = max(1, BLOCK_ELEMENTS // per_row)
    for start in range(0, arr.shape[0], step):
        stop = min(start + step, arr.shape[0])
        block = np.asarray(arr[start:stop], dtype=np.float64)
        keep = np.isfinite(block)
        if rows is not None:
            keep &= rows[start:stop].reshape((-1,) + (1,) * (block.ndim - 1))
        if block.ndim == 3 and lengths is not None:
            steps = np.arange(block.shape[1])[None, :, None]
            keep &= steps < lengths[start:stop, None, None]
        block = np.where(keep, block, 0.0)
        axes = tuple(range(block.ndim - 1))
        s1 += block.sum(axis=axes)
        s2 += (block * block).sum(axis=axes)
        n += keep.sum(axis=axes)
    if not n.any():
        return None
    count = np.maximum(n, 1)
    mean = s1 / count
    var = np.maximum(s2 / count - mean * mean, 0.0)
    return mean, np.sqrt(var), int(n.max())


# ------------------------------------------------------------------------------------------------- checks
def check_folder(folder: str | Path, params: dict[str, Any] | None = None, batch_size: int = 32) -> Report:
    """Check the npz or npy folder ``folder`` as ``data.npz`` / ``data.npy`` would load it with ``params``
    (``task``, ``num_classes``, ``nonfinite``, ``standardize`` …) for training with ``batch_size``."""
    folder = Path(folder).expanduser()
    fmt = detect_format(folder)
    params = dict(params or {})
    report = Report(folder, fmt)
    task = params.get("task", "regression")
    raw = _read_raw(folder, fmt, report)
    names = _modality_names(raw, fmt, params, report)
    _check_loader(folder, fmt, params, report)
    labels = {s: a["labels"] for s, a in raw.items() if "labels" in a}
    for s, a in raw.items():
        if "labels" not in a:
            report.add("error", f"{s}", "no 'labels' array")
    presents = {s: a.get("present") for s, a in raw.items()}
    usable_labels = {s: np.asarray(v) for s, v in labels.items()
                     if v.ndim == 1 and np.issubdtype(v.dtype, np.number)}
    for s, v in labels.items():
        if s not in usable_labels:
            report.add("error", f"{s}: labels", f"must be a 1-D numeric array (N,), has shape {v.shape} dtype "
                       f"{v.dtype}" + (" (an (N, 1) column: save labels.ravel())" if v.ndim == 2
                                       and v.shape[1] == 1 else ""))
    task_guess = _check_labels(usable_labels, task, params.get("num_classes"), report)
    _check_sizes(raw, usable_labels, task, batch_size, report)
    scales = _check_features(raw, names, usable_labels, params, report)
    _check_missingness(raw, names, presents, report)
    _summary(report, raw, names, usable_labels, task, scales)
    _recommend(report, folder, fmt, names, usable_labels, task, task_guess, scales, batch_size, params)
    order = {"error": 0, "warning": 1, "note": 2}
    report.findings.sort(key=lambda f: order[f.level])
    return report


def _modality_names(raw: dict[str, dict[str, np.ndarray]], fmt: str, params: dict[str, Any],
                    report: Report) -> list[str]:
    train = raw.get("train", {})
    names = [k for k in train if k not in RESERVED and "__" not in k]
    if fmt == "npy" and params.get("modalities"):
        names = [str(m) for m in params["modalities"]]
    if raw.get("train") is not None and not names:
        report.add("error", "train", f"holds no modality arrays (arrays other than {', '.join(RESERVED)})")
    if len(names) == 1:
        report.add("warning", "modalities", f"only one modality ({names[0]!r}): nothing can be missing or "
                   "recovered (random missing rates are capped at (K-1)/K = 0)")
    for s, arrays in raw.items():
        for m in names:
            a = arrays.get(m)
            if a is not None and a.ndim not in (2, 3):
                report.add("error", f"{s}/{m}", f"shape {a.shape}; expected (N, D) vectors or (N, T, D) sequences")
    return names


def _check_loader(folder: Path, fmt: str, params: dict[str, Any], report: Report) -> None:
    """The loader's verdict: its (first) error, or the warnings it raised while loading."""
    from . import DATASETS

    factory = DATASETS["npz" if fmt == "npz" else "npy"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            factory(folder=str(folder), **params).load()
        except ImrecError as exc:
            report.add("error", f"data.{fmt} loader", str(exc))
        except TypeError as exc:  # a parameter the loader does not take
            report.add("error", f"data.{fmt} parameters", str(exc))
    # The label traps the loader warns about are reported below with more detail: not twice.
    own = ("task is regression but the labels", "(1-based?)", "have no sample in any split")
    for w in caught:
        if not any(o in str(w.message) for o in own):
            report.add("warning", f"data.{fmt} loader", str(w.message))


def _check_labels(labels: dict[str, np.ndarray], task: str, num_classes: int | None, report: Report) -> str | None:
    """Label traps; returns ``"classification"`` when the labels look like class indices."""
    if not labels:
        return None
    finite = {s: v[np.isfinite(v)] for s, v in labels.items()}
    for s, v in labels.items():
        bad = int((~np.isfinite(v)).sum())
        if bad:
            report.add("error", f"{s}: labels", f"{bad} non-finite labels")
    every = np.concatenate([v for v in finite.values()]) if finite else np.zeros(0)
    if every.size == 0:
        return None
    whole = bool(np.all(every == np.round(every)))
    values = np.unique(every)
    looks_like_classes = whole and len(values) <= MAX_CLASS_LIKE
    if task == "regression":
        if looks_like_classes:
            report.add("warning", "labels", f"task is regression but the labels are {len(values)} whole numbers "
                       f"({_values(values)}): if they are classes, set task: classification (a regression head "
                       "would predict between classes and be scored with regression metrics)")
        return "classification" if looks_like_classes else None
    if not whole:
        report.add("error", "labels", "task is classification but some labels are not whole numbers "
                   f"(e.g. {every[every != np.round(every)][:3].tolist()})")
        return None
    lo, hi = int(values.min()), int(values.max())
    c = int(num_classes) if num_classes is not None else hi + 1
    train = finite.get("train", np.zeros(0)).astype(np.int64)
    if lo < 0:
        report.add("error", "labels", f"negative class labels (down to {lo}); classes must be 0..C-1")
    if lo >= 1 and (num_classes is None or hi == c):
        report.add("error" if num_classes is not None else "warning", "labels",
                   f"classes run {lo}..{hi} (1-based, MATLAB style?): class 0 has no sample"
                   + (f", so they load as {hi + 1} classes" if num_classes is None else
                      f", and {hi} is outside 0..{c - 1} for num_classes={c}")
                   + ". Subtract 1 so they start at 0")
    elif hi >= c:
        report.add("error", "labels", f"labels range {lo}..{hi} but num_classes={c} allows 0..{c - 1}")
    present = set(values.astype(np.int64).tolist())
    gaps = [k for k in range(max(lo, 0) if lo >= 1 else 0, min(hi, c - 1) + 1) if k not in present]
    gaps = [k for k in gaps if not (lo >= 1 and k == 0)]
    if gaps:
        report.add("warning", "labels", f"classes {_values(np.array(gaps))} have no sample in any split "
                   f"(labels used: {_values(values)}): renumber them 0..{len(values) - 1} without gaps")
    if train.size:
        absent = sorted(set(range(c)) - set(np.unique(train).tolist()) - set(gaps) - ({0} if lo >= 1 else set()))
        if absent:
            report.add("warning", "train: labels", f"classes {_values(np.array(absent))} have no TRAIN sample: "
                       "the model cannot learn them")
    return "classification"


def _values(values: np.ndarray, show: int = 8) -> str:
    v = [f"{x:g}" for x in values[:show].tolist()]
    return ", ".join(v) + (f", … ({len(values)} in all)" if len(values) > show else "")


def _check_sizes(raw: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], task: str,
                 batch_size: int, report: Report) -> None:
    n = {s: len(v) for s, v in labels.items()}
    if "train" in n:
        batches = math.ceil(n["train"] / batch_size) if n["train"] else 0
        if n["train"] < 4 * batch_size:
            report.add("warning", "train", f"{n['train']} samples with batch size {batch_size}: {batches} optimiser "
                       f"step{'s' if batches != 1 else ''} per epoch, so a budget of a few epochs barely trains; "
                       f"count the budget in steps (own_data.yaml's min_steps) or lower train.batch_size "
                       f"(e.g. {_batch_for(n['train'])})")
    if "valid" in n and n["valid"] < MIN_VALID:
        report.add("warning", "valid", f"{n['valid']} samples: one sample moves VALID accuracy by "
                   f"{100 / max(n['valid'], 1):.1f} points, so model selection and early stopping are noisy")
    if "test" in n and n["test"] < MIN_VALID:
        report.add("note", "test", f"{n['test']} samples: TEST scores move by {100 / max(n['test'], 1):.1f} points "
                   "per sample; report the spread over seeds")


def _batch_for(n_train: int) -> int:
    """A batch size giving at least ~4 steps per epoch on small data (a power of two, 4..32)."""
    b = 32
    while b > 4 and math.ceil(n_train / b) < 4:
        b //= 2
    return b


def _check_features(raw: dict[str, dict[str, np.ndarray]], names: list[str], labels: dict[str, np.ndarray],
                    params: dict[str, Any], report: Report) -> dict[str, dict[str, float]]:
    """Non-finite values, constant features and scales, from TRAIN; returns each modality's scale figures."""
    scales: dict[str, dict[str, float]] = {}
    for s, arrays in raw.items():
        for m in names:
            a = arrays.get(m)
            if a is None or a.ndim not in (2, 3) or not np.issubdtype(a.dtype, np.floating):
                continue
            from .checks import count_nonfinite

            bad = count_nonfinite(a)
            if bad.total and params.get("nonfinite", "error") == "error":
                report.add("error", f"{s}/{m}", f"{bad.describe()}; set nonfinite: zero to replace them by 0, "
                           "or fix the data")
    train = raw.get("train", {})
    present = train.get("present")
    for k, m in enumerate(names):
        a = train.get(m)
        if a is None or a.ndim not in (2, 3) or a.shape[0] == 0 or not (
                np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            continue
        lengths = train.get(m + LENGTHS)
        lengths = np.asarray(lengths) if lengths is not None and np.shape(lengths) == (a.shape[0],) else None
        rows = None
        if isinstance(present, np.ndarray) and present.dtype == np.bool_ and present.shape == (a.shape[0], len(names)):
            rows = np.asarray(present[:, k])
        stats = _feature_stats(a, lengths, rows)
        if stats is None:
            continue
        mean, std, _ = stats
        constant = np.flatnonzero(std == 0)
        if len(constant) == len(std):
            report.add("warning", f"train/{m}", f"all {len(std)} features are constant in TRAIN: the modality "
                       "carries no information")
        elif len(constant):
            report.add("warning", f"train/{m}", f"{len(constant)} of {len(std)} features are constant in TRAIN "
                       f"(columns {_values(constant.astype(float))}): they carry nothing; drop them "
                       "(standardisation leaves them at 0)")
        live = std > 0
        if not live.any():
            continue
        typical = float(np.median(std[live]))
        offset = float(np.median(np.abs(mean[live]) / std[live]))
        spread = float(std[live].max() / std[live].min())
        scales[m] = {"typical_std": typical, "mean_over_std": offset, "feature_std_ratio": spread}
    standardized = str(params.get("standardize", "none")).lower() in ("train", "true")
    if not scales:
        return scales
    off = [m for m, v in scales.items() if not (STD_RANGE[0] <= v["typical_std"] <= STD_RANGE[1])
           or v["mean_over_std"] > MEAN_OVER_STD or v["feature_std_ratio"] > 100]
    typical = {m: v["typical_std"] for m, v in scales.items()}
    ratio = max(typical.values()) / min(typical.values())
    if standardized:
        report.add("note", "features", "standardize: train is set: the loader z-scores every feature with "
                   "TRAIN's mean and std, so the scales below do not reach the model")
        return scales
    if off:
        detail = "; ".join(f"{m}: typical feature std {scales[m]['typical_std']:.3g}, |mean|/std "
                           f"{scales[m]['mean_over_std']:.3g}, feature stds differ ×{scales[m]['feature_std_ratio']:.3g}"
                           for m in off)
        report.add("warning", "features", f"not standardised ({detail}); set standardize: train in data: "
                   "(z-scores each feature with TRAIN statistics; own_data.yaml does)")
    if len(typical) > 1 and ratio > SCALE_RATIO:
        big, small = max(typical, key=typical.get), min(typical, key=typical.get)
        report.add("warning", "features", f"modality scales differ ×{ratio:.3g} ({big}: typical std "
                   f"{typical[big]:.3g}, {small}: {typical[small]:.3g}): unstandardised, {big} dominates; set "
                   "standardize: train")
    return scales


def _check_missingness(raw: dict[str, dict[str, np.ndarray]], names: list[str],
                       presents: dict[str, np.ndarray | None], report: Report) -> None:
    for s, arrays in raw.items():
        present = presents.get(s)
        ok = isinstance(present, np.ndarray) and present.dtype == np.bool_ and present.ndim == 2 \
            and present.shape[1] == len(names)
        if ok:
            p = np.asarray(present)
            none = int((~p.any(axis=1)).sum())
            if none:
                report.add("error", f"{s}: present", f"{none} samples have no modality at all (a row of False): "
                           "drop them, nothing can be predicted from nothing")
            for k, m in enumerate(names):
                frac = float((~p[:, k]).mean()) if len(p) else 0.0
                if frac == 1.0:
                    report.add("warning", f"{s}: present", f"{m!r} is missing in every sample")
                elif frac > 0.5:
                    report.add("warning", f"{s}: present", f"{m!r} is missing in {100 * frac:.0f}% of the samples")
        for k, m in enumerate(names):
            a = arrays.get(m)
            if a is None or a.ndim not in (2, 3) or a.shape[0] == 0:
                continue
            zero = _zero_rows(a)
            if ok:
                zero &= np.asarray(present)[:, k]
            n0 = int(zero.sum())
            if n0:
                report.add("warning", f"{s}/{m}", f"{n0} samples ({100 * n0 / a.shape[0]:.0f}%) are all zeros"
                           + (" but marked present" if ok else "") + ": if the modality is missing there, say so "
                           "with present=False (the methods then treat it as missing, not as a zero feature)")


def _zero_rows(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.shape[0], dtype=bool)
    per_row = max(1, int(np.prod(a.shape[1:], dtype=np.int64)))
    step = max(1, BLOCK_ELEMENTS // per_row)
    for start in range(0, a.shape[0], step):
        block = np.asarray(a[start:start + step])
        out[start:start + len(block)] = ~block.reshape(len(block), -1).any(axis=1)
    return out


# ------------------------------------------------------------------------------------ summary, recommendation
def _summary(report: Report, raw: dict[str, dict[str, np.ndarray]], names: list[str],
             labels: dict[str, np.ndarray], task: str, scales: dict[str, dict[str, float]]) -> None:
    splits = {}
    for s, arrays in raw.items():
        mods = {}
        present = arrays.get("present")
        for k, m in enumerate(names):
            a = arrays.get(m)
            if a is None:
                continue
            entry: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
            if isinstance(present, np.ndarray) and present.ndim == 2 and present.shape[1] == len(names) \
                    and present.dtype == np.bool_ and len(present):
                entry["missing"] = float((~np.asarray(present)[:, k]).mean())
            mods[m] = entry
        lab: dict[str, Any] = {}
        if s in labels and labels[s].size:
            v = labels[s][np.isfinite(labels[s])]
            if v.size:
                lab = {"n": int(len(labels[s])), "min": float(v.min()), "max": float(v.max()),
                       "distinct": int(len(np.unique(v)))}
                if task == "classification" and np.all(v == np.round(v)) and v.min() >= 0:
                    counts = np.bincount(v.astype(np.int64))
                    lab["counts"] = {str(c): int(n) for c, n in enumerate(counts)}
        splits[s] = {"n": int(len(labels[s])) if s in labels else None, "modalities": mods, "labels": lab}
    report.summary = {"task": task, "modalities": names, "splits": splits, "scales": scales}


def _recommend(report: Report, folder: Path, fmt: str, names: list[str], labels: dict[str, np.ndarray],
               task: str, task_guess: str | None, scales: dict[str, dict[str, float]], batch_size: int,
               params: dict[str, Any]) -> None:
    rec: dict[str, Any] = {}
    kind = task_guess if task == "regression" and task_guess else task
    rec["task"] = kind
    if kind == "classification":
        every = np.concatenate(list(labels.values())) if labels else np.zeros(0)
        every = every[np.isfinite(every)]
        if every.size and np.all(every == np.round(every)):
            lo, hi = int(every.min()), int(every.max())
            rec["num_classes"] = hi if lo >= 1 else hi + 1
            if lo >= 1:
                rec["labels"] = "subtract 1 (they start at 1)"
    rec["standardize"] = "train"
    n_train = len(labels["train"]) if "train" in labels else None
    if n_train is not None and n_train < 4 * batch_size:
        rec["batch_size"] = _batch_for(n_train)
    k = len(names)
    if k >= 2:
        rec["max_random_rate"] = f"{k - 1}/{k} = {(k - 1) / k:.4f}"
    if any(f.level == "error" and "non-finite" in f.message for f in report.findings):
        rec["nonfinite"] = "zero (or fix the data)"
    report.recommended = rec
    recipe = "recipes/own_data.yaml" if kind == "classification" else "recipes/own_data_regression.yaml"
    parts = [f"imrec run {recipe}" + (" data.name=npy" if fmt == "npy" else "") + f" data.folder={folder}"]
    if "batch_size" in rec:
        parts.append(f"train.batch_size={rec['batch_size']}")
    if "nonfinite" in rec:
        parts.append("data.nonfinite=zero")
    report.command = " ".join(parts)
