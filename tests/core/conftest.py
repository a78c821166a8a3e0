"""Fixtures shared by the core's tests."""

from pathlib import Path

import pytest

TINY_ROHYDR = Path(__file__).resolve().parents[1] / "recipes" / "tiny_rohydr.yaml"


@pytest.fixture
def tiny_rohydr(tmp_path):
    """(recipe, prepared, model) of tests/recipes/tiny_rohydr.yaml, the model built from seed 0, writing under
    ``tmp_path``."""
    from imrec.config import load_recipe
    from imrec.model import build_model
    from imrec.runner import prepare
    from imrec.trainer import seed_everything

    recipe = load_recipe(TINY_ROHYDR, [f"output_dir={tmp_path}"])
    prepared = prepare(recipe)
    seed_everything(0)
    model = build_model(prepared.spec, recipe.model)
    return recipe, prepared, model
