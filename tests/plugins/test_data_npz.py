"""data.npz: the documented plain format for users' own features — round trip and precise errors."""

from __future__ import annotations

import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.checks import DataWarning
from imrec_data.npz import Npz

N = {"train": 20, "valid": 6, "test": 8}


def arrays(split: str, n: int, classification: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(len(split))
    return {
        "speech": rng.standard_normal((n, 7, 3)),  # float64 on purpose: stored as float32
        "face": rng.standard_normal((n, 4)).astype(np.float32),
        "speech__lengths": rng.integers(1, 8, n),
        "labels": rng.integers(0, 3, n) if classification else rng.uniform(-3, 3, n),
        "ids": np.array([f"{split}:{i}" for i in range(n)]),
        "present": rng.random((n, 2)) > 0.2,
    }


def write(folder, change=None, classification=False, **savez):
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in N.items():
        a = arrays(split, n, classification)
        if change:
            change(split, a)
        np.savez(folder / f"{split}.npz", **a, **savez)
    return folder


def test_round_trip(tmp_path):
    folder = write(tmp_path / "mine")
    ds = Npz(folder=str(folder))
    assert [(m.name, m.dim, m.length) for m in ds.spec.modalities] == [("speech", 3, 7), ("face", 4, None)]
    assert ds.spec.task.kind == "regression"
    splits = ds.load()
    for split, n in N.items():
        want = arrays(split, n)
        got = splits[split]
        assert got.modalities["speech"].dtype == np.float32
        np.testing.assert_allclose(got.modalities["speech"], want["speech"], rtol=1e-6)
        np.testing.assert_array_equal(got.lengths["speech"], want["speech__lengths"])
        np.testing.assert_array_equal(got.ids, want["ids"])
        np.testing.assert_array_equal(got.present, want["present"])
        assert got.labels.dtype == np.float32


def test_classification_infers_num_classes_and_default_ids(tmp_path):
    def drop_ids(split, a):
        del a["ids"], a["present"]

    folder = write(tmp_path / "c", drop_ids, classification=True)
    ds = Npz(folder=str(folder), task="classification")
    assert ds.spec.task.num_classes == 3
    splits = ds.load()
    assert splits["train"].labels.dtype == np.int64 and splits["valid"].ids[0] == "valid-0"
    assert splits["train"].present is None
    with pytest.raises(DataError, match=r"whole numbers 0\.\.1"):
        Npz(folder=str(folder), task="classification", num_classes=2).load()


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda s, a: a.pop("labels") if s == "valid" else None, r"valid.npz: lacks the array 'labels'"),
        (lambda s, a: a.update(face=a["face"][:3]) if s == "test" else None, r"test.npz: 'face' has 3 rows but 'labels' has 8"),
        (lambda s, a: a.pop("face") if s == "test" else None, r"test.npz: modalities \['speech'\] differ"),
        (lambda s, a: a.update(speech=a["speech"][:, :5]) if s == "valid" else None, "pad sequences to one length"),
        (lambda s, a: a.update(speech__lengths=a["speech__lengths"] + 10), r"speech__lengths must be 20 whole numbers in \[0, 7\]"),
        (lambda s, a: a.update(face__lengths=np.ones(len(a["labels"]))), "'face' is a vector modality"),
        (lambda s, a: a.update(face__mask=np.ones(3)), "names with '__' must be '<modality>__lengths'"),
        (lambda s, a: a.update(labels=a["labels"][:, None]), "'labels' must be a 1-D numeric array"),
        (lambda s, a: a.update(ids=np.array(["x"] * len(a["labels"]))), "repeat within split"),
        (lambda s, a: a.update(ids=np.array([f"{i}" for i in range(len(a["labels"]))])), "is in both split"),
        (lambda s, a: a.update(present=a["present"][:, :1]), r"'present' must be bool of shape \(20, 2\)"),
        (lambda s, a: a.update(speech=a["speech"].reshape(len(a["labels"]), -1, 7, 3)), r"expected \(N, T, D\) or \(N, D\)"),
    ],
)
def test_errors_are_precise(tmp_path, change, needle):
    folder = write(tmp_path / "bad", change)
    with pytest.raises(DataError, match=needle):
        Npz(folder=str(folder)).load()


def test_object_arrays_are_refused(tmp_path):
    folder = write(tmp_path / "obj", lambda s, a: a.update(ids=np.array([f"{s}{i}" for i in range(len(a["labels"]))], dtype=object)))
    with pytest.raises(DataError, match=r"np.array\(ids, dtype=str\)"):
        Npz(folder=str(folder)).load()


def test_nonfinite(tmp_path):
    def poison(split, a):
        if split == "train":
            a["face"][2, 1] = np.nan

    folder = write(tmp_path / "nan", poison)
    with pytest.raises(DataError, match=r"train/face: 1 non-finite values \(1 NaN\) in 1 samples, e.g. train:2"):
        Npz(folder=str(folder)).load()
    with pytest.warns(DataWarning):
        assert Npz(folder=str(folder), nonfinite="zero").load()["train"].modalities["face"][2, 1] == 0


def test_missing_files_and_parameters(tmp_path):
    with pytest.raises(DataError, match=r"split files not found: .*train.npz"):
        Npz(folder=str(tmp_path)).load()
    with pytest.raises(DataError, match="only meaningful"):
        Npz(folder=str(tmp_path), num_classes=3)
    with pytest.raises(DataError, match="task"):
        Npz(folder=str(tmp_path), task="ranking")
