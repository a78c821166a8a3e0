"""`imrec data check FOLDER` through the CLI: one test per trap of a user's own npz/npy folder (issue 16), the
exit status (non-zero only on errors), JSON, and the recommended command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imrec.cli import main


def write(folder: Path, sizes=(128, 32, 32), labels=None, scale=(1.0, 1.0), fmt="npz", constant=False,
          present=None, nan=False) -> Path:
    """Two well-behaved standardised modalities (a 6-d vector, b 3×4 sequence) and 3 classes, unless told."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (split, n) in enumerate(zip(("train", "valid", "test"), sizes)):
        y = np.arange(n) % 3 if labels is None else labels(n)
        a = rng.normal(size=(n, 6)) * scale[0]
        b = rng.normal(size=(n, 3, 4)) * scale[1]
        if constant:
            a[:, 2] = 5.0
        if nan and split == "valid":
            a[1, 1] = np.nan
        arrays = {"a": a, "b": b, "labels": y, "ids": np.array([f"{split}{j}" for j in range(n)])}
        if present is not None:
            arrays["present"] = present(n)
        if fmt == "npz":
            np.savez(folder / f"{split}.npz", **arrays)
        else:
            (folder / split).mkdir(exist_ok=True)
            for k, v in arrays.items():
                np.save(folder / split / f"{k}.npy", v.astype(np.float32) if k in "ab" else v)
    return folder


def check(capsys, folder: Path, *args: str) -> tuple[int, str]:
    rc = main(["data", "check", str(folder), *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_clean_folder_passes_and_recommends_the_own_data_recipe(tmp_path, capsys):
    folder = write(tmp_path / "ok")
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0, out
    assert "0 error(s), 0 warning(s)" in out
    assert f"imrec run recipes/own_data.yaml data.folder={folder}" in out
    assert "128×6" in out and "128×3×4" in out  # the summary, full width when piped


def test_one_based_labels_warned_and_an_error_with_num_classes(tmp_path, capsys):
    folder = write(tmp_path / "matlab", labels=lambda n: np.arange(n) % 3 + 1)
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0  # it loads, as 4 classes: a warning, not an error
    assert "1-based" in out and "load as 4 classes" in out and "Subtract 1" in out
    rc, out = check(capsys, folder, "-p", "task=classification", "-p", "num_classes=3")
    assert rc == 1
    # the loader's own message names the range it found
    assert "they range from 1 to 3" in out and "1-based labels? subtract 1" in out


def test_gappy_labels_and_classes_absent_from_train(tmp_path, capsys):
    folder = write(tmp_path / "gaps", labels=lambda n: np.where(np.arange(n) % 2 == 0, 0, 3))
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0
    assert "classes 1, 2 have no sample in any split" in out and "renumber them 0..1" in out


def test_integer_labels_under_regression(tmp_path, capsys):
    folder = write(tmp_path / "ints")
    rc, out = check(capsys, folder)  # the loader's default task is regression
    assert rc == 0
    assert "task is regression but the labels are 3 whole numbers" in out
    assert "set task: classification" in out and "recipes/own_data.yaml" in out
    folder = write(tmp_path / "floats", labels=lambda n: np.linspace(-3, 3, n))
    rc, out = check(capsys, folder)
    assert rc == 0 and "whole numbers" not in out and "own_data_regression.yaml" in out


def test_constant_and_unscaled_features_with_the_scale_ratio(tmp_path, capsys):
    folder = write(tmp_path / "scales", scale=(1000.0, 0.01), constant=True)
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0
    assert "1 of 6 features are constant in TRAIN (columns 2)" in out
    assert "not standardised" in out and "standardize: train" in out
    assert "modality scales differ ×" in out and "a dominates" in out
    # with the loader standardising, the scales are a note, not a warning
    rc, out = check(capsys, folder, "-p", "task=classification", "-p", "standardize=train")
    assert rc == 0 and "modality scales differ" not in out and "standardize: train is set" in out


def test_tiny_splits_against_the_batch_size(tmp_path, capsys):
    folder = write(tmp_path / "tiny", sizes=(40, 10, 10))
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0
    assert "40 samples with batch size 32: 2 optimiser steps per epoch" in out
    assert "valid: 10 samples" in out
    assert "train.batch_size=8" in out  # the recommended command
    rc, out = check(capsys, folder, "-p", "task=classification", "--batch-size", "8")
    assert "optimiser steps per epoch" not in out


def test_per_modality_missingness(tmp_path, capsys):
    def present(n):
        p = np.ones((n, 2), dtype=bool)
        p[: (3 * n) // 4, 1] = False
        return p

    folder = write(tmp_path / "missing", present=present)
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0
    assert "(75% missing)" in out and "'b' is missing in 75% of the samples" in out


def test_errors_fail_and_every_problem_is_listed(tmp_path, capsys):
    folder = write(tmp_path / "bad", labels=lambda n: np.arange(n) % 3 + 1, nan=True, scale=(100.0, 1.0))
    rc, out = check(capsys, folder, "-p", "task=classification", "--json")
    assert rc == 1
    report = json.loads(out)
    levels = [f["level"] for f in report["findings"]]
    assert "error" in levels and "warning" in levels
    text = " ".join(f["message"] for f in report["findings"])
    assert "non-finite" in text and "1-based" in text and "not standardised" in text
    assert report["recommended"]["nonfinite"].startswith("zero")


@pytest.mark.parametrize("fmt", ["npy"])
def test_npy_folder(tmp_path, capsys, fmt):
    folder = write(tmp_path / "mm", fmt=fmt, labels=lambda n: np.arange(n) % 3 + 1)
    rc, out = check(capsys, folder, "-p", "task=classification")
    assert rc == 0, out
    assert "data.npy" in out and "1-based" in out and "data.name=npy" in out


def test_not_a_data_folder(tmp_path, capsys):
    rc, out = check(capsys, tmp_path)
    assert rc == 2 and "neither an npz folder" in out and "Traceback" not in out


def test_the_loader_itself_warns_about_label_traps(tmp_path):
    """`imrec run` on such data is not silent either: the loader warns (DataWarning) as it loads."""
    from imrec_data.checks import DataWarning
    from imrec_data.npz import Npz

    with pytest.warns(DataWarning, match="task is regression but the labels are 3 whole numbers"):
        Npz(str(write(tmp_path / "ints"))).load()
    matlab = write(tmp_path / "matlab", labels=lambda n: np.arange(n) % 3 + 1)
    with pytest.warns(DataWarning, match=r"1\.\.3 \(1-based\?\): class 0 has no sample, so they load as 4 classes"):
        Npz(str(matlab), task="classification").load()
