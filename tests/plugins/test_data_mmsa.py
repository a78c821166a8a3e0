"""data.mmsa: round trips through files written by data.synthetic, schema errors, non-finite policy,
published-shape checks, memory, and the restricted unpickler (a malicious pickle must not run)."""

from __future__ import annotations

import os
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.checks import DataWarning
from imrec_data.mmsa import MMSA, PUBLISHED
from imrec_data.safe_pickle import RestrictedUnpickler, load as safe_load
from imrec_data.synthetic import Synthetic

SIZES = [24, 8, 12]


def write(tmp_path, name="aligned_50.pkl", **kwargs):
    syn = Synthetic(sizes=SIZES, dims=[12, 5, 7], lengths=kwargs.pop("lengths", [6, 6, 6]), seed=1, **kwargs)
    return syn, syn.write_mmsa(tmp_path / name)


def rewrite(path, change):
    with open(path, "rb") as f:
        data = pickle.load(f)
    change(data)
    with open(path, "wb") as f:
        pickle.dump(data, f)


def test_aligned_round_trip(tmp_path):
    syn, path = write(tmp_path)
    ds = MMSA(path=str(path))
    assert ds.aligned is True
    splits = ds.load()
    ref = syn.load()
    assert [(m.name, m.dim, m.length) for m in ds.spec.modalities] == [("text", 12, 6), ("audio", 5, 6), ("vision", 7, 6)]
    for name in ("train", "valid", "test"):
        got, want = splits[name], ref[name]
        for m in ("text", "audio", "vision"):
            assert got.modalities[m].dtype == np.float32
            np.testing.assert_array_equal(got.modalities[m], want.modalities[m])
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.ids, want.ids)  # "video$_$clip" became "video_clip"
        assert set(got.lengths) == {"text"}  # from text_bert's attention mask
        assert np.all(got.lengths["text"] == 6)


def test_unaligned_round_trip_uses_lengths(tmp_path):
    syn, path = write(tmp_path, "unaligned_50.pkl", lengths=[6, 9, 8], variable_lengths=True)
    ds = MMSA(path=str(path))
    assert ds.aligned is False
    splits, ref = ds.load(), syn.load()
    for name in splits:
        for m in ("audio", "vision", "text"):
            np.testing.assert_array_equal(splits[name].lengths[m], ref[name].lengths[m])
            np.testing.assert_array_equal(splits[name].modalities[m], ref[name].modalities[m])


def test_spec_from_published_shapes_without_the_file(tmp_path):
    ds = MMSA(path=str(tmp_path / "MOSI" / "unaligned_50.pkl"), dataset="mosi")
    assert [(m.dim, m.length) for m in ds.spec.modalities] == [(768, 50), (5, 375), (20, 500)]
    assert ds.spec.task.label_range == (-3.0, 3.0)


def test_default_path_and_absent_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("IMREC_DATA_DIR", str(tmp_path))
    ds = MMSA(dataset="mosi")
    assert ds.path == tmp_path / "mmsa" / "MOSI" / "aligned_50.pkl"
    with pytest.raises(DataError) as err:
        ds.load()
    msg = str(err.value)
    assert str(ds.path) in msg and "github.com/thuiar/MMSA" in msg and "d3994fd2…e5f9" in msg
    assert "IMREC_DATA_DIR" in msg
    with pytest.raises(DataError, match="give `path`"):
        MMSA()
    with pytest.raises(DataError, match="published only as"):
        MMSA(dataset="sims", aligned=True)


def test_declared_dataset_checks_split_sizes(tmp_path):
    _, path = write(tmp_path)
    with pytest.raises(DataError, match=r"split sizes .* differ from the published"):
        MMSA(path=str(path), dataset="mosi").load()
    with pytest.warns(DataWarning, match="published"):
        splits = MMSA(path=str(path), dataset="mosi", on_mismatch="warn").load()
    assert len(splits["train"]) == SIZES[0]


