"""`imrec validate` checks a recipe against its dataset's spec (modality names in conditions, rates reachable for
K, selection metric and head against the task) — the same checks as `run --dry-run` and the start of `run` —
so a recipe inherited from another dataset fails at validate, with every problem at once (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imrec.cli import main
from imrec.config import load_recipe
from imrec.errors import RecipeError
from imrec.trainer import phase_epochs

REPO = Path(__file__).resolve().parents[2]


def features(folder: Path, k: int = 3, regression: bool = True) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 16), ("valid", 8), ("test", 8)):
        y = rng.normal(size=n) if regression else np.arange(n) % 2
        mods = {name: rng.normal(size=(n, 4)) for name in "abcdef"[:k]}
        np.savez(folder / f"{split}.npz", **mods, labels=y, ids=np.array([f"{split}{i}" for i in range(n)]))
    return folder


def inherited(tmp_path: Path, data: str, extra: str = "") -> Path:
    """A user's recipe that reuses the handwritten one for other data (the obvious first attempt)."""
    path = tmp_path / "mine.yaml"
    path.write_text(f"extends: {REPO / 'recipes' / 'rohydr_handwritten.yaml'}\nchanges:\n  - \"data={data}\"\n{extra}")
    return path


def test_inherited_recipe_fails_validate_with_every_spec_problem(tmp_path, capsys):
    folder = features(tmp_path / "three")
    path = inherited(tmp_path, f"{{name: npz, folder: {folder}, task: regression}}")
    for argv in (["validate", str(path)], ["run", str(path), "--dry-run"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "missing rate 0.7 cannot be reached with K = 3" in err
        assert "unknown modality 'pix'" in err and "modalities are: a, b, c" in err
        assert "train.phases.recover.select.metric: 'acc' is not computed for this regression task" in err
        assert "head rohydr.classification predicts a classification target" in err
        assert "Traceback" not in err


def test_rate_message_names_the_right_k(tmp_path, capsys):
    folder = features(tmp_path / "two", k=2, regression=False)
    path = inherited(tmp_path, f"{{name: npz, folder: {folder}, task: classification}}",
                     "  - \"eval.conditions=[{name: random, rates: [0.0, 0.6]}]\"\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "K = 2 modalities" in err and "(K-1)/K = 1/2" in err and "0.5 for K = 3" not in err


def test_validate_passes_what_run_starts_and_notes_absent_data(tmp_path, capsys):
    folder = features(tmp_path / "three")
    own = REPO / "recipes" / "own_data_regression.yaml"
    assert main(["validate", str(own), "--set", f"data.folder={folder}"]) == 0
    assert capsys.readouterr().out.startswith(f"ok   {own}\n")
    assert main(["validate", str(own), "--set", f"data.folder={tmp_path / 'nowhere'}"]) == 0
    assert "checks against the data's modalities and task skipped" in capsys.readouterr().out


def test_description_is_not_inherited(tmp_path, capsys):
    folder = features(tmp_path / "six", k=6, regression=False)
    path = inherited(tmp_path, f"{{name: npz, folder: {folder}, task: classification}}",
                     "  - \"eval.conditions=[{name: random, rates: [0.0, 0.5]}]\"\n")
    assert load_recipe(path).description == ""
    assert main(["run", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "six-view" not in out and out.startswith("recipe mine")


def test_min_steps_budget(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "own_data.yaml")
    phase = recipe.train.phases[0]
    assert phase.min_steps == 1000 and phase.epochs == 40
    assert phase_epochs(phase, 40, 32) == (500, 500)  # 2 batches per epoch: 500 epochs, early stop held off
    assert phase_epochs(phase, 100_000, 32) == (40, 1)  # big data: the epoch cap rules
    phase.min_steps = None
    assert phase_epochs(phase, 40, 32) == (40, 0)
    with pytest.raises(RecipeError, match="min_steps"):
        load_recipe(REPO / "recipes" / "own_data.yaml", ["train.phases.pretrain.min_steps=0"])


def test_data_info_piped_is_full_width(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["data", "info", "synthetic", "-p", "sizes=[3138, 10, 10]"]) == 0
    out = capsys.readouterr().out
    assert "3138×12×32" in out and "…" not in out.split("labels")[0].replace(" … ", "")
