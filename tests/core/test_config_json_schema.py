"""`imrec schema` (imrec/config/json_schema.py): the JSON Schema of recipe files accepts every shipped recipe as
written and rejects what validation rejects key by key; component arguments are read without importing torch
(imrec/config/factory_params.py) exactly as validation reads them; the command imports no torch
(tests/core/test_cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
import yaml

from imrec import hookimpl, plugins
from imrec.cli import main
from imrec.errors import RecipeError
from imrec.config import load_recipe, recipe_from_dict, to_yaml
from imrec.config.dialect import Loader
from imrec.config.factory_params import NO_DEFAULT, Param, from_signature, from_source, factory_params
from imrec.config.json_schema import Definitions, hint_schema, recipe_schema
from imrec.config.recipe import KEYS, REQUIRED

REPO = Path(__file__).resolve().parents[2]
# Every recipe file shipped (the search spaces beside them are not recipes).
RECIPES = sorted(p for p in [*(REPO / "recipes").rglob("*.yaml"), *(REPO / "tests" / "recipes").glob("*.yaml")]
                 if not p.name.endswith(".space.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    plugins.reset()
    schema = recipe_schema(plugins.get_registry())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def read(path: Path) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


def errors(validator: jsonschema.Draft7Validator, data: dict) -> list[str]:
    """Every error as 'path: message', the alternatives' own errors included (where `x | null` fails, what
    the editor underlines is why the non-null alternative failed)."""
    def leaves(error: jsonschema.ValidationError):
        yield error
        for sub in error.context or ():
            yield from leaves(sub)

    found = [e for top in validator.iter_errors(data) for e in leaves(top)]
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def full_recipe() -> dict:
    return read(REPO / "tests" / "recipes" / "tiny_rohydr.yaml")


# ------------------------------------------------------------------------------------------ recipes as written
def test_there_are_recipes_with_and_without_extends():
    assert len(RECIPES) > 40
    assert any("extends" in read(p) for p in RECIPES) and any("extends" not in read(p) for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_recipe_is_valid_against_the_schema(validator, path):
    assert errors(validator, read(path)) == []


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(REPO)))
def test_resolved_recipes_are_valid_against_the_schema(validator, path):
    """What validation accepts and fills in (`imrec cat`: every default written, every name in full) the schema
    accepts too: it is never stricter than validation."""
    resolved = yaml.load(to_yaml(load_recipe(path)), Loader=Loader)
    assert "extends" not in resolved and errors(validator, resolved) == []


def test_an_overlay_changes_an_argument_without_repeating_the_name(validator):
    overlay = {"extends": "x.yaml", "model": {"fuser": {"layers": 6}, "aligner": None},
               "train": {"batch_size": 8}, "eval": {"per_rate": True}}
    assert errors(validator, overlay) == []
    assert errors(validator, {"extends": "x.yaml", "model": {"fuser": {"layers": "six"}}})
    # Lists replace the parent's whole, so a phase in an overlay is complete.
    missing = errors(validator, {"extends": "x.yaml", "train": {"phases": [{"name": "p"}]}})
    assert any("'epochs' is a required property" in e for e in missing)


# ------------------------------------------------------------------------------------------ known-bad recipes
@pytest.mark.parametrize("change, where, says", [
    (lambda r: r.update(epochs=3), "", "'epochs' was unexpected"),  # unknown top-level key
    (lambda r: r.pop("train"), "", "'train' is a required property"),
    (lambda r: r.update(seeds="1111"), "seeds", "is not of type 'array'"),  # wrong type
    (lambda r: r.update(device="gpu"), "device", "does not match"),
    (lambda r: r["train"].update(batch_size=8.5), "train.batch_size", "is not of type 'integer'"),
    (lambda r: r["model"]["recoverer"].update(name="rohydr.hdm"), "model.recoverer.name", "is not one of"),
    (lambda r: r["model"]["recoverer"].update(widht=8), "model.recoverer", "'widht' was unexpected"),
    (lambda r: r["model"]["recoverer"].update(width="wide"), "model.recoverer.width", "is not of type 'integer'"),
    (lambda r: r["model"]["recoverer"].update(d_model=8), "model.recoverer", "'d_model' was unexpected"),  # injected
    (lambda r: r["model"]["recoverer"].pop("name"), "model.recoverer", "'name' is a required property"),
    (lambda r: r["model"].update(head=None), "model.head", "None is not of type 'object'"),
    (lambda r: r["train"]["phases"][0].update(bypass=["encoder"]), "train.phases.0.bypass.0", "is not one of"),
    (lambda r: r["train"]["phases"][0]["steps"][0].update(when="sometimes"), "train.phases.0.steps.0.when",
     "is not one of"),
    (lambda r: r["train"]["phases"][0]["steps"][0].update(losses={"tsak_gt": 1.0}),
     "train.phases.0.steps.0.losses", "does not match"),
    (lambda r: r["train"]["phases"][0]["optimizers"]["main"].update(betas=[0.9]),
     "train.phases.0.optimizers.main.betas", "is too short"),
    (lambda r: r["eval"]["conditions"][0].update(name="nosuch"), "eval.conditions.0.name", "is not one of"),
])
def test_known_bad_recipes_fail_the_schema_where_they_are_wrong(validator, change, where, says):
    recipe = full_recipe()
    assert errors(validator, recipe) == []
    change(recipe)
    found = errors(validator, recipe)
    assert any(e.startswith(f"{where}: ") and says in e for e in found), found


def test_known_bad_overlays_fail_the_schema(validator):
    assert any("'epochs' was unexpected" in e for e in errors(validator, {"extends": "x.yaml", "epochs": 3}))
    assert errors(validator, {"extends": "x.yaml", "model": {"recoverer": {"name": "nosuch"}}})
    assert errors(validator, {"extends": "x.yaml", "changes": "model.fuser.layers=6"})
    assert errors(validator, {"extends": ""})


# ------------------------------------------------------------------------------------------ generated, not written
def test_every_declared_key_is_in_the_schema_with_its_required_keys():
    plugins.reset()
    defs = recipe_schema(plugins.get_registry())["definitions"]
    for section, keys in KEYS.items():
        assert set(keys) <= set(defs[f"section.{section}"]["properties"]), section
        assert defs[f"section.{section}"].get("required", []) == list(REQUIRED[section]), section
        assert "required" not in defs.get(f"section.{section}.overlay", {}), section


@pytest.mark.parametrize("section, where", [
    ("recipe", lambda r: r), ("model", lambda r: r["model"]), ("train", lambda r: r["train"]),
    ("phase", lambda r: r["train"]["phases"][0]),
    ("optimizer", lambda r: r["train"]["phases"][0]["optimizers"]["main"]),
    ("step", lambda r: r["train"]["phases"][0]["steps"][0]), ("select", lambda r: r["train"]["select"]),
    ("eval", lambda r: r["eval"]),
])
def test_validation_and_the_schema_read_the_same_key_declarations(validator, section, where):
    """A key declared in KEYS is one validation accepts (its 'unknown key' message lists exactly KEYS) and one the
    schema knows: the declaration is the only list of keys."""
    recipe = full_recipe()
    where(recipe)["nosuchkey"] = 1
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(recipe, str(REPO / "tests" / "recipes" / "tiny_rohydr.yaml"))
    [problem] = info.value.problems
    assert "unknown key 'nosuchkey'" in problem.message and problem.allowed == list(KEYS[section])
    assert any("'nosuchkey' was unexpected" in e for e in errors(validator, recipe))


class Fancy:
    """A fancy third-party recoverer."""

    aux_losses = ()

    def __init__(self, modalities, d_model, mode: Literal["a", "b"], depth: int = 2, widths: tuple[int, int] = (4, 8),
                 scale: float | None = None):
        pass


class FancyPlugin:
    @hookimpl
    def register_recoverers(self, register):
        register("fancy.rec", Fancy)


def test_a_plugins_component_is_described_by_its_signature(validator):
    plugins.register_plugin(FancyPlugin(), name="fancy")
    try:
        schema = recipe_schema(plugins.get_registry())
    finally:
        plugins.unregister_plugin("fancy")
    v = jsonschema.Draft7Validator(schema)
    recipe = full_recipe()
    recipe["model"]["recoverer"] = {"name": "rec", "mode": "a", "widths": [1, 2], "scale": None}  # bare name
    assert errors(v, recipe) == []
    for bad in ({"mode": "c"}, {"depth": 1.5}, {"widths": [1]}, {"scale": "big"}, {"nosuch": 1}):
        recipe["model"]["recoverer"] = {"name": "fancy.rec", "mode": "a", **bad}
        assert errors(v, recipe), bad
    recipe["model"]["recoverer"] = {"name": "fancy.rec"}
    assert any("'mode' is a required property" in e for e in errors(v, recipe))
    branch = next(b["then"] for b in schema["definitions"]["component.recoverer"]["allOf"]
                  if "fancy.rec" in b["if"]["properties"]["name"]["enum"])
    assert branch["description"] == "A fancy third-party recoverer."
    assert branch["properties"]["widths"]["default"] == [4, 8] and "modalities" not in branch["properties"]


def test_factories_read_from_source_match_their_imported_signatures():
    """Every built-in component registered by name is described alike from its source (what `imrec schema` does,
    without torch) and from the imported factory (what validation binds to)."""
    plugins.reset()
    registry = plugins.get_registry()
    defs = Definitions(registry)
    lazy = [e for e in registry if isinstance(e.target, str)]
    assert len(lazy) > 20
    for entry in lazy:
        static = from_source(entry.target)
        assert static is not None, entry.name  # readable without importing it
        params, var_keyword = static
        imported, imported_var_keyword = from_signature(entry.factory)
        assert var_keyword == imported_var_keyword, entry.name
        assert [p.name for p in params] == [p.name for p in imported], entry.name
        assert [p.required for p in params] == [p.required for p in imported], entry.name
        assert [p.default for p in params] == [p.default for p in imported], entry.name
        assert [hint_schema(p.hint, defs) for p in params] == [hint_schema(p.hint, defs) for p in imported], entry.name


def test_factory_params_of_an_imported_factory():
    class Local:
        def __init__(self, a: int, *, b: str = "x", **rest):
            pass

    entry = type("E", (), {"target": Local, "factory": Local})()
    params, var_keyword = factory_params(entry)
    assert params == [Param("a", True, int, NO_DEFAULT), Param("b", False, str, "x")] and var_keyword


PROBE = '''
import torch  # never run: the source is read, not imported
import typing as t


class Plain:
    """No __init__."""


class Child(Plain):
    """Inherits __init__: only importing it says what it takes."""


def build(a: "int", /, b: t.Sequence[float] = (1, 2), *, c: torch.Tensor | None = None, d=-1.5, **kw):
    pass
'''


def test_factory_params_from_source_without_importing(tmp_path, monkeypatch):
    (tmp_path / "schema_probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert from_source("schema_probe:Plain") == ([], False)
    assert from_source("schema_probe:Child") is None and from_source("schema_probe:nosuch") is None
    params, var_keyword = from_source("schema_probe:build")
    assert var_keyword and [p.name for p in params] == ["b", "c", "d"]  # a is positional-only
    b, c, d = params
    assert not b.required and b.default == (1, 2) and d.default == -1.5 and not d.required
    assert hint_schema(b.hint, None) == {"type": "array", "items": {"type": "number"}}
    assert hint_schema(c.hint, None) == {}  # torch.Tensor | None constrains nothing, as validation reads it
    assert "schema_probe" not in sys.modules


# ------------------------------------------------------------------------------------------ the command
def test_schema_command_prints_or_writes_the_schema(tmp_path, capsys):
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert main(["schema", "--out", str(tmp_path / "recipe.schema.json")]) == 0
    assert json.loads((tmp_path / "recipe.schema.json").read_text()) == printed