@pytest.mark.parametrize(
    "change, needle",
    [
        (lambda d: d.pop("valid"), r"missing split\(s\) \['valid'\]"),
        (lambda d: d["valid"].pop("vision"), r"split 'valid' lacks key\(s\) \['vision'\]"),
        (lambda d: d["train"].update(audio=d["train"]["audio"][:, 0, :]), r"train/audio must be an array \(N=24"),
        (lambda d: d["test"].update(text=d["test"]["text"][:5]), r"test/text must be an array \(N=12"),
        (lambda d: d["train"].update(regression_labels=np.zeros((24, 2))), r"train/regression_labels must be 24"),
        (lambda d: d["train"].update(audio=d["train"]["audio"][:, :, :3]), "different \\(steps, width\\) across splits"),
        (lambda d: d["test"].update(id=d["train"]["id"][:12]), "in both split"),
    ],
)
def test_schema_errors_say_what_is_wrong(tmp_path, change, needle):
    _, path = write(tmp_path)
    rewrite(path, change)
    with pytest.raises(DataError, match=needle):
        MMSA(path=str(path)).load()


def test_unaligned_needs_lengths(tmp_path):
    _, path = write(tmp_path, "unaligned_50.pkl", lengths=[6, 9, 8])
    rewrite(path, lambda d: d["train"].pop("vision_lengths"))
    with pytest.raises(DataError, match=r"lacks key\(s\) \['vision_lengths'\] required in unaligned"):
        MMSA(path=str(path)).load()
    rewrite(path, lambda d: d["train"].update(vision_lengths=np.full(24, 99)))
    with pytest.raises(DataError, match=r"vision_lengths must hold whole numbers in \[0, 8\]"):
        MMSA(path=str(path)).load()


def test_nonfinite_counted_located_and_replaced_only_as_asked(tmp_path):
    _, path = write(tmp_path)

    def poison(d):
        d["train"]["audio"][3, 0, :2] = -np.inf
        d["train"]["audio"][5, 1, 0] = np.nan

    rewrite(path, poison)
    with pytest.raises(DataError) as err:
        MMSA(path=str(path), nonfinite="error").load()
    msg = str(err.value)
    assert "train/audio: 3 non-finite values (1 NaN, 2 -inf) in 2 samples" in msg
    assert "v0000_4" in msg and "v0000_6" in msg  # the sample ids
    with pytest.warns(DataWarning, match="replaced non-finite"):
        splits = MMSA(path=str(path), nonfinite="zero").load()
    audio = splits["train"].modalities["audio"]
    assert np.isfinite(audio).all() and np.all(audio[3, 0, :2] == 0) and audio[5, 1, 0] == 0


def test_float64_features_become_float32(tmp_path):
    _, path = write(tmp_path)
    rewrite(path, lambda d: d["valid"].update(vision=d["valid"]["vision"].astype(np.float64)))
    assert MMSA(path=str(path)).load()["valid"].modalities["vision"].dtype == np.float32


def test_load_does_not_need_twice_the_file(tmp_path):
    syn = Synthetic(sizes=[300, 60, 60], dims=[768, 5, 20], lengths=[50, 50, 50], seed=0)
    path = syn.write_mmsa(tmp_path / "aligned_50.pkl")
    rewrite(path, lambda d: d["train"]["audio"].__setitem__((slice(0, 50), 0), -np.inf))
    size = os.path.getsize(path)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            splits = MMSA(path=str(path)).load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert splits["train"].modalities["text"].shape == (300, 50, 768)
    assert peak < 1.3 * size, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = {"train": {"id": np.array(["a$_$1"]), "text": _Evil(marker)}, "valid": {}, "test": {}}
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DataError, match=r"refused to load: the pickle asks for (os|posix|nt)\.system"):
        MMSA(path=str(path)).load()
    assert not marker.exists()


def test_hand_crafted_global_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(f"cbuiltins\nexec\n(Vimport os; os.system('touch {marker}')\ntR.".encode())
    with pytest.raises(DataError, match="builtins.exec"):
        safe_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_numpy_pickles(tmp_path, protocol):
    data = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "s": np.array(["x$_$1", "y$_$2"]),
        "o": np.array(["text", "more"], dtype=object),
        "f": np.float64(2.5),
        "n": [1, 2.0, "three", (4,), {5}],
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = safe_load(path)
    np.testing.assert_array_equal(out["a"], data["a"])
    assert out["a"].dtype == np.float32 and out["s"].tolist() == ["x$_$1", "y$_$2"] and out["f"] == 2.5
    assert out["n"] == data["n"] and isinstance(RestrictedUnpickler, type)


def test_published_table_is_consistent():
    for name, pub in PUBLISHED.items():
        assert len(pub["sizes"]) == 3, name
        for shapes in pub["files"].values():
            assert set(shapes) == {"text", "audio", "vision"}
