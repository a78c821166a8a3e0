"""Plugin loading: built-ins and third parties alike come in through the ``imrec`` entry-point group.

``IMREC_LOAD_PLUGINS`` restricts the *third-party* plugins loaded (comma-separated entry-point names; empty =
none). Built-ins (entry points of the ``imrec`` distribution itself) always load, through the same path. A name
that is no installed plugin is refused.

A plugin that fails to import, or whose register hook raises, is reported once (on stderr, naming the plugin and
``IMREC_LOAD_PLUGINS``) and left out: ``--help``, ``--version``, ``imrec plugins`` and every command that does not
need its components keep working.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
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
_broken: dict[str, dict[str, Any]] = {}  # plugin name -> what failed (import or a hook), reported once


def _allowed_third_party() -> set[str] | None:
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _excluding(name: str) -> str:
    """How to leave plugin ``name`` out: an IMREC_LOAD_PLUGINS value naming every other third-party plugin."""
    others = sorted({ep.name for ep in md.entry_points(group=GROUP)
                     if ep.name != name and (ep.dist is None or ep.dist.name != "imrec")})
    return f"{ENV_VAR}={','.join(others)}" if others else f"{ENV_VAR}= (empty: built-ins only)"


def _mark_broken(name: str, what: str, exc: BaseException, builtin: bool, module: str | None = None) -> None:
    """Record plugin ``name`` as unusable and say so once, with the way to run without it."""
    from .boundary import short

    if name in _broken:
        return
    detail = short(f"{type(exc).__name__}: {exc}".strip().splitlines()[0], 300)
    fix = ("imrec's own installation is damaged: reinstall it (`pip install -e .`)" if builtin else
           f"fix or uninstall it, or leave it out with {_excluding(name)}")
    message = f"plugin {name!r}{f' ({module})' if module else ''} {what}: {detail}; it is skipped. To fix: {fix}"
    _broken[name] = {"error": message, "module": module.split(",", 1)[0] if module else None, "builtin": builtin}
    print(f"imrec: warning: {message}", file=sys.stderr)


def plugin_modules() -> dict[str, str]:
    """Top-level package of every loaded (or failed) plugin -> plugin name, to say whose code raised."""
    out = {}
    for name, info in (*_info.items(), *_broken.items()):
        module = str(info.get("module") or "")
        top = module.split(":", 1)[0].split(".", 1)[0]
        if top and top != "imrec":
            out[top] = name
    return out


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed_third_party()
    eps = md.entry_points(group=GROUP)
    if allowed:
        unknown = sorted(allowed - {ep.name for ep in eps})
        if unknown:
            third = sorted({ep.name for ep in eps if ep.dist is None or ep.dist.name != "imrec"})
            raise PluginError(
                f"{ENV_VAR} names {', '.join(map(repr, unknown))}, which {'is' if len(unknown) == 1 else 'are'} not "
                f"an installed imrec plugin; installed third-party plugins: {', '.join(third) or '(none)'}. "
                f"Set it to a comma-separated list of those names (empty: built-ins only), or unset it to load all"
            )
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
        except Exception as exc:  # a broken plugin must say who it is, and not take the other commands down
            _mark_broken(ep.name, "failed to import", exc, builtin, f"{ep.value}, distribution {dist}")
            continue
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
    _broken.clear()


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
                if plugin in _broken:
                    continue
                added: list[tuple[str, Any]] = []

                def register(name: str, factory: Any, _added: list = added) -> None:
                    _added.append((name, factory))

                try:
                    impl.function(**{a: v for a, v in {"register": register}.items() if a in impl.argnames})
                except Exception as exc:  # the plugin's hook raised: leave the whole plugin out, say so once
                    _mark_broken(plugin, f"raised in its hook {hook_name}", exc,
                                 bool(_info.get(plugin, {}).get("builtin")), _info.get(plugin, {}).get("module"))
                    reg.drop_plugin(plugin)
                    continue
                for name, factory in added:  # a name clash or a bad name is still an error (PluginError)
                    reg.add(kind, name, factory, plugin)
        _registry = reg
    return _registry


def plugin_info() -> list[dict[str, Any]]:
    """One dict per plugin: name, version, builtin, hooks implemented, components registered; plugins that
    failed (to import, or in a hook) also carry ``error``."""
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
                **({"error": _broken[name]["error"]} if name in _broken else {}),
            }
        )
    for name, b in sorted(_broken.items()):  # failed to import: listed, so `imrec plugins` shows what is wrong
        if not pm.has_plugin(name):
            rows.append({"name": name, "version": None, "builtin": b["builtin"], "module": b["module"], "hooks": [],
                         "components": {}, "error": b["error"]})
    return rows


def add_commands(subparsers: Any) -> None:
    """Let every plugin add its sub-commands; one whose hook raises is reported and left out."""
    for impl in get_plugin_manager().hook.register_commands.get_hookimpls():
        if impl.plugin_name in _broken:
            continue
        try:
            impl.function(**{a: v for a, v in {"subparsers": subparsers}.items() if a in impl.argnames})
        except Exception as exc:
            info = _info.get(impl.plugin_name, {})
            _mark_broken(impl.plugin_name, "raised in its hook register_commands", exc, bool(info.get("builtin")),
                         info.get("module"))


