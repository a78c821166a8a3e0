"""data.handwritten on the real file (found as tests/conftest.py finds it): splits, labels, stratified validation, train-only
standardisation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from imrec.errors import DataError
from imrec_data.handwritten import VIEWS, Handwritten


@pytest.fixture
def root(shared_data):
    return shared_data / "handwritten"


def test_splits_labels_and_views(root):
    ds = Handwritten(root=str(root))
    assert [(m.name, m.dim, m.length) for m in ds.spec.modalities] == [(n, d, None) for n, d in VIEWS]
    assert ds.spec.task.kind == "classification" and ds.spec.task.num_classes == 10
    splits = ds.load()
    assert {k: len(v) for k, v in splits.items()} == {"train": 1400, "valid": 200, "test": 400}
    assert np.bincount(splits["valid"].labels).tolist() == [20] * 10  # stratified
    assert np.bincount(splits["test"].labels).tolist() == [40] * 10
    for s in splits.values():
        assert s.labels.dtype == np.int64 and s.labels.min() == 0 and s.labels.max() == 9
        assert all(a.dtype == np.float32 for a in s.modalities.values())


def test_standardised_with_train_statistics_only(root):
    mat = scipy.io.loadmat(root / "handwritten_6views.mat")
    std = Handwritten(root=str(root)).load()
    raw = Handwritten(root=str(root), standardize=False).load()
    np.testing.assert_array_equal(raw["test"].modalities["pix"], mat["x1_test"].astype(np.float32))
    assert raw["test"].labels.tolist() == (mat["gt_test"].ravel().astype(int) - 1).tolist()
    for k, (name, _) in enumerate(VIEWS):
        train = raw["train"].modalities[name]
        mean, sd = train.mean(0), train.std(0)
        sd[sd == 0] = 1
        np.testing.assert_allclose(std["test"].modalities[name], (raw["test"].modalities[name] - mean) / sd, rtol=1e-4, atol=1e-4)
        live = train.std(0) > 0
        np.testing.assert_allclose(std["train"].modalities[name].mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(std["train"].modalities[name].std(0)[live], 1, atol=1e-3)


def test_validation_carved_from_train_by_seed(root):
    a = Handwritten(root=str(root), split_seed=0).load()
    b = Handwritten(root=str(root), split_seed=1, valid_fraction=0.25).load()
    assert all(i.startswith("train") for i in a["valid"].ids)
    assert not set(a["valid"].ids) & set(a["train"].ids)
    assert len(b["valid"]) == 400 and set(a["valid"].ids) != set(b["valid"].ids)


def test_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("IMREC_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as err:
        Handwritten().load()
    assert str(tmp_path / "handwritten" / "handwritten_6views.mat") in str(err.value)
    assert "imrec data get handwritten" in str(err.value)


def test_garbled_file(tmp_path):
    (tmp_path / "handwritten_6views.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not a readable MATLAB file"):
        Handwritten(root=str(tmp_path)).load()
    with pytest.raises(DataError, match="valid_fraction"):
        Handwritten(valid_fraction=0.0)
