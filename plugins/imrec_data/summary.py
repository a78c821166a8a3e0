"""What ``imrec data info`` reports about a loaded dataset, as plain JSON-able data."""

from __future__ import annotations

from typing import Any

import numpy as np

from imrec.interfaces import DatasetSpec, Split

from .checks import count_nonfinite


def _stats(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {}
    finite = x[np.isfinite(x)] if np.issubdtype(x.dtype, np.floating) else x
    if finite.size == 0:
        return {}
    return {
        "mean": float(finite.mean(dtype=np.float64)),
        "std": float(finite.std(dtype=np.float64)),
        "min": float(finite.min()),
        "max": float(finite.max()),
    }


def summarize(spec: DatasetSpec, splits: dict[str, Split], notes: list[str] | None = None) -> dict[str, Any]:
    """Spec, and per split: size, each modality's shape / dtype / non-finite count / value statistics / lengths,
    label statistics (class counts for classification), really-missing counts; plus load-time notes."""
    out: dict[str, Any] = {
        "dataset": spec.name,
        "task": {"kind": spec.task.kind, "num_classes": spec.task.num_classes, "label_range": spec.task.label_range},
        "modalities": [{"name": m.name, "dim": m.dim, "length": m.length} for m in spec.modalities],
        "splits": {},
        "notes": list(notes or []),
    }
    for name, s in splits.items():
        mods = {}
        for k, m in enumerate(spec.modalities):
            arr = s.modalities[m.name]
            entry: dict[str, Any] = {
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
                "nonfinite": count_nonfinite(arr).total,
                **_stats(arr),
            }
            if m.name in s.lengths:
                entry["lengths"] = _stats(s.lengths[m.name])
            if s.present is not None:
                entry["really_missing"] = int((~s.present[:, k]).sum())
            mods[m.name] = entry
        labels: dict[str, Any] = {"dtype": str(s.labels.dtype)}
        if spec.task.kind == "classification":
            counts = np.bincount(s.labels.astype(np.int64), minlength=spec.task.num_classes or 0)
            labels["counts"] = {str(c): int(n) for c, n in enumerate(counts)}
        else:
            labels.update(_stats(s.labels))
            labels["nonfinite"] = count_nonfinite(s.labels).total
        out["splits"][name] = {"n": len(s), "modalities": mods, "labels": labels}
    return out
