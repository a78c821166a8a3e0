"""standardize: train — statistics from TRAIN only (observed entries, valid frames), applied to every split,
recorded in the run directory."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from imrec.errors import DataError
from imrec_data.npz import Npz
from imrec_data.standardize import standardize_mode

from test_data_npz import write  # same folder: pytest puts it on sys.path


def _raw(folder, split):
    with np.load(folder / f"{split}.npz") as z:
        return {k: z[k] for k in z.files}


def _expected_stats(folder):
    """Per-feature mean/std of TRAIN, over present rows and (for speech) valid frames, computed independently."""
    a = _raw(folder, "train")
    present = a["present"]
    speech = a["speech"].astype(np.float64)
    frames = [speech[i, :L] for i, L in enumerate(a["speech__lengths"]) if present[i, 0]]
    speech_rows = np.concatenate(frames)
    face = a["face"].astype(np.float64)[present[:, 1]]
    return {"speech": (speech_rows.mean(0), speech_rows.std(0)), "face": (face.mean(0), face.std(0))}


def test_statistics_come_from_train_only(tmp_path):
    folder = write(tmp_path / "d")
    splits = Npz(folder=str(folder), standardize="train").load()
    expected = _expected_stats(folder)
    for name, (mean, std) in expected.items():
        got_mean, got_std = splits["train"].standardization[name]
        np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_std, std, rtol=1e-5, atol=1e-6)
    # Every split carries (and was transformed with) the same statistics.
    assert all(s.standardization is splits["train"].standardization for s in splits.values())
    # TRAIN's observed face rows are now z-scored.
    tr = splits["train"]
    face = tr.modalities["face"][tr.present[:, 1]]
    np.testing.assert_allclose(face.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(face.std(0), 1.0, atol=1e-4)


def test_valid_and_test_never_touch_the_statistics(tmp_path):
    plain = write(tmp_path / "plain")

    def poison(split, a):
        if split != "train":  # VALID and TEST shifted and scaled wildly
            a["speech"] = a["speech"] * 1000.0 + 500.0
            a["face"] = a["face"] * -300.0 - 7.0

    poisoned = write(tmp_path / "poisoned", change=poison)
    s1 = Npz(folder=str(plain), standardize="train").load()
    s2 = Npz(folder=str(poisoned), standardize="train").load()
    for name in ("speech", "face"):
        for a, b in zip(s1["train"].standardization[name], s2["train"].standardization[name]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(s1["train"].modalities[name], s2["train"].modalities[name])
    # and VALID is transformed with TRAIN's statistics: x' = (x - mean) / std exactly
    mean, std = s2["valid"].standardization["face"]
    raw = _raw(poisoned, "valid")["face"].astype(np.float32)
    rows = s2["valid"].present[:, 1]
    np.testing.assert_allclose(s2["valid"].modalities["face"][rows], ((raw - mean) / std)[rows], rtol=1e-5)


def test_padding_and_absent_entries_stay_zero(tmp_path):
    folder = write(tmp_path / "d")
    splits = Npz(folder=str(folder), standardize="train").load()
    for s in splits.values():
        speech, lens = s.modalities["speech"], s.lengths["speech"]
        pad = np.arange(speech.shape[1])[None, :] >= lens[:, None]
        assert (speech[pad] == 0).all()
        assert (s.modalities["face"][~s.present[:, 1]] == 0).all()


def test_default_is_off_and_values_are_checked(tmp_path):
    folder = write(tmp_path / "d")
    splits = Npz(folder=str(folder)).load()
    assert splits["train"].standardization is None
    np.testing.assert_array_equal(splits["train"].modalities["face"], _raw(folder, "train")["face"])
    assert standardize_mode("x", True) == "train" and standardize_mode("x", False) == "none"
    with pytest.raises(DataError, match="standardize='zscore' is not allowed; use 'train'"):
        Npz(folder=str(folder), standardize="zscore")


def test_constant_feature_is_centred_not_blown_up(tmp_path):
    def constant(split, a):
        a["face"][:, 0] = 3.0

    folder = write(tmp_path / "d", change=constant)
    splits = Npz(folder=str(folder), standardize="train").load()
    assert splits["train"].standardization["face"][1][0] == 1.0
    assert np.all(splits["test"].modalities["face"][splits["test"].present[:, 1], 0] == 0.0)


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_run_records_statistics_and_eval_reuses_them(tmp_path):
    """Through the CLI: preprocessing.json holds TRAIN's statistics; `imrec eval` reproduces test.json at MR 0
    (so it standardised VALID/TEST with the same statistics)."""
    from pathlib import Path

    folder = write(tmp_path / "d")
    base = Path(__file__).resolve().parents[1] / "recipes" / "tiny_zero_fill.yaml"
    out = subprocess.run(
        [sys.executable, "-m", "imrec", "run", str(base), "~data", "data.name=data.npz", f"data.folder={folder}",
         "data.standardize=train", "eval.conditions=[{name: random, rates: [0.0]}]",
         f"output_dir={tmp_path / 'runs'}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr + out.stdout
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    pre = json.loads((run_dir / "preprocessing.json").read_text())["standardize"]
    expected = _expected_stats(folder)
    for name, (mean, std) in expected.items():
        np.testing.assert_allclose(pre["modalities"][name]["mean"], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pre["modalities"][name]["std"], std, rtol=1e-5, atol=1e-6)
    seed = 7  # tiny_rohydr.yaml's seed
    test = json.loads((run_dir / "seeds" / str(seed) / "test.json").read_text())["conditions"]
    ev = subprocess.run([sys.executable, "-m", "imrec", "eval", str(run_dir), "--split", "test", "--json"],
                        capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr + ev.stdout
    scored = json.loads(ev.stdout)["per_seed"][str(seed)]
    assert scored == test
