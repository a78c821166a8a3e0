"""YAML read with bounds: a recipe can neither hang imrec nor exhaust its memory.

PyYAML expands aliases by reference, so a few lines of anchors (the "billion laughs") stand for billions of values
as soon as anything walks them (a copy, a ``repr``, a merge); and the composer recurses once per nesting level, so
a list nested a few thousand deep ends in a RecursionError. Before building any Python object, :func:`load` scans
the parser's event stream (no recursion, no expansion) and refuses a document whose nesting depth, or whose size
*with every alias expanded*, exceeds the limits — both far above any real recipe.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64  # nesting levels of mappings and lists
MAX_NODES = 200_000  # scalars + collections once every alias is expanded
MAX_CHARS = 5_000_000  # characters of YAML text


class YAMLBoundsError(ValueError):
    """The document is over a limit; the message says which, where, and the limit."""


def check_bounds(text: str, loader: type = yaml.SafeLoader) -> None:
    """Raise :class:`YAMLBoundsError` if ``text`` is too long, too deep or expands to too many values.

    YAML syntax errors are raised as PyYAML's own ``MarkedYAMLError`` (the caller already reports those)."""
    if len(text) > MAX_CHARS:
        raise YAMLBoundsError(f"the text is {len(text):,} characters long; the limit is {MAX_CHARS:,}")
    sizes: dict[str, int] = {}  # anchor -> expanded node count of the node it names
    stack: list[list[Any]] = []  # open collections: [anchor, node count so far]
    total = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH:
                raise YAMLBoundsError(f"nesting deeper than {MAX_DEPTH} levels at line {event.start_mark.line + 1}")
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, count = stack.pop()
            if anchor is not None:
                sizes[anchor] = count
            if stack:
                stack[-1][1] += count
            else:
                total += count
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            if stack:
                stack[-1][1] += 1
            else:
                total += 1
        elif isinstance(event, yaml.AliasEvent):
            count = sizes.get(event.anchor, 1)  # an unknown anchor is PyYAML's error, raised when composing
            if stack:
                stack[-1][1] += count
            else:
                total += count
        else:
            continue
        grown = total + sum(c for _, c in stack)
        if grown > MAX_NODES:
            raise YAMLBoundsError(
                f"more than {MAX_NODES:,} values once its aliases (*name) are expanded (at line "
                f"{event.start_mark.line + 1}); aliases that repeat other aliases multiply — write the values out"
            )


def load(text: str, loader: type = yaml.SafeLoader) -> Any:
    """``yaml.load(text, Loader=loader)`` after :func:`check_bounds`; ``loader`` must be a SafeLoader."""
    check_bounds(text, loader)
    return yaml.load(text, Loader=loader)  # noqa: S506 — callers pass SafeLoader subclasses
