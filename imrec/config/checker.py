"""What every validation step shares: the problems found so far, and checks of mappings, typed values and
components. The sections are checked by the ``check_*`` functions of :mod:`imrec.config.check_recipe`,
:mod:`~imrec.config.check_train` and :mod:`~imrec.config.check_steps`, in one pass over the raw dict that builds
the typed recipe and collects every problem (a recipe with several mistakes gets them all in one error)."""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

from ..boundary import short, short_repr
from ..errors import Problem, UnknownComponentError, suggest
from ..slots import COMPONENT_SLOTS
from ..registry import Entry, Registry
from .hints import coerce, matches, show, type_problem
from .recipe import CONTEXT_ARGS, ComponentConfig
from .resolved import plain
from .signatures import argument_problems, unknown_problem


class Checker:
    """The state of one validation: the file, the registry, the problems, and what is known of the model."""

    def __init__(self, file: str, registry: Registry):
        self.file = file
        self.registry = registry
        self.problems: list[Problem] = []
        self.slots: list[str] | None = None  # configured model slots; None when `model` itself is broken
        self.entries: dict[str, Entry] = {}  # slot → registry entry, for slots whose name resolved

    def add(self, key: str, message: str, expected: str | None = None, allowed: Sequence[str] | None = None) -> None:
        self.problems.append(Problem(self.file, key, message, expected, list(allowed) if allowed else None))

    def mapping(self, value: Any, key: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict | None:
        """``value`` if it is a mapping (unknown keys and missing required keys reported), else None."""
        if not isinstance(value, dict):
            self.add(key, f"found {show(value)}", expected="a mapping")
            return None
        for k in value:
            if k not in allowed:
                close = suggest(str(k), allowed)
                self.add(join(key, short(str(k), 80)), f"unknown key {short_repr(k)}"
                         + (f"; did you mean {close!r}?" if close else ""),
                         allowed=allowed)
        for k in required:
            if k not in value:
                self.add(join(key, k), "missing (required)")
        return value

    def get(self, m: dict, name: str, path: str, hint: Any, default: Any = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
        """``m[name]`` checked against the type ``hint`` (and ``check``), or ``default`` if absent or wrong."""
        if name not in m:
            return copy.deepcopy(default)
        value = m[name]
        if not matches(value, hint):
            self.problems.append(type_problem(self.file, join(path, name), value, hint))
            return copy.deepcopy(default)
        value = coerce(value, hint)
        message = check(value) if check else None
        if message:
            self.add(join(path, name), message)
        return value


def check_component(c: Checker, value: Any, key: str, kind: str, note: str = "") -> ComponentConfig | None:
    """A component mapping ``{name: ..., **kwargs}``: name resolved, arguments bound to the signature."""
    if not isinstance(value, dict):
        c.add(key, f"found {show(value)}", expected=f"a mapping with the name of a registered {kind} "
              "and its arguments")
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name:
        c.add(join(key, "name"), "missing (required)" if "name" not in value else f"found {show(name)}",
              expected=f"the name of a registered {kind}")
        return None
    try:
        entry = c.registry.resolve(kind, name)
    except UnknownComponentError as exc:
        c.problems.append(unknown_problem(c.file, join(key, "name"), exc, note))
        return None
    cfg = ComponentConfig(entry.name, plain({k: v for k, v in value.items() if k != "name"}), key)
    reserved = CONTEXT_ARGS.get(kind, ())
    c.problems += argument_problems(kind, entry, cfg, c.file, reserved=reserved, provided=reserved)
    if kind in COMPONENT_SLOTS:
        c.entries[kind] = entry
    return cfg


def check_part_paths(c: Checker, value: Any, key: str) -> list[str]:
    """A list of component paths (``slot`` or ``slot.attribute``) whose slot is configured."""
    if not matches(value, list[str]):
        c.problems.append(type_problem(c.file, key, value, list[str]))
        return []
    for i, path in enumerate(value):
        head = path.split(".", 1)[0]
        if c.slots is not None and head not in c.slots:
            close = suggest(head, c.slots)
            c.add(f"{key}.{i}", f"{path!r} does not start with a configured model slot"
                  + (f"; did you mean {close!r}?" if close else ""), allowed=c.slots)
    return list(value)


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def element_key(path: str, index: int, raw: Any) -> str:
    """A list element's key path: by its name when it has one (as overrides address it), else by index."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{path}.{name}" if isinstance(name, str) and name else f"{path}.{index}"
