"""The keyword arguments of a registered component's factory, with their types and defaults, read without
importing the factory's module where that can be avoided.

Plugins register most factories as ``"package.module:Name"`` strings so that ``imrec --help`` does not wait for
torch; ``imrec schema`` describes every component and must not import them all either. For a factory whose
module is not imported yet, the parameters are read from its source (the class's ``__init__`` or the function):
names, whether they have a default, literal defaults, and annotations evaluated over the names of ``typing``,
``collections.abc`` and the builtins, any other name standing for ``Any``. Classes that are annotations there
(``ModalitySpec``, ``torch.Tensor``) constrain nothing in a recipe either (see :func:`imrec.config.hints.matches`),
so both paths describe a factory alike (a test checks it on every built-in). A factory whose source says too
little (an inherited ``__init__``, a decorator) is imported.
"""

from __future__ import annotations

import ast
import collections.abc
import importlib.util
import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any

from ..registry import Entry, source_definition
from .signatures import keyword_params, type_hints

NO_DEFAULT: Any = inspect.Parameter.empty


@dataclass(frozen=True)
class Param:
    """One keyword argument: ``hint`` its annotation (``Any`` if none), ``default`` a literal value, or
    ``NO_DEFAULT`` when it has none or none that is data (then ``required`` says which)."""

    name: str
    required: bool
    hint: Any
    default: Any = NO_DEFAULT


def factory_params(entry: Entry) -> tuple[list[Param], bool]:
    """The factory's keyword arguments and whether it takes ``**kwargs``."""
    target = entry.target
    if isinstance(target, str) and target.partition(":")[0] not in sys.modules:
        found = from_source(target)
        if found is not None:
            return found
    return from_signature(entry.factory)


def from_signature(factory: Any) -> tuple[list[Param], bool]:
    """The keyword arguments of an imported factory, as validation binds them."""
    params, var_keyword = keyword_params(factory)
    hints = type_hints(factory)
    out = [Param(n, p.default is inspect.Parameter.empty, hints.get(n, Any), _literal(p.default))
           for n, p in params.items()]
    return out, var_keyword


def _literal(value: Any) -> Any:
    """``value`` if it is plain data (what a recipe could write), else ``NO_DEFAULT``."""
    try:
        return value if ast.literal_eval(repr(value)) == value else NO_DEFAULT
    except (ValueError, SyntaxError, TypeError, RecursionError):
        return NO_DEFAULT


def from_source(target: str) -> tuple[list[Param], bool] | None:
    """The keyword arguments of ``"module:Name"`` read from the module's source; None if it says too little."""
    found = source_definition(target)
    if found is None:
        return None
    tree, node = found
    attr = target.partition(":")[2]
    if node is None or node.decorator_list:
        return None
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name in ("__init__", "__new__")),
                    None)
        if init is None and not node.bases and not node.keywords:
            return from_signature(type(attr, (), {}))  # a plain class: what inspect says of any such class
        if init is None or init.name != "__init__" or init.decorator_list:
            return None
        return _params(init.args, _namespace(tree), skip_first=True)
    return _params(node.args, _namespace(tree), skip_first=False)


def _params(args: ast.arguments, names: dict[str, Any], skip_first: bool) -> tuple[list[Param], bool]:
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    settable = list(zip(positional, defaults))[len(args.posonlyargs):]  # positional-only: not by keyword
    if skip_first and not args.posonlyargs:
        settable = settable[1:]  # self
    settable += list(zip(args.kwonlyargs, args.kw_defaults))
    out = [Param(a.arg, d is None, _annotation(a.annotation, names), _source_literal(d)) for a, d in settable]
    return out, args.kwarg is not None


def _source_literal(node: ast.expr | None) -> Any:
    if node is None:
        return NO_DEFAULT
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        return NO_DEFAULT


class _Names(dict):
    """Names an annotation may use; any other name is ``Any``."""

    def __missing__(self, key: str) -> Any:
        return Any


_MODULES = {"typing": typing, "collections.abc": collections.abc}
_KNOWN = {**{name: getattr(typing, name) for name in typing.__all__},
          **{name: getattr(collections.abc, name) for name in collections.abc.__all__},
          **{t.__name__: t for t in (bool, int, float, str, bytes, list, tuple, dict, set, frozenset, object)}}


def _namespace(tree: ast.Module) -> _Names:
    """The names of ``typing`` and ``collections.abc`` as the module imports them (``import typing as t``,
    ``from collections.abc import Sequence as Seq``), over the plain names of both and the builtins."""
    names = _Names(_KNOWN)
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in _MODULES:
                    bound = _MODULES[alias.name] if alias.asname else importlib.import_module(alias.name.split(".")[0])
                    names[alias.asname or alias.name.split(".")[0]] = bound
        elif isinstance(node, ast.ImportFrom) and node.module in _MODULES and not node.level:
            module = _MODULES[node.module]
            names.update({a.asname or a.name: getattr(module, a.name) for a in node.names if hasattr(module, a.name)})
    return names


def _annotation(node: ast.expr | None, names: dict[str, Any]) -> Any:
    if node is None:
        return Any
    text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ast.unparse(node)
    try:
        return eval(text, {"__builtins__": {}}, names)  # noqa: S307 — as typing.get_type_hints does
    except Exception:  # an attribute of an unknown name (torch.Tensor), or worse: constrains nothing
        return Any
