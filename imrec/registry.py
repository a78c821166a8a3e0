"""Name → factory, per component kind, filled by the plugins' register hooks."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import PluginError, UnknownComponentError
from .slots import SLOTS

# kind → the hook that fills it. The kind is the word used in recipes, errors and ``imrec list KIND``: the model's
# slots (declared in imrec/slots.py), then the data-side kinds.
KINDS: dict[str, str] = {
    **{s.name: s.hook for s in SLOTS},
    "dataset": "register_datasets",
    "protocol": "register_protocols",
    "metric": "register_metrics",
    "logger": "register_loggers",
}


_LAZY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class Entry:
    """One registered component. ``target`` is the factory, or ``"package.module:Name"`` for one imported on
    first use (``factory``): `imrec plugins` and `imrec list` then run without importing the component's
    module (and torch)."""

    kind: str
    name: str
    target: Callable[..., Any] | str
    plugin: str

    @property
    def factory(self) -> Callable[..., Any]:
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"plugin {self.plugin!r} registered {self.kind} {self.name!r} as {self.target!r}, "
                              f"which cannot be imported: {exc}") from exc
        if not callable(factory):
            raise PluginError(f"plugin {self.plugin!r} registered {self.kind} {self.name!r} as {self.target!r}, "
                              f"which is not callable")
        return factory

    @property
    def summary(self) -> str:
        doc = (_source_docstring(self.target) if isinstance(self.target, str) and self.target.partition(":")[0]
               not in sys.modules else inspect.getdoc(self.factory)) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


def source_definition(target: str) -> tuple[ast.Module, ast.ClassDef | ast.FunctionDef | None] | None:
    """``module:Name`` read without running it: the module's parsed source and its top-level class or function
    ``Name`` (None when there is no such definition); None when the source cannot be found or parsed."""
    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
        tree = ast.parse(Path(origin).read_text(encoding="utf-8")) if origin and origin.endswith(".py") else None
    except (ImportError, ValueError, OSError, SyntaxError):
        return None
    if tree is None:
        return None
    node = next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == attr), None)
    return tree, node


def _source_docstring(target: str) -> str | None:
    """The docstring of ``module:Name`` read from the module's source without running it (None if unknown)."""
    found = source_definition(target)
    if found is None or found[1] is None:
        return None
    return inspect.cleandoc(ast.get_docstring(found[1]) or "")


class Registry:
    """All registered components. Built by :func:`imrec.plugins.get_registry`."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}

    def add(self, kind: str, name: str, factory: Callable[..., Any], plugin: str) -> None:
        if kind not in self._entries:
            raise PluginError(f"plugin {plugin!r} registered unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        if not isinstance(name, str) or "." not in name or name.startswith(".") or name.endswith("."):
            raise PluginError(
                f"plugin {plugin!r} registered {kind} {name!r}: names must be namespaced as 'namespace.name' "
                f"(e.g. 'rohydr.hddm')"
            )
        if isinstance(factory, str):
            if not _LAZY_RE.match(factory):
                raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} as {factory!r}: a factory given by "
                                  f"name must read 'package.module:Name'")
        elif not callable(factory):
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable factory")
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"duplicate {kind} name {name!r}: registered by plugin {existing.plugin!r} and by plugin "
                f"{plugin!r}; uninstall one of them or restrict loading with IMREC_LOAD_PLUGINS"
            )
        self._entries[kind][name] = Entry(kind, name, factory, plugin)

    def drop_plugin(self, plugin: str) -> None:
        """Forget every component of ``plugin`` (it failed part-way through registering)."""
        for entries in self._entries.values():
            for name in [n for n, e in entries.items() if e.plugin == plugin]:
                del entries[name]

    def resolve(self, kind: str, name: str) -> Entry:
        """The entry for ``name``; a bare name (no namespace) resolves when exactly one entry ends with it."""
        entries = self._entries[kind]
        if name in entries:
            return entries[name]
        if isinstance(name, str) and "." not in name:
            hits = [e for n, e in entries.items() if n.split(".", 1)[1] == name]
            if len(hits) == 1:
                return hits[0]
        raise UnknownComponentError(kind, str(name), entries)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self, kind: str) -> list[Entry]:
        return [self._entries[kind][n] for n in self.names(kind)]

    def __iter__(self) -> Iterator[Entry]:
        for kind in KINDS:
            yield from self.entries(kind)
