"""The override language: ``a.b=value`` sets, ``~a.b`` deletes, ``SLOT=name`` swaps a component.

Used by the command line (``imrec run R key=value``) and by recipes' ``changes:`` lists alike.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Sequence

import yaml

from .. import bounded_yaml
from ..boundary import short_repr
from ..errors import Problem, RecipeError, suggest
from .dialect import Loader
from .hints import show
from .recipe import SWAP_WORDS


class OverrideError(Exception):
    """One override that cannot apply; :func:`apply_overrides` reports it as a problem naming the override."""


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], source: str = "<overrides>") -> dict[str, Any]:
    """Apply command-line overrides to a raw recipe dict and return the result (``data`` is not modified).

    * ``a.b=value`` sets a key; ``value`` is read as YAML (``x=3`` an int, ``x=[1,2]`` a list, ``x=null``
      None). Missing intermediate mappings are created.
    * ``~a.b`` deletes a key (or list element).
    * ``SLOT=other.name`` with a bare slot word (``data``, ``encoder``, ``recoverer``, ``fuser``, ``aligner``,
      ``head``) swaps the component: ``model.SLOT`` (or ``data``) becomes ``{name: other.name}`` and the old
      component's arguments are DROPPED, since they belong to the old factory. ``model.SLOT.name=x`` instead
      renames and keeps the arguments. ``SLOT=null`` (or ``~SLOT``) removes an optional component; a mapping
      value (``head={name: x, dropout: 0.1}``) replaces the component whole.

    Path segments that are integers index lists; a segment equal to the ``name`` of one element of a list of
    mappings addresses that element (``train.phases.recover.epochs=5``). Keys containing dots (loss names) are
    matched whole: ``train.phases.recover.steps.0.losses.recoverer.diffusion=0.5``. Every bad override is
    reported, together, as a ``RecipeError`` whose problems name the override.
    """
    out = copy.deepcopy(data)
    problems = []
    for text in overrides:
        try:
            apply_override(out, text)
        except OverrideError as exc:
            problems.append(Problem(source, f"override {short_repr(text, 120)}", str(exc)))
    if problems:
        raise RecipeError(problems)
    return out


def apply_override(data: dict[str, Any], text: str) -> None:
    """Apply one override to ``data`` in place; raises :class:`OverrideError`."""
    delete, path, value = _parse(text)
    segments = path.split(".")
    if any(not s for s in segments):
        raise OverrideError(f"the key {path!r} has an empty segment")
    if len(segments) == 1 and path in SWAP_WORDS:
        segments = ["data"] if path == "data" else ["model", path]
        if isinstance(value, str):
            value = {"name": value}
        elif not delete and value is not None and not isinstance(value, dict):
            raise OverrideError(f"found {show(value)}; expected the name of a registered {path} (or a mapping)")
    container, key = _locate(data, segments, create=not delete)
    if delete:
        del container[key]
    else:
        container[key] = value


def _parse(text: str) -> tuple[bool, str, Any]:
    """(delete?, key path, value read as YAML) of one override."""
    text = text.strip()
    delete = text.startswith("~")
    if delete:
        path, value = text[1:].strip(), None
    elif "=" in text:
        path, raw = (s.strip() for s in text.split("=", 1))
        try:
            value = bounded_yaml.load(raw, Loader)
        except (yaml.YAMLError, bounded_yaml.YAMLBoundsError) as exc:
            raise OverrideError(f"cannot read the value {short_repr(raw)} as YAML: "
                                f"{getattr(exc, 'problem', None) or exc}") from None
    else:
        raise OverrideError("expected KEY=VALUE (set), ~KEY (delete) or SLOT=name (swap a component)")
    if not path:
        raise OverrideError("the key is empty")
    return delete, path, value


def _locate(root: dict[str, Any], segments: list[str], create: bool) -> tuple[Any, Any]:
    """The container holding the addressed entry and the entry's key (or list index)."""
    node: Any = root
    trail: list[str] = []
    parent_key = ""
    i = 0
    while True:
        rest = segments[i:]
        where = ".".join(trail) or "the top level"
        if isinstance(node, dict):
            key, n = _dict_key(node, rest, create, parent_key, where)
        elif isinstance(node, list):
            key, n = _list_index(node, rest, where)
        else:
            raise OverrideError(f"{where} is {show(node)}, not a mapping or list; it has no {rest[0]!r}")
        i += n
        trail.append(".".join(rest[:n]))
        if i == len(segments):
            return node, key
        if isinstance(node, dict) and node.get(key) is None:
            if not create:
                raise OverrideError(f"{'.'.join(trail)} is not set; nothing to delete under it")
            node[key] = {}
        node, parent_key = node[key], str(key)


def _dict_key(node: dict[str, Any], rest: list[str], create: bool, parent_key: str, where: str) -> tuple[str, int]:
    # The longest run of segments that is an existing key wins, so dotted keys (loss names) address whole.
    for n in range(len(rest), 0, -1):
        if ".".join(rest[:n]) in node:
            return ".".join(rest[:n]), n
    if create:
        # A new key under `losses` is a loss name, which contains dots: take the rest whole.
        return (".".join(rest), len(rest)) if parent_key == "losses" else (rest[0], 1)
    close = suggest(rest[0], [str(k) for k in node])
    raise OverrideError(f"{where} has no key {rest[0]!r}" + (f"; did you mean {close!r}?" if close else "")
                        + f" (keys: {', '.join(map(str, node)) or 'none'})")


def _list_index(node: list[Any], rest: list[str], where: str) -> tuple[int, int]:
    if re.fullmatch(r"-?[0-9]+", rest[0]):
        index = int(rest[0])
        if not -len(node) <= index < len(node):
            raise OverrideError(f"{where} has {len(node)} elements; index {index} is out of range")
        return index % len(node), 1
    names = [e.get("name") for e in node if isinstance(e, dict)]
    for n in range(len(rest), 0, -1):
        wanted = ".".join(rest[:n])
        hits = [j for j, e in enumerate(node) if isinstance(e, dict) and e.get("name") == wanted]
        if len(hits) > 1:
            raise OverrideError(f"{where} has {len(hits)} elements named {wanted!r}; address one by index")
        if hits:
            return hits[0], n
    close = suggest(rest[0], [str(x) for x in names if x is not None])
    raise OverrideError(f"{where} has no element named {rest[0]!r}" + (f"; did you mean {close!r}?" if close else "")
                        + f" (names: {', '.join(str(x) for x in names if x is not None) or 'none'}; "
                        f"or use an index 0..{len(node) - 1})")
