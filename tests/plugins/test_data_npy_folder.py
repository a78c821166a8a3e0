"""data.npy: folders of .npy files, memory-mapped; save() round trip, loader batches, precise errors."""

from __future__ import annotations

import numpy as np
import pytest

from imrec.errors import DataError
from imrec.loader import condition_masks, iterate, read_rows
from imrec_data.checks import DataWarning
from imrec_data.npy_folder import NpyFolder, save
from imrec_data.synthetic import Synthetic
from imrec_protocols import RandomMissing


def source():
    return Synthetic(names=["text", "audio", "face"], dims=[6, 3, 4], lengths=[5, 5, None], sizes=[20, 6, 8],
                     variable_lengths=True, seed=3)


def test_save_then_load_is_memory_mapped_and_equal(tmp_path):
    src = source()
    splits = src.load()
    folder = save(tmp_path / "mine", splits)
    ds = NpyFolder(folder=str(folder), modalities=["text", "audio", "face"])
    assert [(m.name, m.dim, m.length) for m in ds.spec.modalities] == [("text", 6, 5), ("audio", 3, 5), ("face", 4, None)]
    loaded = ds.load()
    for split, s in splits.items():
        for name, arr in s.modalities.items():
            got = loaded[split].modalities[name]
            assert isinstance(got, np.memmap) and not got.flags.writeable
            np.testing.assert_array_equal(got, arr)
        np.testing.assert_array_equal(loaded[split].labels, s.labels)
        assert loaded[split].ids.tolist() == s.ids.tolist()
        assert sorted(loaded[split].lengths) == sorted(s.lengths)
    # Batches gather their rows from the maps (the loader's path).
    cond = RandomMissing(rate=0.5).conditions(["text", "audio", "face"])[0]
    masked = condition_masks(cond, loaded["train"], ds.spec.names, seed=1, epoch=0)
    full, mask, _ = next(iterate(masked, 8, np.arange(20)[::-1]))
    assert full.modalities["text"].shape == (8, 5, 6) and mask.shape == (8, 3)
    np.testing.assert_array_equal(full.modalities["face"].numpy(), splits["train"].modalities["face"][12:20])


def test_default_modality_order_is_alphabetical_and_mmap_false_converts(tmp_path):
    folder = save(tmp_path / "mine", source().load())
    for split in ("train", "valid", "test"):
        a = np.load(folder / split / "audio.npy")
        np.save(folder / split / "audio.npy", a.astype(np.float64))
    with pytest.raises(DataError, match=r"audio.npy: dtype float64; memory mapping needs float32"):
        NpyFolder(folder=str(folder)).spec
    ds = NpyFolder(folder=str(folder), mmap=False)
    assert ds.spec.names == ("audio", "face", "text")
    loaded = ds.load()
    assert loaded["train"].modalities["audio"].dtype == np.float32
    assert not isinstance(loaded["train"].modalities["text"], np.memmap)


def test_nonfinite_zero_repairs_a_private_copy_only(tmp_path):
    folder = save(tmp_path / "mine", source().load())
    path = folder / "valid" / "text.npy"
    a = np.load(path)
    a[2, 1, 0] = np.inf
    np.save(path, a)
    with pytest.raises(DataError, match=r"non-finite feature values"):
        NpyFolder(folder=str(folder)).load()
    with pytest.warns(DataWarning, match=r"valid/text: 1 non-finite"):
        loaded = NpyFolder(folder=str(folder), nonfinite="zero").load()
    assert loaded["valid"].modalities["text"][2, 1, 0] == 0.0
    assert np.isinf(np.load(path)[2, 1, 0])  # the file itself is untouched (copy-on-write map)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: (f / "valid" / "labels.npy").unlink(), r"valid: lacks labels.npy"),
        (lambda f: np.save(f / "test" / "face.npy", np.zeros((8, 5), np.float32)), r"modality 'face' has per-sample"),
        (lambda f: np.save(f / "test" / "face.npy", np.zeros((3, 4), np.float32)), r"3 rows but labels.npy has 8"),
        (lambda f: np.save(f / "train" / "face__lengths.npy", np.ones(20, np.int64)), r"'face' is a vector"),
        (lambda f: np.save(f / "train" / "audio__lengths.npy", np.full(20, 9)), r"whole numbers in \[0, 5\]"),
        (lambda f: np.save(f / "test" / "extra.npy", np.zeros((8, 2), np.float32)), r"modalities \['extra'\] are not"),
        (lambda f: np.save(f / "train" / "present.npy", np.ones((20, 2), bool)), r"present.npy: must be bool of shape"),
    ],
)
def test_errors_name_the_file_and_the_fix(tmp_path, change, message):
    folder = save(tmp_path / "mine", source().load())
    change(folder)
    with pytest.raises(DataError, match=message):
        NpyFolder(folder=str(folder)).load()


def test_missing_split_folder(tmp_path):
    (tmp_path / "x" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"split folder not found: .*valid.*docs/data.md"):
        NpyFolder(folder=str(tmp_path / "x")).spec


def test_read_rows_reads_memory_maps_by_runs_of_rows(tmp_path):
    x = np.random.default_rng(0).random((50, 3, 2), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for idx in ([0, 1, 2, 7, 8, 49], [5], [], list(range(50))):
        got = read_rows(mapped, np.array(idx, dtype=np.int64))
        assert type(got) is np.ndarray and got.shape == (len(idx), 3, 2)
        np.testing.assert_array_equal(got, x[idx])
    np.testing.assert_array_equal(read_rows(mapped, slice(10, 20)), x[10:20])
    np.testing.assert_array_equal(read_rows(mapped[5:], np.array([0, 3])), x[[5, 8]])  # a view: plain indexing
    cow = np.load(tmp_path / "x.npy", mmap_mode="c")
    cow[1] = 0.0  # a copy-on-write map is read through the mapping: its private changes count
    np.testing.assert_array_equal(read_rows(cow, np.array([1])), np.zeros((1, 3, 2), np.float32))
