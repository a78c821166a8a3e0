"""Every shipped recipe validates, builds its model and plans every phase (what `imrec run --dry-run` does)."""

from pathlib import Path

import numpy as np
import pytest

from imrec.config import load_recipe
from imrec.model import build_model
from imrec.runner import prepare, spec_problems
from imrec.trainer import plan_phase

REPO = Path(__file__).resolve().parents[1]
# A method's search space (docs/tuning.md) lives beside its recipe as <recipe stem>.space.yaml: not a recipe.
SPACE_SUFFIX = ".space.yaml"
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if not p.name.endswith(SPACE_SUFFIX))
SPACES = sorted([*(REPO / "recipes").rglob(f"*{SPACE_SUFFIX}"), *(REPO / "tests" / "recipes").glob(f"*{SPACE_SUFFIX}")])


def test_recipes_exist():
    names = {p.relative_to(REPO / "recipes").as_posix() for p in RECIPES}
    assert {"quickstart.yaml", "rohydr_mosi.yaml", "rohydr_mosei.yaml", "rohydr_mosi_bclstm.yaml",
            "rohydr_handwritten.yaml"} <= names
    for method in ("zero_fill", "mean_fill", "regression", "imder", "mmin", "late_fusion"):
        for data in ("synthetic", "mosi_bclstm", "handwritten"):
            assert f"baselines/{method}_{data}.yaml" in names


def _own_features(folder: Path, classification: bool) -> Path:
    """A tiny npz folder for the own_data recipes: three modalities, one of them a sequence."""
    rng = np.random.default_rng(0)
    folder.mkdir(exist_ok=True)
    for split, n in (("train", 12), ("valid", 6), ("test", 6)):
        y = rng.integers(0, 3, n) if classification else rng.normal(size=n)
        np.savez(folder / f"{split}.npz", a=rng.normal(size=(n, 5)), b=rng.normal(size=(n, 3)),
                 c=rng.normal(size=(n, 4, 2)), labels=y, ids=np.array([f"{split}{i}" for i in range(n)]))
    return folder


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_recipe_validates_builds_and_plans(path, monkeypatch, tmp_path):
    # An empty data directory: validating and planning a recipe must not need its data.
    monkeypatch.setenv("IMREC_DATA_DIR", str(REPO / "tests" / "no-such-data-dir"))
    recipe = load_recipe(path)
    if recipe.data.name == "data.npz":  # the own_data recipes: the user's folder
        folder = _own_features(tmp_path / "mine", recipe.data.kwargs.get("task") == "classification")
        recipe = load_recipe(path, [f"data.folder={folder}"])
        assert not spec_problems(recipe, prepare(recipe, load=False).spec)
    assert recipe.name == path.stem
    prepared = prepare(recipe, load=False)
    model = build_model(prepared.spec, recipe.model, str(path))
    for phase in recipe.train.phases:
        plan = plan_phase(model, phase, str(path))
        assert plan.steps and all(s.params for s in plan.steps)
    assert prepared.eval_conditions


def test_baselines_differ_from_rohydr_only_in_recovery():
    """A baseline recipe keeps RoHyDR's data, encoder, fuser (except late fusion), head, seeds and evaluation."""
    for data, parent in (("mosi_bclstm", "rohydr_mosi_bclstm"), ("handwritten", "rohydr_handwritten"),
                         ("synthetic", "quickstart")):
        ref = load_recipe(REPO / "recipes" / f"{parent}.yaml").resolved
        for path in (REPO / "recipes" / "baselines").glob(f"*_{data}.yaml"):
            r = load_recipe(path).resolved
            for key in ("data", "eval", "seeds"):
                assert r[key] == ref[key], (path, key)
            for slot in ("encoder", "head"):
                assert r["model"][slot] == ref["model"][slot], (path, slot)
            if "late_fusion" not in path.name:
                assert r["model"]["fuser"] == ref["model"]["fuser"]
            assert r["train"]["phases"][0] == ref["train"]["phases"][0] or "late_fusion" in path.name


def test_reference_recipes_hold_the_reference_values():
    """rohydr_mosi.yaml / rohydr_mosei.yaml are the paper/reference setting, value by value (docs/rohydr.md)."""
    mosi = load_recipe(REPO / "recipes" / "rohydr_mosi.yaml").resolved
    fuser = mosi["model"]["fuser"]
    assert [fuser[k] for k in ("attn_dropout", "relu_dropout", "res_dropout", "embed_dropout")] == [0.5] * 4
    assert mosi["model"]["head"]["dropout"] == 0.3 and mosi["model"]["aligner"]["incomplete_only"] is True
    recover = mosi["train"]["phases"][1]
    assert recover["reuse_forward"] is False and recover["early_stop"] == 20
    assert recover["optimizers"]["main"]["scheduler"] == {"name": "ReduceLROnPlateau", "factor": 0.5, "patience": 24}
    steps = {s["name"]: s for s in recover["steps"]}
    assert set(steps["multimodal"]["update"]) == {"aligner.reconstructor", "fuser", "recoverer"}
    assert set(steps["task"]["update"]) == {"recoverer", "fuser", "aligner.reconstructor", "head"}
    mosei = load_recipe(REPO / "recipes" / "rohydr_mosei.yaml").resolved
    aligner = mosei["model"]["aligner"]
    assert (aligner["hidden"], aligner["dropout"], aligner["disc_hidden"]) == ([128, 64], 0.2, [80, 32])
    assert mosei["model"]["head"]["dropout"] == 0.2 and mosei["train"]["batch_size"] == 128
    assert mosei["train"]["phases"][1]["optimizers"]["main"]["scheduler"]["patience"] == 5
    assert mosei["model"]["fuser"]["layers"] == 6


def test_imrec_setting_differs_from_the_reference_only_where_it_says():
    ref = load_recipe(REPO / "recipes" / "rohydr_mosi.yaml").resolved
    own = load_recipe(REPO / "recipes" / "rohydr_mosi_imrec.yaml").resolved
    assert own["data"] == ref["data"] and own["eval"] == ref["eval"] and own["seeds"] == ref["seeds"]
    assert own["train"]["phases"][0] == ref["train"]["phases"][0]
    assert own["model"]["encoder"] == ref["model"]["encoder"] and own["model"]["recoverer"] == ref["model"]["recoverer"]
    assert own["train"]["phases"][1]["reuse_forward"] is True
    assert "scheduler" not in own["train"]["phases"][1]["optimizers"]["main"]


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_search_space_fits_its_recipe(path):
    """Every shipped search space validates and loads its recipe at every bound and choice."""
    from imrec.tune.space import check_recipe, load_space

    recipe = path.with_name(path.name[: -len(SPACE_SUFFIX)] + ".yaml")
    assert recipe.is_file(), f"{path}: no recipe {recipe.name} beside it"
    check_recipe(load_space(path), recipe, [])
