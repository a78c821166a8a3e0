"""The model's slots are declared once (imrec/slots.py): hooks, registry kinds, the model, the recipe language's
constants and docs/hooks.md follow that declaration, and this test fails where one drifts from it."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imrec import hookspecs, registry, slots
from imrec.slots import SLOTS

REPO = Path(__file__).resolve().parents[2]
DATA_KINDS = {"dataset": "register_datasets", "protocol": "register_protocols", "metric": "register_metrics",
              "logger": "register_loggers"}


def _hookspecs():
    return {n: f for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "imrec_spec")}


def test_the_declaration_is_consistent():
    names = [s.name for s in SLOTS]
    assert names == ["encoder", "recoverer", "fuser", "aligner", "head"] and len(set(names)) == len(names)
    assert slots.COMPONENT_SLOTS == tuple(names)
    assert set(slots.BYPASSABLE_SLOTS) <= set(slots.OPTIONAL_SLOTS)  # a phase cannot run without a required one
    known = set(slots.DATA_CONTEXT)
    for s in SLOTS:  # context comes from the data or from a slot before it
        assert set(s.context) <= known, f"slot {s.name}: context {set(s.context) - known} is not known yet"
        for key, attr in s.provides.items():
            assert attr in s.protocol.__annotations__, f"{s.protocol.__name__} does not declare {attr!r}"
            known.add(key)
    assert slots.slot("fuser").hook == "register_fusers"
    with pytest.raises(KeyError, match="no slot 'decoder'; slots: encoder, recoverer"):
        slots.slot("decoder")


def test_every_slot_has_its_hook_and_every_register_hook_a_kind():
    specs = _hookspecs()
    for s in SLOTS:
        assert s.hook in specs, f"no hookspec {s.hook} for slot {s.name}"
        assert str(inspect.signature(specs[s.hook])) == "(register: 'Register') -> 'None'"
        assert s.name in inspect.getdoc(specs[s.hook]) and s.protocol.__name__ in inspect.getdoc(specs[s.hook])
    register_hooks = {n for n in specs if n != "register_commands"}
    assert register_hooks == {s.hook for s in SLOTS} | set(DATA_KINDS.values()), "a register hook without a kind"
    assert registry.KINDS == {**{s.name: s.hook for s in SLOTS}, **DATA_KINDS}


def test_the_recipe_language_uses_the_declared_slots():
    # The recipe language derives its slot constants from the declaration, in one spot (imrec/config/recipe.py).
    from imrec import config
    from imrec.config import recipe

    assert recipe.COMPONENT_SLOTS is slots.COMPONENT_SLOTS
    assert recipe.REQUIRED_SLOTS is slots.REQUIRED_SLOTS
    assert recipe.BYPASSABLE is slots.BYPASSABLE_SLOTS
    assert recipe.CONTEXT_ARGS is slots.CONTEXT_ARGS and dict(config.CONTEXT_ARGS) == slots.CONTEXT_ARGS
    assert tuple(recipe.KEYS["model"]) == slots.COMPONENT_SLOTS and recipe.REQUIRED["model"] == slots.REQUIRED_SLOTS
    assert recipe.SWAP_WORDS == ("data", *slots.COMPONENT_SLOTS)


def test_the_model_uses_the_declared_slots():
    import torch

    from imrec.interfaces import DatasetSpec, ModalitySpec, TaskSpec
    from imrec.model import IMModel, data_context

    spec = DatasetSpec("d", (ModalitySpec("a", 2),), TaskSpec("regression"))
    assert tuple(data_context(spec)) == slots.DATA_CONTEXT
    parts = {s.name: torch.nn.Identity() for s in SLOTS}
    assert IMModel(spec, parts).slots() == list(slots.COMPONENT_SLOTS)
    for name in slots.OPTIONAL_SLOTS:
        assert name not in IMModel(spec, {**parts, name: None}).slots()
    for name in slots.REQUIRED_SLOTS:
        with pytest.raises(ValueError, match=f"the model needs a {name}"):
            IMModel(spec, {**parts, name: None})


def _kinds_table(doc: str) -> list[list[str]]:
    rows = re.findall(r"^\| (\w+) \| `(\w+)` \| `(\w+)` \| (.+) \|$", doc, flags=re.M)
    return [[kind, hook, protocol, context] for kind, hook, protocol, context in rows]


def test_docs_hooks_md_lists_every_slot_as_declared():
    doc = (REPO / "docs" / "hooks.md").read_text()
    rows = _kinds_table(doc)
    slot_rows = [r for r in rows if r[1] in {s.hook for s in SLOTS}]
    assert [r[0] for r in slot_rows] == list(slots.COMPONENT_SLOTS), "docs/hooks.md's kinds table: slots in order"
    for (kind, hook, protocol, context), s in zip(slot_rows, SLOTS):
        assert (hook, protocol) == (s.hook, s.protocol.__name__), f"docs/hooks.md's row for {kind}"
        assert context == ", ".join(f"`{c}`" for c in s.context), f"docs/hooks.md's context of {kind}"
    assert {r[0]: r[1] for r in rows} == registry.KINDS, "docs/hooks.md's kinds table against imrec.registry.KINDS"
    # The section on adding a slot names files that exist.
    section = doc.split("## Adding a slot", 1)[1].split("\n## ", 1)[0]
    for path in re.findall(r"`((?:imrec|docs|tests)/[\w/]+\.(?:py|md))`", section):
        assert (REPO / path).is_file(), f"docs/hooks.md, 'Adding a slot', names {path}, which does not exist"


def test_the_declaration_imports_neither_torch_nor_numpy():
    code = "import sys, imrec.slots, imrec.registry; assert not {'torch', 'numpy'} & set(sys.modules), sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_new_slots_hook_is_generated_from_its_declaration():
    import pluggy

    from imrec import hookimpl
    from imrec.interfaces import Head
    from imrec.slots import Slot

    new = Slot("decoder", Head, "register_decoders", required=False, bypassable=True, context=("in_dim",),
               description="vector → reconstructed features")
    spec = hookspecs._slot_hook(new)
    assert spec.__name__ == "register_decoders" and str(inspect.signature(spec)) == "(register: 'Register') -> 'None'"
    assert "decoder factories (vector → reconstructed features)" in spec.__doc__ and "a ``Head``" in spec.__doc__

    class Specs:  # what imrec.hookspecs would hold with the new slot in SLOTS
        register_decoders = staticmethod(spec)

    class Plugin:
        @hookimpl
        def register_decoders(self, register):
            register("mine.decoder", object)

    pm = pluggy.PluginManager("imrec")
    pm.add_hookspecs(Specs)
    pm.register(Plugin())
    pm.check_pending()
    seen = []
    pm.hook.register_decoders(register=lambda name, factory: seen.append(name))
    assert seen == ["mine.decoder"]
