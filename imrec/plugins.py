"""Plugin loading: built-ins and third parties alike come in through the ``imrec`` entry-point group.

``IMREC_LOAD_PLUGINS`` restricts the *third-party* plugins loaded (comma-separated entry-point names; empty =
none). Built-ins (entry points of the ``imrec`` distribution itself) always load, through the same path.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .registry import KINDS, Registry

GROUP = "imrec"
ENV_VAR = "IMREC_LOAD_PLUGINS"

_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
_info: dict[str, dict[str, Any]] = {}


def _allowed_third_party() -> set[str] | None:
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed_third_party()
    eps = md.entry_points(group=GROUP)
    seen: dict[str, str] = {}
    builtin_found = False
    for ep in sorted(eps, key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        builtin = dist == "imrec"
        builtin_found |= builtin
        if not builtin and allowed is not None and ep.name not in allowed:
            continue
        if ep.name in seen and seen[ep.name] != ep.value:
            raise PluginError(
                f"two plugins are named {ep.name!r}: {seen[ep.name]} and {ep.value} (distribution {dist})"
            )
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must say who it is
            raise PluginError(f"plugin {ep.name!r} ({ep.value}, distribution {dist}) failed to import: {exc}") from exc
        pm.register(module, name=ep.name)
        seen[ep.name] = ep.value
        _info[ep.name] = {"version": version, "distribution": dist, "builtin": builtin, "module": ep.value}
    if not builtin_found:
        raise PluginError(
            "imrec's built-in plugins are not installed (no entry points in group 'imrec'); "
            "install the project with `pip install -e .` from its root"
        )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("imrec")
        pm.add_hookspecs(hookspecs)
        _load_entry_points(pm)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook imrec does not define: {exc}") from exc
        _pm = pm
    return _pm


def register_plugin(module: ModuleType | object, name: str, version: str = "local") -> None:
    """Register a plugin object by hand (tests, notebooks). Same hooks, same checks as an entry point."""
    global _registry
    pm = get_plugin_manager()
    if pm.has_plugin(name):
        raise PluginError(f"a plugin named {name!r} is already registered")
    pm.register(module, name=name)
    _info[name] = {"version": version, "distribution": None, "builtin": False, "module": getattr(module, "__name__", repr(module))}
    _registry = None
    try:
        get_registry()
    except Exception:
        unregister_plugin(name)
        raise


def unregister_plugin(name: str) -> None:
    global _registry
    pm = get_plugin_manager()
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _info.pop(name, None)
    _registry = None


def reset() -> None:
    """Forget everything loaded (tests use this after changing the environment variable)."""
    global _pm, _registry
    _pm, _registry = None, None
    _info.clear()


def get_registry() -> Registry:
    """The registry of all components of all loaded plugins."""
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        reg = Registry()
        for kind, hook_name in KINDS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                plugin = impl.plugin_name

                def register(name: str, factory: Any, _kind: str = kind, _plugin: str = plugin) -> None:
                    reg.add(_kind, name, factory, _plugin)

                impl.function(**{a: v for a, v in {"register": register}.items() if a in impl.argnames})
        _registry = reg
    return _registry


def plugin_info() -> list[dict[str, Any]]:
    """One dict per loaded plugin: name, version, builtin, hooks implemented, components registered."""
    pm = get_plugin_manager()
    reg = get_registry()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda t: t[0]):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        comps = {kind: [e.name for e in reg.entries(kind) if e.plugin == name] for kind in KINDS}
        info = _info.get(name, {})
        rows.append(
            {
                "name": name,
                "version": info.get("version"),
                "builtin": info.get("builtin", False),
                "module": info.get("module"),
                "hooks": hooks,
                "components": {k: v for k, v in comps.items() if v},
            }
        )
    return rows


def add_commands(subparsers: Any) -> None:
    get_plugin_manager().hook.register_commands(subparsers=subparsers)


