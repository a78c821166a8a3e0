"""docs/hooks.md documents every hook with its exact signature, and every hook is exercised by a test."""

import inspect
import re
from pathlib import Path

import pluggy

from imrec import hookspecs

REPO = Path(__file__).resolve().parents[2]


def _hooks():
    marker = "imrec_spec"
    return {n: f for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker)}


def test_there_are_hooks():
    assert set(_hooks()) >= {"register_recoverers", "register_datasets", "register_commands"}


def test_every_hook_documented_with_exact_signature():
    doc = (REPO / "docs" / "hooks.md").read_text()
    headings = set(re.findall(r"^## `(.+)`$", doc, flags=re.M))
    for name, fn in _hooks().items():
        assert f"{name}{inspect.signature(fn)}" in headings, f"docs/hooks.md lacks '## `{name}{inspect.signature(fn)}`'"
    documented = {h.split("(")[0] for h in headings}
    assert documented <= set(_hooks()), f"docs/hooks.md documents hooks that do not exist: {documented - set(_hooks())}"


def test_every_hook_is_tested():
    me = Path(__file__).resolve()
    texts = [p.read_text() for p in (REPO / "tests").rglob("test_*.py") if p.resolve() != me]
    for name in _hooks():
        assert any(name in t for t in texts), f"no test exercises hook {name}"


def test_hookspec_marker_is_imrec():
    assert isinstance(hookspecs.hookspec, pluggy.HookspecMarker)
