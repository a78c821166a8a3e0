"""``imrec predict``'s files: new samples from a plain ``.npz`` (the ``data.npz`` format, labels optional and
unused), predictions to ``.csv`` or ``.jsonl``, one line per sample with its id."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, ImrecError
from .predict import Prediction, Predictor

LENGTHS = "__lengths"
IGNORED = ("labels",)  # a dataset's own split file predicts as it is; its labels play no part


def read_npz(path: Path, predictor: Predictor) -> dict[str, Any]:
    """``predict``'s keyword arguments from ``path``: ``features`` (arrays named after the run's modalities; a
    modality missing for every row is left out), ``lengths`` (``<modality>__lengths``), ``ids`` (default the row
    numbers) and ``available`` (``present``, (N, K) bool in the run's modality order)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npz file without object arrays ({exc}); save ids with "
                        f"np.array(ids, dtype=str)") from exc
    names = predictor.modalities
    out: dict[str, Any] = {"features": {}, "lengths": {}}
    for key, value in arrays.items():
        if key in names:
            out["features"][key] = value
        elif key.endswith(LENGTHS) and key[: -len(LENGTHS)] in names:
            out["lengths"][key[: -len(LENGTHS)]] = value
        elif key == "ids":
            out["ids"] = [str(i) for i in value.reshape(-1)]
        elif key == "present":
            out["available"] = value
        elif key not in IGNORED:
            raise DataError(f"{path}: array {key!r} is not one of this run's modalities ({', '.join(names)}), "
                            f"'<modality>{LENGTHS}', 'ids', 'present' or 'labels'")
    if not out["features"]:
        raise DataError(f"{path}: holds none of this run's modalities ({', '.join(names)})")
    if "ids" in out and len(set(out["ids"])) != len(out["ids"]):
        raise DataError(f"{path}: 'ids' are not unique")
    return out


def format_predictions(prediction: Prediction, kind: str) -> str:
    """``csv`` (``id``, ``prediction`` or ``label`` and ``prob_<class>``, ``missing`` as ``a+b``) or ``jsonl``
    (:meth:`Prediction.records`). Numbers are written with every digit, so they read back exactly."""
    records = prediction.records()
    if kind == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if prediction.values is not None:
        writer.writerow(["id", "prediction", "missing"])
        for r in records:
            writer.writerow([r["id"], repr(r["prediction"]), "+".join(r["missing"])])
    else:
        classes = prediction.probabilities.shape[1]  # type: ignore[union-attr]
        writer.writerow(["id", "label", *[f"prob_{c}" for c in range(classes)], "missing"])
        for r in records:
            writer.writerow([r["id"], r["label"], *[repr(p) for p in r["probabilities"]], "+".join(r["missing"])])
    return buf.getvalue()


def output_kind(out: Path | None) -> str:
    if out is None:
        return "csv"
    kind = out.suffix.lower().lstrip(".")
    if kind not in ("csv", "jsonl"):
        raise ImrecError(f"--out {out}: the file name must end in .csv or .jsonl")
    return kind
