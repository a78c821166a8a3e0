"""data.synthetic: shapes, determinism, task kinds, and the cross-modal structure it promises."""

from __future__ import annotations


import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.synthetic import Synthetic

SMALL = dict(sizes=[300, 100, 100], dims=[24, 8, 12], lengths=[10, 10, 10])


def ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, lam: float = 1.0) -> float:
    """Test R² of a ridge regression (multi-output targets pooled)."""
    mu, ym = x_train.mean(0), y_train.mean(0)
    xc = x_train - mu
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(xc.shape[1]), xc.T @ (y_train - ym))
    pred = (x_test - mu) @ w + ym
    return float(1 - ((y_test - pred) ** 2).sum() / ((y_test - y_test.mean(0)) ** 2).sum())


def cross_modal_r2(splits, target: str) -> float:
    """Predict each time step of ``target`` from the same step of the other modalities."""
    names = list(splits["train"].modalities)

    def rows(split: str, name: str) -> np.ndarray:
        a = splits[split].modalities[name]
        return a.reshape(-1, a.shape[-1]).astype(np.float64)

    others = [n for n in names if n != target]
    x_tr = np.concatenate([rows("train", n) for n in others], 1)
    x_te = np.concatenate([rows("test", n) for n in others], 1)
    return ridge_r2(x_tr, rows("train", target), x_te, rows("test", target))


def label_r2(splits, names: list[str]) -> float:
    def feats(split: str) -> np.ndarray:
        return np.concatenate([splits[split].modalities[n].mean(axis=1) for n in names], 1).astype(np.float64)

    return ridge_r2(feats("train"), splits["train"].labels.astype(np.float64), feats("test"), splits["test"].labels)


def test_mosi_preset_shapes_and_dtypes():
    ds = Synthetic(preset="mosi", seed=3)
    splits = ds.load()
    assert ds.spec.names == ("text", "audio", "vision")
    assert [(m.dim, m.length) for m in ds.spec.modalities] == [(768, 50), (5, 50), (20, 50)]
    assert ds.spec.task.kind == "regression" and ds.spec.task.label_range == (-3.0, 3.0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 1284, "valid": 229, "test": 686}
    for s in splits.values():
        assert s.modalities["text"].shape[1:] == (50, 768)
        assert all(a.dtype == np.float32 for a in s.modalities.values())
        assert s.labels.dtype == np.float32 and np.all(np.abs(s.labels) < 3.0)
    ids = np.concatenate([s.ids for s in splits.values()])
    assert len(set(ids.tolist())) == len(ids)


def test_spec_is_known_without_generating():
    ds = Synthetic(names=["a", "b"], dims=[4, 6], lengths=[None, 7], sizes=[5, 5, 5])
    assert [(m.name, m.dim, m.length) for m in ds.spec.modalities] == [("a", 4, None), ("b", 6, 7)]


def test_deterministic_per_seed():
    a, b, c = (Synthetic(**SMALL, seed=s).load() for s in (5, 5, 6))
    for split in a:
        for m in a[split].modalities:
            np.testing.assert_array_equal(a[split].modalities[m], b[split].modalities[m])
        np.testing.assert_array_equal(a[split].labels, b[split].labels)
        np.testing.assert_array_equal(a[split].ids, b[split].ids)
    assert not np.array_equal(a["train"].modalities["text"], c["train"].modalities["text"])


def test_vectors_classification_and_variable_lengths():
    ds = Synthetic(
        names=["x", "y", "z"], dims=[6, 5, 4], lengths=[None, 9, 9], sizes=[200, 50, 50],
        task="classification", num_classes=4, variable_lengths=True, seed=1,
    )
    splits = ds.load()
    assert ds.spec.task.num_classes == 4
    tr = splits["train"]
    assert tr.modalities["x"].shape == (200, 6) and tr.modalities["y"].shape == (200, 9, 5)
    assert tr.labels.dtype == np.int64 and set(np.unique(tr.labels)) == {0, 1, 2, 3}
    assert set(tr.lengths) == {"y", "z"}
    lens = tr.lengths["y"]
    assert lens.min() >= 5 and lens.max() <= 9 and len(np.unique(lens)) > 1
    steps = np.arange(9)[None, :]
    assert np.all(tr.modalities["y"][steps >= lens[:, None]] == 0)
    assert np.all(np.abs(tr.modalities["y"][steps < lens[:, None]]).sum(-1) > 0)


def test_cross_modal_predictability_grows_with_shared():
    r2 = {}
    for shared in (0.0, 0.3, 0.7, 1.0):
        splits = Synthetic(**SMALL, shared=shared, seed=2).load()
        r2[shared] = np.mean([cross_modal_r2(splits, m) for m in ("text", "audio", "vision")])
    assert abs(r2[0.0]) < 0.05, r2  # nothing shared: the other modalities tell nothing
    assert r2[0.3] < r2[0.7] < r2[1.0], r2
    assert r2[0.7] > 0.15, r2


def test_each_modality_informative_all_better():
    splits = Synthetic(**SMALL, seed=4).load()
    single = {m: label_r2(splits, [m]) for m in ("text", "audio", "vision")}
    together = label_r2(splits, ["text", "audio", "vision"])
    assert all(v > 0.05 for v in single.values()), single  # better than chance (R² 0), each one
    assert together > max(single.values()) + 0.02, (single, together)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(preset="iemocap"), "preset"),
        (dict(dims=[1, 2]), "dims has 2 entries"),
        (dict(sizes=[10, 10]), "three positive split sizes"),
        (dict(shared=1.5), "shared"),
        (dict(task="ranking"), "task"),
        (dict(task="classification", num_classes=1), "num_classes"),
        (dict(num_classes=3), "only meaningful"),
        (dict(names=["a", "a", "b"]), "distinct"),
    ],
)
def test_bad_parameters(kwargs, needle):
    with pytest.raises(DataError, match=needle):
        Synthetic(**kwargs)


def test_writers_need_mmsa_shaped_data(tmp_path):
    with pytest.raises(DataError, match="text, audio, vision"):
        Synthetic(names=["a", "b", "c"], sizes=[4, 4, 4]).write_mmsa(tmp_path / "x.pkl")
    with pytest.raises(DataError, match="equal fixed lengths"):
        Synthetic(lengths=[5, 6, 7], sizes=[4, 4, 4]).write_mmsa(tmp_path / "x.pkl", aligned=True)
