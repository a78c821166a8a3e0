"""data.csd: CMU-SDK computational sequences written by data.synthetic, aligned back to the label intervals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.checks import DataWarning
from imrec_data.csd import CSD
from imrec_data.synthetic import Synthetic

h5py = pytest.importorskip("h5py")

LENGTHS = [10, 14, 12]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csd")
    syn = Synthetic(sizes=[40, 16, 24], lengths=LENGTHS, variable_lengths=True, seed=2)
    folds = syn.write_csd(folder)
    return syn, folder, folds, syn.load()


def test_utterance_vectors_are_means_of_the_overlapping_steps(written):
    _, folder, folds, ref = written
    ds = CSD(path=str(folder), folds=str(folds))
    assert [(m.name, m.length) for m in ds.spec.modalities] == [("audio", None), ("text", None), ("vision", None)]
    assert [m.dim for m in ds.spec.modalities] == [8, 32, 16]
    splits = ds.load()
    for name in ("train", "valid", "test"):
        got, want = splits[name], ref[name]
        assert len(got) == len(want) and got.present is None
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.ids[0].endswith("[0]")
        for m in ("text", "audio", "vision"):
            lens = want.lengths[m]
            means = np.stack([want.modalities[m][i, : lens[i]].mean(0) for i in range(len(want))])
            np.testing.assert_allclose(got.modalities[m], means, rtol=1e-5, atol=1e-6)


def test_sequences_keep_steps_up_to_max_length(written):
    _, folder, folds, ref = written
    splits = CSD(path=str(folder), folds=str(folds), max_length=14).load()
    for name in ("train", "valid", "test"):
        for m, t in zip(("text", "audio", "vision"), LENGTHS):
            got = splits[name].modalities[m]
            assert got.shape[1] == 14
            np.testing.assert_array_equal(got[:, :t], ref[name].modalities[m])
            np.testing.assert_array_equal(splits[name].lengths[m], ref[name].lengths[m])
    short = CSD(path=str(folder), folds=str(folds), max_length=4, features={"audio": "audio"}).load()
    np.testing.assert_array_equal(short["train"].modalities["audio"], ref["train"].modalities["audio"][:, :4])
    assert short["train"].lengths["audio"].max() == 4


def test_features_mapping_orders_modalities(written):
    _, folder, folds, _ = written
    ds = CSD(path=str(folder), folds=str(folds), features={"v": "vision.csd", "t": str(folder / "text.csd")})
    assert ds.spec.names == ("v", "t")


def test_missing_video_marks_modality_really_missing(written, tmp_path):
    syn, _, _, _ = written
    folder = tmp_path / "csd"
    folds = syn.write_csd(folder)
    video = json.loads(folds.read_text())["valid"][0]
    with h5py.File(folder / "vision.csd", "a") as f:
        del f["vision"]["data"][video]
    splits = CSD(path=str(folder), folds=str(folds)).load()
    valid = splits["valid"]
    k = CSD(path=str(folder), folds=str(folds)).spec.names.index("vision")
    gone = np.array([i.startswith(video + "[") for i in valid.ids])
    assert gone.any() and valid.present is not None
    assert not valid.present[gone, k].any() and valid.present[~gone].all()
    assert np.all(valid.modalities["vision"][gone] == 0)


def test_nonfinite_steps(written, tmp_path):
    syn, _, _, _ = written
    folder = tmp_path / "csd"
    folds = syn.write_csd(folder)
    with h5py.File(folder / "audio.csd", "a") as f:
        feats = f["audio"]["data"]["v0000"]["features"]
        row = feats[0]
        row[0] = -np.inf
        feats[0] = row
    with pytest.raises(DataError, match=r"audio.csd: 1 non-finite feature values in 1 videos, e.g. v0000"):
        CSD(path=str(folder), folds=str(folds), nonfinite="error").load()
    with pytest.warns(DataWarning, match="replaced by 0"):
        splits = CSD(path=str(folder), folds=str(folds)).load()
    assert np.isfinite(splits["train"].modalities["audio"]).all()


def test_absent_files_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("IMREC_DATA_DIR", str(tmp_path))
    ds = CSD(features={"text": "CMU_MOSI_TimestampedWordVectors"}, labels="CMU_MOSI_Opinion_Labels")
    with pytest.raises(DataError) as err:
        ds.load()
    msg = str(err.value)
    assert str(tmp_path / "csd" / "CMU_MOSI_TimestampedWordVectors.csd") in msg
    assert str(tmp_path / "csd" / "CMU_MOSI_Opinion_Labels.csd") in msg
    assert str(tmp_path / "mosi_bclstm" / "mosi_std_folds.json") in msg  # the standard folds, default
    assert "IMREC_DATA_DIR" in msg


def test_bad_folds_file(written, tmp_path):
    _, folder, _, _ = written
    bad = tmp_path / "folds.json"
    bad.write_text(json.dumps({"train": ["v0000"], "test": []}))
    with pytest.raises(DataError, match="needs a list of video ids under 'valid'"):
        CSD(path=str(folder), folds=str(bad)).load()


def test_clear_error_without_h5py(written, monkeypatch):
    _, folder, folds, _ = written
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(DataError, match=r"pip install 'imrec\[h5py\]'"):
        CSD(path=str(folder), folds=str(folds)).spec
