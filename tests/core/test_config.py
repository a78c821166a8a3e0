"""Recipe loading and validation (imrec/config/), against small fake plugins registered by the tests.

The fake factories below use ``from __future__ import annotations`` on purpose: their annotations are strings
that the validator must resolve.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal

import pytest
import yaml

from imrec import hookimpl, plugins
from imrec.config import (
    ComponentConfig,
    Recipe,
    SelectConfig,
    apply_overrides,
    bind_component,
    build_component,
    load_recipe,
    recipe_from_dict,
    to_yaml,
)
from imrec.errors import ImrecError, RecipeError


# ------------------------------------------------------------------------------------------------ fake plugin
class FakeEncoder:
    """Fake encoder."""

    aux_losses = ()

    def __init__(self, modalities, d_model: int = 8, kernel_size: int = 3, norm: Literal["layer", "batch"] = "layer"):
        self.modalities, self.d_model, self.kernel_size, self.norm = modalities, d_model, kernel_size, norm


class FakeRecoverer:
    """Fake recoverer with two auxiliary losses."""

    aux_losses = ("diffusion", "reconstruction")

    def __init__(self, modalities, d_model, steps: int, noise: float = 0.1, dims: tuple[int, ...] = (4,),
                 extra: list[int] | None = None):
        self.d_model, self.steps, self.noise, self.dims, self.extra = d_model, steps, noise, dims, extra


class FakeFuser:
    """Fake fuser."""

    aux_losses = ()

    def __init__(self, modalities, d_model, out_dim: int = 16):
        self.out_dim = out_dim


class FakeAligner:
    """Fake aligner with a generator and a discriminator."""

    aux_losses = ("adversarial", "l1", "discriminator")

    def __init__(self, dim, hidden: int = 8, mystery: NoSuchType = None):  # noqa: F821 — unresolvable on purpose
        self.dim, self.hidden = dim, hidden


class FakeHead:
    """Fake head."""

    aux_losses = ()

    def __init__(self, in_dim, task, dropout: float = 0.0):
        self.in_dim, self.task, self.dropout = in_dim, task, dropout


class FakeData:
    """Fake dataset."""

    def __init__(self, preset: str = "mosi", seed: int = 0):
        self.preset, self.seed = preset, seed


class FakeProtocol:
    """Fake protocol."""

    def __init__(self, rate: float | None = None, rates: list[float] | None = None):
        self.rate, self.rates = rate, rates


class FakeMetric:
    """Fake metric."""

    task = "regression"
    higher_is_better = {"mae": False, "fakescore": True}


class FakePlugin:
    @hookimpl
    def register_encoders(self, register):
        register("fake.conv", FakeEncoder)

    @hookimpl
    def register_recoverers(self, register):
        register("fake.rec", FakeRecoverer)

    @hookimpl
    def register_fusers(self, register):
        register("fake.fuse", FakeFuser)

    @hookimpl
    def register_aligners(self, register):
        register("fake.align", FakeAligner)

    @hookimpl
    def register_heads(self, register):
        register("fake.head", FakeHead)

    @hookimpl
    def register_datasets(self, register):
        register("fake.data", FakeData)

    @hookimpl
    def register_protocols(self, register):
        register("fake.rand", FakeProtocol)

    @hookimpl
    def register_metrics(self, register):
        register("fake.metric", FakeMetric)


class FakeRandomPlugin:
    """Provides a protocol ending in ``random`` (the default eval condition) when no built-in does yet."""

    @hookimpl
    def register_protocols(self, register):
        register("fake.random", FakeProtocol)


@pytest.fixture(autouse=True)
def fakes():
    plugins.register_plugin(FakePlugin(), name="config_fakes")
    if not any(n.endswith(".random") for n in plugins.get_registry().names("protocol")):
        plugins.register_plugin(FakeRandomPlugin(), name="config_fake_random")
    yield
    plugins.unregister_plugin("config_fakes")
    plugins.unregister_plugin("config_fake_random")


def base() -> dict:
    """A valid recipe using every fake component and most recipe features."""
    return {
        "data": {"name": "fake.data", "preset": "mosi"},
        "model": {
            "encoder": {"name": "fake.conv", "d_model": 8},
            "recoverer": {"name": "fake.rec", "steps": 10},
            "fuser": {"name": "fake.fuse"},
            "aligner": {"name": "fake.align"},
            "head": {"name": "fake.head"},
        },
        "train": {
            "protocol": {"name": "fake.rand", "rate": 0.5},
            "phases": [
                {"name": "pretrain", "epochs": 2, "optimizers": {"main": {"name": "adam", "lr": 1.0e-3}},
                 "steps": [{"losses": {"task_gt": 1.0}}]},
                {"name": "recover", "epochs": 3, "init_from": "phase:pretrain", "freeze": ["encoder"],
                 "early_stop": 5,
                 "optimizers": {
                     "gen": {"name": "adam", "lr": 1.0e-3, "params": ["recoverer", "fuser", "head", "aligner.gen"]},
                     "disc": {"name": "adamw", "lr": 2, "betas": [0.5, 0.9], "params": ["aligner.disc"]}},
                 "steps": [
                     {"name": "recover", "losses": {"recoverer.diffusion": 0.5}, "optimizer": "gen",
                      "update": ["recoverer"]},
                     {"name": "disc", "losses": {"aligner.discriminator": 0.1}, "optimizer": "disc"},
                     {"name": "task", "losses": {"task_gt": 0.6, "task_rec": 0.4}, "optimizer": "gen",
                      "clip_grad_value": 0.6, "when": "missing"}]},
            ],
        },
        "eval": {"conditions": [{"name": "fake.rand", "rates": [0.0, 0.5]}], "metrics": ["metric"]},
    }


def problems(data: dict, overrides=()) -> list:
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(data, "r.yaml", overrides)
    return info.value.problems


def only(found: list, key: str):
    hits = [p for p in found if p.key == key]
    assert len(hits) == 1, f"expected one problem at {key!r}, got {[str(p) for p in found]}"
    return hits[0]


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ valid recipes
def test_valid_recipe_resolves_names_and_defaults():
    r = recipe_from_dict(base())
    assert r.name == "recipe" and r.source is None and r.description == ""
    assert r.data == ComponentConfig("fake.data", {"preset": "mosi"}, "data")
    assert r.model["recoverer"].name == "fake.rec" and r.model["recoverer"].key == "model.recoverer"
    assert r.train.batch_size == 32 and r.train.eval_batch_size == 256 and r.train.early_stop is None
    assert r.train.select == SelectConfig("loss", "min")
    assert (r.seeds, r.device, r.deterministic, r.output_dir) == ([1111], "auto", True, "runs")
    assert r.eval.metrics == ["fake.metric"] and r.eval.recovery_metrics is True

    pre, rec = r.train.phases
    # a phase inherits the train-level protocol, select and early stop, under its own key
    assert pre.protocol == ComponentConfig("fake.rand", {"rate": 0.5}, "train.phases.pretrain.protocol")
    assert pre.early_stop is None and rec.early_stop == 5 and pre.reuse_forward is True
    # the only optimiser trains every configured slot; a step's optimiser and name default
    assert pre.optimizers["main"].params == ["encoder", "recoverer", "fuser", "aligner", "head"]
    assert pre.optimizers["main"].weight_decay == 0.0 and pre.optimizers["main"].betas is None
    assert (pre.steps[0].name, pre.steps[0].optimizer, pre.steps[0].update) == ("step0", "main", None)
    # ints are accepted for floats and stored as floats; betas become a tuple
    assert rec.optimizers["disc"].lr == 2.0 and isinstance(rec.optimizers["disc"].lr, float)
    assert rec.optimizers["disc"].betas == (0.5, 0.9)
    assert rec.init_from == "phase:pretrain" and rec.freeze == ["encoder"]
    assert rec.steps[2].when == "missing" and rec.steps[2].clip_grad_value == 0.6
    assert r.resolved["train"]["phases"][0]["protocol"] == {"name": "fake.rand", "rate": 0.5}


def test_minimal_recipe_gets_default_eval_condition():
    data = base()
    del data["eval"], data["model"]["recoverer"], data["model"]["aligner"]
    data["train"]["phases"] = data["train"]["phases"][:1]
    r = recipe_from_dict(data)
    assert r.model["recoverer"] is None and r.model["aligner"] is None
    [cond] = r.eval.conditions
    assert cond.name.endswith(".random") and cond.kwargs == {"rates": [0.0]} and cond.key == "eval.conditions.0"
    assert r.eval.metrics is None
    assert r.train.phases[0].optimizers["main"].params == ["encoder", "fuser", "head"]


def test_select_mode_follows_the_metric_direction():
    data = base()
    data["train"]["select"] = {"metric": "fakescore"}
    data["train"]["phases"][1]["select"] = {"metric": "mae"}
    r = recipe_from_dict(data)
    assert r.train.select == SelectConfig("fakescore", "max")
    assert r.train.phases[0].select == SelectConfig("fakescore", "max")
    assert r.train.phases[1].select == SelectConfig("mae", "min")


def test_load_recipe_names_it_after_the_file(tmp_path):
    path = write(tmp_path / "my_recipe.yaml", base())
    r = load_recipe(path)
    assert r.name == "my_recipe" and r.source == path


def test_yaml_reads_exponent_without_dot_as_float(tmp_path):
    text = yaml.safe_dump(base(), sort_keys=False).replace("lr: 0.001", "lr: 1e-3")
    assert "lr: 1e-3" in text
    r = load_recipe(write(tmp_path / "r.yaml", text))
    assert r.train.phases[0].optimizers["main"].lr == 1e-3


# ------------------------------------------------------------------------------------------------ YAML / files
def test_malformed_yaml_reports_line_and_column(tmp_path):
    path = write(tmp_path / "bad.yaml", "data:\n  name: fake.data\nmodel: [encoder\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    text = str(info.value)
    assert str(path) in text and "YAML error at line" in text and "column" in text
    assert "line 4" in text  # the unclosed flow sequence is noticed at the end of the file


def test_duplicate_key_is_an_error(tmp_path):
    path = write(tmp_path / "dup.yaml", "seeds: [1]\nseeds: [2]\n")
    with pytest.raises(RecipeError, match="line 2, column 1: found duplicate key 'seeds'"):
        load_recipe(path)


@pytest.mark.parametrize("text,found", [("", "empty"), ("- a\n- b\n", "top level is list")])
def test_top_level_must_be_a_mapping(tmp_path, text, found):
    with pytest.raises(RecipeError, match=found):
        load_recipe(write(tmp_path / "r.yaml", text))


def test_missing_file_suggests_a_similar_recipe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "recipes" / "quickstart.yaml", base())
    with pytest.raises(ImrecError) as info:
        load_recipe("quikstart.yaml")
    text = str(info.value)
    assert "quikstart.yaml" in text and "no such recipe file" in text
    assert "did you mean recipes/quickstart.yaml" in text


# ------------------------------------------------------------------------------------------------ validation
def test_unknown_keys_get_suggestions_at_every_level():
    data = base()
    data["trian"] = data.pop("train")
    data["model"]["recover"] = data["model"].pop("recoverer")
    found = problems(data)
    p = only(found, "trian")
    assert "did you mean 'train'" in p.message and "train" in p.allowed
    assert "did you mean 'recoverer'" in only(found, "model.recover").message
    assert only(found, "train").message == "missing (required)"

    data = base()
    data["train"]["phases"][1]["epoch"] = data["train"]["phases"][1].pop("epochs")
    data["train"]["phases"][1]["steps"][0]["clip_grad"] = 1.0
    found = problems(data)
    assert "did you mean 'epochs'" in only(found, "train.phases.recover.epoch").message
    assert only(found, "train.phases.recover.epochs").message == "missing (required)"
    assert "unknown key 'clip_grad'" in only(found, "train.phases.recover.steps.recover.clip_grad").message


def test_unknown_component_lists_registered_names_and_suggests():
    data = base()
    data["model"]["recoverer"]["name"] = "fake.recc"
    p = only(problems(data), "model.recoverer.name")
    assert "unknown recoverer 'fake.recc'" in p.message and "did you mean 'fake.rec'" in p.message
    assert "fake.rec" in p.allowed
    assert "fake.rec" in str(p)


def test_wrong_argument_types():
    data = base()
    data["model"]["encoder"].update(d_model="eight", norm="layr", kernel_size=3.5)
    data["model"]["recoverer"].update(noise=1, dims=[2, "x"], extra=None)  # int for float and null are fine
    data["model"]["head"]["dropout"] = True
    found = problems(data)
    assert len(found) == 5, [str(p) for p in found]
    p = only(found, "model.encoder.d_model")
    assert "found string 'eight'" in p.message and p.expected == "int"
    p = only(found, "model.encoder.norm")
    assert "did you mean 'layer'" in p.message and p.allowed == ["layer", "batch"]
    assert only(found, "model.encoder.kernel_size").expected == "int"
    assert only(found, "model.recoverer.dims").expected == "a list of int"
    assert only(found, "model.head.dropout").expected == "float"


def test_unresolvable_annotation_is_not_checked_but_others_are():
    data = base()
    data["model"]["aligner"].update(mystery="anything")
    recipe_from_dict(data)
    data["model"]["aligner"].update(hidden="big")
    assert only(problems(data), "model.aligner.hidden").expected == "int"


def test_missing_required_argument():
    data = base()
    del data["model"]["recoverer"]["steps"]
    p = only(problems(data), "model.recoverer.steps")
    assert "missing required argument" in p.message and p.expected == "int"


def test_injected_argument_set_by_the_recipe():
    data = base()
    data["model"]["head"]["in_dim"] = 4
    data["model"]["recoverer"]["d_model"] = 4
    found = problems(data)
    assert "injected by imrec" in only(found, "model.head.in_dim").message
    assert "remove it" in only(found, "model.recoverer.d_model").message


def test_unknown_argument_gets_a_suggestion():
    data = base()
    data["model"]["fuser"]["outdim"] = 3
    p = only(problems(data), "model.fuser.outdim")
    assert "did you mean 'out_dim'" in p.message and p.allowed == ["out_dim"]


def test_many_problems_are_reported_together():
    data = base()
    data["seeds"] = [1, 1]
    data["device"] = "gpu"
    data["train"]["batch_size"] = 0
    data["data"]["name"] = "nope.nothing"
    data["train"]["phases"][1]["steps"][1]["when"] = "sometimes"
    with pytest.raises(RecipeError) as info:
        recipe_from_dict(data, "r.yaml")
    keys = {p.key for p in info.value.problems}
    assert {"seeds", "device", "train.batch_size", "data.name", "train.phases.recover.steps.disc.when"} <= keys
    assert str(info.value).startswith("5 problems in recipe")
    assert all(p.file == "r.yaml" for p in info.value.problems)


def test_loss_names_are_validated():
    data = base()
    steps = data["train"]["phases"][1]["steps"]
    steps[0]["losses"] = {"recoverer.difusion": 1.0}   # misspelt aux loss
    steps[1]["losses"] = {"task": 1.0}                  # neither task_* nor slot.aux
    steps[2]["losses"] = {"task_gt": "high"}            # weight must be a number
    found = problems(data)
    p = only(found, "train.phases.recover.steps.recover.losses.recoverer.difusion")
    assert "did you mean 'recoverer.diffusion'" in p.message
    assert p.allowed == ["recoverer.diffusion", "recoverer.reconstruction"]
    p = only(found, "train.phases.recover.steps.disc.losses.task")
    assert "unknown loss 'task'" in p.message and "aligner.l1" in p.allowed
    assert only(found, "train.phases.recover.steps.task.losses.task_gt").expected == "float"

    data = base()
    del data["model"]["aligner"]
    data["train"]["phases"][1]["optimizers"]["disc"]["params"] = ["fuser"]
    data["train"]["phases"][1]["optimizers"]["gen"]["params"] = ["recoverer", "head"]
    found = problems(data)
    assert "which model.aligner does not configure" in \
        only(found, "train.phases.recover.steps.disc.losses.aligner.discriminator").message


def test_optimizers_steps_and_paths_are_cross_checked():
    data = base()
    phase = data["train"]["phases"][1]
    phase["optimizers"]["gen"]["params"] = ["recoverer", "fusr", "head", "aligner.gen"]
    phase["optimizers"]["disc"]["name"] = "adamm"
    phase["optimizers"]["disc"]["momentum"] = 0.9
    phase["steps"][0]["update"] = ["recoverer", "head.out", "aligner.disc"]
    phase["steps"][1]["optimizer"] = "dsic"
    del phase["steps"][2]["optimizer"]
    phase["freeze"] = ["encoders"]
    found = problems(data)
    assert "did you mean 'fuser'" in only(found, "train.phases.recover.optimizers.gen.params.1").message
    p = only(found, "train.phases.recover.optimizers.disc.name")
    assert "did you mean 'adam'" in p.message and p.allowed == ["adam", "adamw", "sgd"]
    assert "momentum applies to sgd" in only(found, "train.phases.recover.optimizers.disc.momentum").message
    assert "not among the params of optimizer 'gen'" in \
        only(found, "train.phases.recover.steps.recover.update.2").message
    assert not [p for p in found if p.key == "train.phases.recover.steps.recover.update.1"]  # head.out ⊂ head
    assert "did you mean 'disc'" in only(found, "train.phases.recover.steps.disc.optimizer").message
    assert "several optimizers" in only(found, "train.phases.recover.steps.task.optimizer").message
    assert "did you mean 'encoder'" in only(found, "train.phases.recover.freeze.0").message


def test_phase_level_checks():
    data = base()
    data["train"]["phases"][0]["init_from"] = "phase:recover"   # a later phase
    data["train"]["phases"][1]["name"] = "pretrain"             # duplicate
    data["train"]["phases"][1]["init_from"] = "phase:pretrain"  # fine: the first one is earlier
    found = problems(data)
    p = only(found, "train.phases.pretrain.init_from")
    assert "does not name an earlier phase" in p.message and not p.allowed
    assert "duplicate phase name" in only(found, "train.phases.pretrain.name").message

    data = base()
    del data["train"]["protocol"]
    data["train"]["phases"][1]["protocol"] = {"name": "fake.rand", "rate": 0.0}
    data["train"]["phases"][1]["optimizers"]["gen"]["params"] = ["recoverer", "aligner"]
    found = problems(data)
    assert "train.protocol is not set" in only(found, "train.phases.pretrain.protocol").message
    assert "also in optimizer 'gen'" not in str(found)
    data["train"]["phases"][1]["optimizers"]["disc"]["params"] = ["aligner"]
    assert "also in optimizer 'gen'" in str(problems(data))


def test_select_seeds_and_sections():
    data = base()
    data["train"]["select"] = {"metric": "mea", "mode": "minimum"}
    data["seeds"] = []
    data["eval"]["metrics"] = ["fake.metrik"]
    data["eval"]["conditions"] = []
    found = problems(data)
    assert "did you mean 'mae'" in only(found, "train.select.metric").message
    assert only(found, "train.select.mode").allowed == ["min", "max"]
    assert "at least one seed" in only(found, "seeds").message
    assert "did you mean 'fake.metric'" in only(found, "eval.metrics.0").message
    assert only(found, "eval.conditions").expected == "a non-empty list of protocols"

    data = base()
    data["model"] = ["encoder"]
    data["train"]["phases"] = []
    found = problems(data)
    assert only(found, "model").expected == "a mapping"
    assert only(found, "train.phases").expected == "a non-empty list of phases"


# ------------------------------------------------------------------------------------------------ overrides
def test_overrides_set_typed_values_and_delete():
    r = recipe_from_dict(base(), overrides=[
        "train.batch_size=16", "seeds=[1, 2]", "train.early_stop=null", "model.recoverer.noise=0.5",
        "~model.aligner", "train.phases.recover.steps.disc.losses.task_gt=1", "~train.phases.recover.steps.disc.losses.aligner.discriminator",
        "train.phases.recover.optimizers.disc.params=[fuser]", "train.phases.recover.optimizers.gen.params=[recoverer, head]",
        "description=two words",
    ])
    assert r.train.batch_size == 16 and r.seeds == [1, 2] and r.train.early_stop is None
    assert r.model["recoverer"].kwargs == {"steps": 10, "noise": 0.5} and r.model["aligner"] is None
    assert r.train.phases[1].steps[1].losses == {"task_gt": 1.0}
    assert r.description == "two words"
    assert r.overrides[0] == "train.batch_size=16"


def test_override_dotted_loss_name_and_list_addressing():
    out = apply_overrides(base(), [
        "train.phases.1.epochs=7",                                    # index
        "train.phases.pretrain.epochs=4",                             # element by name
        "train.phases.recover.steps.recover.losses.recoverer.diffusion=0.25",   # existing dotted key
        "train.phases.recover.steps.recover.losses.recoverer.reconstruction=1",  # new dotted key
        "train.phases.-1.steps.0.clip_grad_norm=2.0",
        "~train.phases.recover.steps.2",
    ])
    pre, rec = out["train"]["phases"]
    assert pre["epochs"] == 4 and rec["epochs"] == 7
    assert rec["steps"][0]["losses"] == {"recoverer.diffusion": 0.25, "recoverer.reconstruction": 1}
    assert rec["steps"][0]["clip_grad_norm"] == 2.0 and len(rec["steps"]) == 2


def test_slot_swap_drops_arguments_but_name_override_keeps_them():
    swapped = apply_overrides(base(), ["recoverer=other.thing", "data={name: fake.data, seed: 3}", "aligner=null"])
    assert swapped["model"]["recoverer"] == {"name": "other.thing"}
    assert swapped["data"] == {"name": "fake.data", "seed": 3} and swapped["model"]["aligner"] is None
    renamed = apply_overrides(base(), ["model.recoverer.name=other.thing"])
    assert renamed["model"]["recoverer"] == {"name": "other.thing", "steps": 10}
    assert "recoverer" not in apply_overrides(base(), ["~recoverer"])["model"]


def test_overrides_do_not_modify_their_input():
    data = base()
    before = copy.deepcopy(data)
    apply_overrides(data, ["train.batch_size=1", "~model.aligner"])
    assert data == before


def test_bad_overrides_name_the_override():
    with pytest.raises(RecipeError) as info:
        apply_overrides(base(), [
            "train.phases.recovr.epochs=5", "~train.protocl", "train.phases.9.epochs=1", "seeds", "x=[1,",
            "model.encoder.d_model.deep=3",
        ], "r.yaml")
    found = info.value.problems
    assert len(found) == 6
    p = only(found, "override 'train.phases.recovr.epochs=5'")
    assert "no element named 'recovr'" in p.message and "did you mean 'recover'" in p.message and p.file == "r.yaml"
    assert "did you mean 'protocol'" in only(found, "override '~train.protocl'").message
    assert "out of range" in only(found, "override 'train.phases.9.epochs=1'").message
    assert "expected KEY=VALUE" in only(found, "override 'seeds'").message
    assert "cannot read the value" in only(found, "override 'x=[1,'").message
    assert "not a mapping or list" in only(found, "override 'model.encoder.d_model.deep=3'").message


def test_override_of_unknown_key_is_then_reported_by_validation():
    p = only(problems(base(), ["train.phases.recover.epoch=5"]), "train.phases.recover.epoch")
    assert "did you mean 'epochs'" in p.message


# ------------------------------------------------------------------------------------------------ extends
def test_extends_deep_merges_over_a_chain(tmp_path):
    grand = base()
    grand["name"] = "grand"
    grand["seeds"] = [1, 2, 3]
    write(tmp_path / "base" / "grand.yaml", grand)
    write(tmp_path / "base" / "parent.yaml", {
        "extends": "grand.yaml",
        "description": "parent",
        "model": {"recoverer": {"noise": 0.3}, "aligner": None},
        "train": {"phases": [{"name": "only", "epochs": 1, "optimizers": {"o": {"name": "sgd", "lr": 0.1}},
                              "steps": [{"losses": {"task_gt": 1}}]}]},
    })
    child = write(tmp_path / "child.yaml", {"extends": "base/parent.yaml", "model": {"recoverer": {"steps": 4}},
                                            "seeds": [7]})
    r = load_recipe(child)
    assert r.name == "child"                 # the parents' name is not inherited
    assert r.description == ""              # nor its description: it described the parent's experiment
    assert r.model["recoverer"].kwargs == {"steps": 4, "noise": 0.3}   # mappings merge recursively
    assert r.model["aligner"] is None                                  # explicit null sets null
    assert r.seeds == [7]                                              # lists replace
    assert [p.name for p in r.train.phases] == ["only"]
    assert r.model["encoder"].kwargs == {"d_model": 8}                 # untouched keys come from the grandparent


def test_extends_cycle_and_missing_parent(tmp_path):
    write(tmp_path / "a.yaml", {"extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(RecipeError, match="cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_recipe(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"extends": "nothere.yaml"})
    with pytest.raises(RecipeError, match="no such recipe file \\(named by 'extends' in .*c.yaml\\)"):
        load_recipe(tmp_path / "c.yaml")


def test_extends_in_a_dict_is_relative_to_its_source(tmp_path):
    write(tmp_path / "parent.yaml", base())
    r = recipe_from_dict({"extends": "parent.yaml", "seeds": [5]}, str(tmp_path / "x.yaml"))
    assert r.seeds == [5] and r.name == "x" and r.model["recoverer"].name == "fake.rec"


# ------------------------------------------------------------------------------------------------ to_yaml
def test_to_yaml_round_trips(tmp_path):
    data = base()
    data["model"]["recoverer"]["dims"] = [3, 4]
    data["model"]["encoder"]["norm"] = "batch"
    data["train"]["select"] = {"metric": "mae"}
    # a string that looks like a float (to imrec's loader) must stay a string
    r = load_recipe(write(tmp_path / "rt.yaml", data), ["train.batch_size=8", "description='1e-3'"])
    text = to_yaml(r)
    assert text.startswith("# imrec recipe 'rt', resolved from") and "# overrides: train.batch_size=8 description='1e-3'" in text
    again = recipe_from_dict(yaml.safe_load(text))
    assert again == r and again.resolved == r.resolved
    assert again.description == "1e-3" and again.train.batch_size == 8
    # written and loaded as a file too, and resolving is idempotent
    reloaded = load_recipe(write(tmp_path / "out.yaml", text))
    assert reloaded == r and to_yaml(reloaded).split("\n", 1)[1] == text.split("\n", 2)[2]


def test_recipe_equality_ignores_where_it_came_from():
    a = recipe_from_dict(base(), overrides=["seeds=[1111]"])
    b = recipe_from_dict(base())
    assert isinstance(a, Recipe) and a == b and a.overrides != b.overrides


# ------------------------------------------------------------------------------------------------ building
def test_build_component_injects_only_named_context():
    r = recipe_from_dict(base(), overrides=["model.recoverer.dims=[1, 2]", "model.recoverer.noise=1"])
    rec = build_component("recoverer", r.model["recoverer"], modalities=("t", "a"), d_model=32)
    assert (rec.d_model, rec.steps, rec.dims, rec.noise) == (32, 10, (1, 2), 1.0)   # list→tuple, int→float
    assert isinstance(rec.noise, float)
    factory, kwargs = bind_component("aligner", r.model["aligner"], {"dim": 16, "task": "ignored"})
    assert factory is FakeAligner and kwargs == {"dim": 16}
    head = build_component("head", r.model["head"], in_dim=16, task="regression")
    assert (head.in_dim, head.task) == (16, "regression")
    # a required context argument that the caller does not pass
    with pytest.raises(RecipeError, match="imrec injects it; the caller did not provide it"):
        build_component("head", r.model["head"], in_dim=16)
