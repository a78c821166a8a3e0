"""YAML values against type annotations: whether a value fits, how to shape it, and how to say what was wrong.

Shared by the recipe's own keys (typed in :data:`imrec.config.recipe.KEYS`) and by component arguments (typed
by their factories' annotations). ``Annotated[T, ...]`` is read as ``T``.
"""

from __future__ import annotations

import collections.abc as abc
import inspect
import types
import typing
from typing import Any, Literal, Union

from ..boundary import short_repr
from ..errors import Problem, suggest

_NONE = type(None)
_SEQUENCES = (list, tuple, abc.Sequence, abc.MutableSequence)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


def is_fixed_tuple(origin: Any, args: tuple[Any, ...]) -> bool:
    """``tuple[A, B]`` (one type per position), as opposed to ``tuple[A, ...]`` or a bare tuple."""
    return origin is tuple and bool(args) and not (len(args) == 2 and args[1] is Ellipsis)


def matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type annotation; annotations YAML cannot express (classes) always fit."""
    if hint is Any or hint is object or hint is inspect.Parameter.empty:
        return True
    if hint is None or hint is _NONE:
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return matches(value, args[0])
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # ints are accepted where floats are expected
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if is_fixed_tuple(origin, args):
            return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if hint is dict or origin in _MAPPINGS:
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
    return True


def coerce(value: Any, hint: Any) -> Any:
    """``value`` shaped as ``hint`` asks where YAML cannot say it: lists to tuples, ints to floats."""
    if hint is None:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return coerce(value, args[0])
    if origin in (Union, types.UnionType):
        fit = next((a for a in args if a is not _NONE and matches(value, a)), None)
        return value if fit is None else coerce(value, fit)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is tuple or origin is tuple) and isinstance(value, (list, tuple)):
        if is_fixed_tuple(origin, args):
            return tuple(coerce(v, a) for v, a in zip(value, args))
        return tuple(coerce(v, args[0] if args else None) for v in value)
    if origin is list and args and isinstance(value, list):
        return [coerce(v, args[0]) for v in value]
    return value


def literal_values(hint: Any) -> list[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return list(args)
    if origin in (Union, types.UnionType, typing.Annotated):
        return [v for a in (args if origin is not typing.Annotated else args[:1]) for v in literal_values(a)]
    return []


def describe(hint: Any) -> str:
    """A type annotation in words for error messages."""
    if hint is None or hint is _NONE:
        return "null"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return describe(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint in (list, tuple) or origin in _SEQUENCES:
        if is_fixed_tuple(origin, args):
            return f"a list of {len(args)} ({', '.join(describe(a) for a in args)})"
        return f"a list of {_describe_part(args[0])}" if args else "a list"
    if hint is dict or origin in _MAPPINGS:
        return f"a mapping of {_describe_part(args[0])} to {_describe_part(args[1])}" if len(args) == 2 else "a mapping"
    names = {bool: "bool (true/false)", int: "int", float: "float", str: "string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _describe_part(hint: Any) -> str:
    """:func:`describe` for an element type, parenthesised when it has alternatives."""
    text = describe(hint)
    return f"({text})" if " or " in text else text


def show(value: Any) -> str:
    """A found value for error messages: its YAML kind and a short repr."""
    if value is None:
        return "null"
    kinds = {bool: "bool", int: "int", float: "float", str: "string", list: "list", tuple: "list", dict: "mapping"}
    text = short_repr(value, 60)  # cut while rendering: a huge value is never rendered whole
    return f"{kinds.get(type(value), type(value).__name__)} {text}"


def type_problem(file: str, key: str, value: Any, hint: Any) -> Problem:
    allowed = [str(a) for a in literal_values(hint)]
    message = f"found {show(value)}"
    if allowed and isinstance(value, str):
        close = suggest(value, allowed)
        if close:
            message += f"; did you mean {close!r}?"
    expected = "one of the allowed values" + (" or null" if matches(None, hint) else "") if allowed else describe(hint)
    return Problem(file, key, message, expected=expected, allowed=allowed or None)
