"""data.mosi-bclstm on the real files (found as tests/conftest.py finds them): counts, the label join, the split, leakage refusal,
and clear errors on missing or garbled files."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.checks import DataWarning
from imrec_data.mosi_bclstm import MosiBcLstm


@pytest.fixture
def root(shared_data):
    return shared_data / "mosi_bclstm"


@pytest.fixture(scope="module")
def loaded(shared_data):
    # The raw features (standardisation off) so the join can be compared with the files cell by cell.
    return MosiBcLstm(root=str(shared_data / "mosi_bclstm"), standardize="none").load()


def video(segment: str) -> str:
    return segment.rsplit("_", 1)[0]


def test_counts_shapes_and_split_by_video(loaded):
    train, valid, test = loaded["train"], loaded["valid"], loaded["test"]
    assert len(train) + len(valid) == 1447 and len(test) == 752
    for s in loaded.values():
        assert s.modalities["text"].shape[1:] == (100,)
        assert s.modalities["audio"].shape[1:] == (73,)
        assert s.modalities["vision"].shape[1:] == (100,)
        assert all(a.dtype == np.float32 for a in s.modalities.values()) and s.labels.dtype == np.float32
    train_videos, valid_videos = {video(i) for i in train.ids}, {video(i) for i in valid.ids}
    test_videos = {video(i) for i in test.ids}
    assert len(train_videos | valid_videos) == 62 and len(test_videos) == 31
    assert len(valid_videos) == round(0.15 * 62)
    assert not train_videos & valid_videos and not (train_videos | valid_videos) & test_videos


def test_label_join_matches_the_raw_files(loaded, root):
    with open(root / "transcripts.csv", newline="") as f:
        segments = [r[0] for r in csv.reader(f)]
    with open(root / "OpinionLevelSentiment.csv", newline="") as f:
        score = {f"{r[2]}_{r[3]}": float(r[4]) for r in csv.reader(f)}
    # First row of text_train.csv: index 39 in transcripts.csv; its segment and score, looked up by hand.
    with open(root / "text_train.csv", newline="") as f:
        first = next(csv.reader(f))
    seg = segments[int(first[0])]
    all_ids = np.concatenate([s.ids for s in loaded.values()])
    all_labels = np.concatenate([s.labels for s in loaded.values()])
    all_text = np.concatenate([s.modalities["text"] for s in loaded.values()])
    pos = int(np.flatnonzero(all_ids == seg)[0])
    assert all_labels[pos] == np.float32(score[seg])
    np.testing.assert_array_equal(all_text[pos], np.array(first[1:], dtype=np.float32))
    np.testing.assert_array_equal(all_labels, np.array([score[i] for i in all_ids], dtype=np.float32))
    assert len(set(all_ids.tolist())) == 2199


def test_standardised_by_default_with_train_statistics(loaded, root):
    std = MosiBcLstm(root=str(root)).load()
    for m in ("text", "audio", "vision"):
        raw = loaded["train"].modalities[m].astype(np.float64)
        mean, sd = std["train"].standardization[m]
        np.testing.assert_allclose(mean, raw.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(std["test"].modalities[m][:5], (loaded["test"].modalities[m][:5] - mean) / sd,
                                   rtol=1e-5, atol=1e-5)


def test_split_seed_and_fraction(root):
    a = MosiBcLstm(root=str(root), split_seed=0).load()
    b = MosiBcLstm(root=str(root), split_seed=0).load()
    c = MosiBcLstm(root=str(root), split_seed=1, valid_fraction=0.3).load()
    np.testing.assert_array_equal(a["valid"].ids, b["valid"].ids)
    assert len({video(i) for i in c["valid"].ids}) == round(0.3 * 62)
    assert set(a["valid"].ids) != set(c["valid"].ids)


def test_standard_split_is_refused_unless_leaky_is_allowed(root):
    with pytest.raises(DataError) as err:
        MosiBcLstm(root=str(root), split="standard")
    msg = str(err.value)
    assert "558 of the 686" in msg and "allow_leaky: true" in msg and "0.975" in msg
    with pytest.warns(DataWarning, match="LEAKY SPLIT"):
        splits = MosiBcLstm(root=str(root), split="standard", allow_leaky=True).load()
    assert {k: len(v) for k, v in splits.items()} == {"train": 1284, "valid": 229, "test": 686}


def test_default_root_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("IMREC_DATA_DIR", str(tmp_path))
    ds = MosiBcLstm()
    assert ds.spec.names == ("text", "audio", "vision")  # known without the data
    with pytest.raises(DataError) as err:
        ds.load()
    msg = str(err.value)
    assert str(tmp_path / "mosi_bclstm" / "text_train.csv") in msg
    assert "imrec data get mosi-bclstm" in msg and "IMREC_DATA_DIR" in msg


@pytest.fixture
def copy(root, tmp_path):
    dest = tmp_path / "mosi_bclstm"
    shutil.copytree(root, dest)
    for p in dest.iterdir():
        p.chmod(0o644)
    return dest


def test_truncated_file(copy):
    lines = (copy / "audio_test0.csv").read_text().splitlines()
    (copy / "audio_test0.csv").write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(DataError, match=r"audio_test0.csv: has 749 rows x 74 columns, expected 752 x 74"):
        MosiBcLstm(root=str(copy)).load()


def test_garbled_cell(copy):
    text = (copy / "video_train0.csv").read_text()
    (copy / "video_train0.csv").write_text(text.replace('"', "", 1).replace(",", ";x", 1))
    with pytest.raises(DataError, match="video_train0.csv: not a numeric CSV"):
        MosiBcLstm(root=str(copy)).load()


def test_rows_out_of_order_are_caught(copy):
    lines = (copy / "audio_train0.csv").read_text().splitlines()
    (copy / "audio_train0.csv").write_text("\n".join(lines[::-1]) + "\n")
    with pytest.raises(DataError, match="label column disagrees with transcripts.csv"):
        MosiBcLstm(root=str(copy)).load()


def test_broken_label_join(copy):
    rows = (copy / "OpinionLevelSentiment.csv").read_text().splitlines()
    (copy / "OpinionLevelSentiment.csv").write_text("\n".join(rows[1:] + [rows[0].replace(",1,", ",999,")]) + "\n")
    with pytest.raises(DataError, match=r"no score for 1 segments .* _dI--eQ6qVU_1"):
        MosiBcLstm(root=str(copy)).load()


def test_valid_from_test_videos(root):
    """valid_from: test carves VALID out of the bc-LSTM test videos (never seen by the feature extractors):
    TRAIN is the whole training split, VALID and TEST are disjoint by video and together the test split."""
    a = MosiBcLstm(root=str(root), valid_from="test", valid_fraction=0.3).load()
    b = MosiBcLstm(root=str(root)).load()
    assert len(a["train"]) == len(b["train"]) + len(b["valid"]) == 1447
    assert len(a["valid"]) + len(a["test"]) == len(b["test"]) == 752
    va, te = {video(i) for i in a["valid"].ids}, {video(i) for i in a["test"].ids}
    assert not va & te and len(va) == round(0.3 * 31)
    assert set(a["valid"].ids) | set(a["test"].ids) == set(b["test"].ids)
    with pytest.raises(DataError, match="valid_from='dev' is not allowed"):
        MosiBcLstm(root=str(root), valid_from="dev")
