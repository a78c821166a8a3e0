"""Plugin loading, the registry's errors, and every hook exercised through a fake third-party plugin."""

import argparse
import json
import types

import pytest

from imrec import hookimpl, plugins
from imrec.errors import PluginError, UnknownComponentError
from imrec.registry import KINDS


class Thing:
    """A test component that does nothing but exist."""


def make_plugin(names=("fake.thing",), kinds=tuple(KINDS)):
    """A plugin object implementing the register hooks of ``kinds`` with ``names``."""
    ns = types.SimpleNamespace()
    for kind in kinds:
        hook = KINDS[kind]

        def impl(register, _names=names):
            for n in _names:
                register(n, Thing)

        impl.__name__ = hook
        setattr(ns, hook, hookimpl(impl))
    return ns


def test_builtins_load_through_entry_points():
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert {"data", "protocols", "metrics", "rohydr", "baselines"} <= set(info)
    assert all(info[n]["builtin"] for n in ("data", "rohydr"))
    assert info["rohydr"]["module"] == "imrec_rohydr"


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_register_hook_registers(kind):
    plugins.register_plugin(make_plugin(kinds=(kind,)), name="fakeplugin")
    reg = plugins.get_registry()
    entry = reg.resolve(kind, "fake.thing")
    assert entry.plugin == "fakeplugin" and entry.factory is Thing
    assert entry.summary == "A test component that does nothing but exist."
    # a bare name resolves when unique
    assert reg.resolve(kind, "thing").name == "fake.thing"


def test_register_hooks_by_name():
    # Each hook, named: register_encoders register_recoverers register_fusers register_aligners register_heads
    # register_datasets register_protocols register_metrics
    plugins.register_plugin(make_plugin(), name="fakeplugin")
    reg = plugins.get_registry()
    for kind in KINDS:
        assert "fake.thing" in reg.names(kind)


def test_a_factory_registered_by_name_is_imported_on_first_use(tmp_path, monkeypatch):
    """`register(name, "module:Name")`: listing (names, summaries) reads the source; building imports it."""
    (tmp_path / "lazy_thing_mod.py").write_text(
        'RAN = []\nRAN.append(1)\n\n\nclass LazyThing:\n    """A component imported only when built."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "lazy_thing_mod", raising=False)
    ns = types.SimpleNamespace(register_recoverers=hookimpl(
        lambda register: register("fake.lazy", "lazy_thing_mod:LazyThing")))
    ns.register_recoverers.__name__ = "register_recoverers"
    plugins.register_plugin(ns, name="lazyplugin")
    entry = plugins.get_registry().resolve("recoverer", "fake.lazy")
    assert entry.summary == "A component imported only when built."
    assert "lazy_thing_mod" not in __import__("sys").modules
    assert entry.factory.__name__ == "LazyThing" and "lazy_thing_mod" in __import__("sys").modules


@pytest.mark.parametrize("target, message", [("not a module path", "must read 'package.module:Name'"),
                                             ("no_such_module_i19:Thing", "cannot be imported")])
def test_bad_factory_names_are_specific_errors(target, message):
    ns = types.SimpleNamespace(register_recoverers=hookimpl(lambda register: register("fake.bad", target)))
    ns.register_recoverers.__name__ = "register_recoverers"
    with pytest.raises(PluginError, match=message) as info:
        plugins.register_plugin(ns, name="badplugin")
        plugins.get_registry().resolve("recoverer", "fake.bad").factory
    assert "badplugin" in str(info.value) and "fake.bad" in str(info.value)


def test_duplicate_name_names_both_plugins():
    plugins.register_plugin(make_plugin(kinds=("recoverer",)), name="first")
    with pytest.raises(PluginError) as exc:
        plugins.register_plugin(make_plugin(kinds=("recoverer",)), name="second")
    msg = str(exc.value)
    assert "first" in msg and "second" in msg and "fake.thing" in msg
    # the failed plugin was rolled back, the first still works
    assert plugins.get_registry().resolve("recoverer", "fake.thing").plugin == "first"


def test_unknown_name_lists_registered_and_suggests():
    plugins.register_plugin(make_plugin(names=("fake.meanfill", "fake.zerofill"), kinds=("recoverer",)), name="p")
    with pytest.raises(UnknownComponentError) as exc:
        plugins.get_registry().resolve("recoverer", "fake.meanfil")
    msg = str(exc.value)
    assert "did you mean 'fake.meanfill'" in msg
    assert "fake.zerofill" in msg


def test_names_must_be_namespaced():
    with pytest.raises(PluginError, match="namespaced"):
        plugins.register_plugin(make_plugin(names=("plain",), kinds=("head",)), name="p")


def test_misspelt_hook_is_caught():
    bad = types.SimpleNamespace()

    @hookimpl
    def register_recoverer(register):  # missing the final "s"
        register("x.y", Thing)

    bad.register_recoverer = register_recoverer
    pm = plugins.get_plugin_manager()
    pm.register(bad, name="bad")
    import pluggy

    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()
    pm.unregister(bad)


def test_env_var_restricts_third_party_plugins(monkeypatch, tmp_path):
    # A third-party distribution on sys.path, found through its entry point.
    dist = tmp_path / "thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imrec]\nthird = thirdparty_mod\n")
    (tmp_path / "thirdparty_mod.py").write_text(
        "from imrec import hookimpl\n"
        "class R:\n    'A third-party recoverer.'\n"
        "@hookimpl\ndef register_recoverers(register):\n    register('third.r', R)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("IMREC_LOAD_PLUGINS", "")
    plugins.reset()
    assert "third" not in {p["name"] for p in plugins.plugin_info()}
    monkeypatch.setenv("IMREC_LOAD_PLUGINS", "third")
    plugins.reset()
    info = {p["name"]: p for p in plugins.plugin_info()}
    assert info["third"]["version"] == "1.0" and not info["third"]["builtin"]
    assert plugins.get_registry().resolve("recoverer", "third.r").plugin == "third"
    monkeypatch.delenv("IMREC_LOAD_PLUGINS")
    plugins.reset()
    assert "third" in {p["name"] for p in plugins.plugin_info()}


def test_register_commands_hook(capsys):
    ns = types.SimpleNamespace()

    @hookimpl
    def register_commands(subparsers):
        p = subparsers.add_parser("hello", help="say hello")
        p.add_argument("--who", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.who}") or 0)

    ns.register_commands = register_commands
    plugins.register_plugin(ns, name="greeter")
    from imrec.cli import main

    assert main(["hello", "--who", "imrec"]) == 0
    assert capsys.readouterr().out.strip() == "hello imrec"


def test_plugins_command_json(capsys):
    from imrec.cli import main

    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = {p["name"]: p for p in data}["rohydr"]
    assert set(row) >= {"name", "version", "hooks", "components"}


def test_list_command(capsys):
    plugins.register_plugin(make_plugin(kinds=("fuser",)), name="fakeplugin")
    from imrec.cli import main

    assert main(["list", "fuser", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name": "fake.thing", "plugin": "fakeplugin", "summary": "A test component that does nothing but exist."} in rows
    assert main(["list", "fusers"]) == 0
    assert main(["list", "fusr"]) == 2
    assert "did you mean 'fuser'" in capsys.readouterr().err
