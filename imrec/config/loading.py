"""Reading recipes: YAML files, ``extends:`` parents and ``changes:`` overlays, then validation.

``extends: parent.yaml`` (relative to the recipe's file) deep-merges the recipe over its parent, then the
recipe's ``changes:`` (a list of overrides, :mod:`imrec.config.overrides`) apply; command-line overrides apply
last, and the result is validated (:mod:`imrec.config.check_recipe`).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from .. import bounded_yaml
from ..errors import Problem, RecipeError, suggest
from ..plugins import get_registry
from .check_recipe import check_recipe
from .checker import Checker
from .dialect import Loader
from .hints import show
from .overrides import apply_overrides
from .recipe import Recipe


def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge (``extends``), override and validate the recipe at ``path``; raises ``RecipeError``."""
    path = Path(path)
    data = read_mapping(path)
    data = merge_extends(data, path.parent, str(path), (path.resolve(),))
    return _finish(data, str(path), path, overrides, default_name=path.stem)


def recipe_from_dict(data: dict[str, Any], source: str = "<dict>", overrides: Sequence[str] = ()) -> Recipe:
    """Validate a recipe given as a dict. ``extends`` is read relative to ``source``'s folder when ``source``
    is a file path, else relative to the working directory. ``data`` is not modified."""
    is_file = not source.startswith("<")
    if not isinstance(data, dict):
        raise RecipeError([_top_level_problem(source, data)])
    base = Path(source).parent if is_file else Path.cwd()
    chain = (Path(source).resolve(),) if is_file else ()
    merged = merge_extends(copy.deepcopy(data), base, source, chain)
    return _finish(merged, source, Path(source) if is_file else None, overrides,
                   default_name=Path(source).stem if is_file else "recipe")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: mappings merge recursively; lists, scalars and explicit nulls replace."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _finish(data: dict[str, Any], file: str, source: Path | None, overrides: Sequence[str],
            default_name: str) -> Recipe:
    data = apply_overrides(data, overrides, file)
    checker = Checker(file, get_registry())
    recipe = check_recipe(checker, data, default_name, source, list(overrides))
    if checker.problems or recipe is None:
        raise RecipeError(checker.problems)
    return recipe


# --------------------------------------------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------------------------------------------
def read_mapping(path: Path, referrer: str | None = None) -> dict[str, Any]:
    """The YAML mapping in the file at ``path`` (``referrer``: the recipe whose ``extends`` names it)."""
    if not path.is_file():
        raise _missing_file(path, referrer)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError([Problem(str(path), "", f"cannot read the file: {exc}")]) from None
    return parse_mapping(text, str(path))


def parse_mapping(text: str, file: str) -> dict[str, Any]:
    """``text`` read as a recipe mapping; YAML errors become a ``RecipeError`` with line and column."""
    try:
        data = bounded_yaml.load(text, Loader)  # depth and alias expansion bounded before anything is built
    except bounded_yaml.YAMLBoundsError as exc:
        raise RecipeError([Problem(file, "", f"refused to read the YAML: {exc}")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"
        what = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem:
            what += f" ({exc.context}" + (f" started at line {exc.context_mark.line + 1})" if exc.context_mark else ")")
        raise RecipeError([Problem(file, "", f"YAML error at {where}: {what}")]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([Problem(file, "", f"YAML error: {exc}")]) from None
    if not isinstance(data, dict):
        raise RecipeError([_top_level_problem(file, data)])
    return data


def _top_level_problem(file: str, data: Any) -> Problem:
    found = "the recipe is empty" if data is None else f"the top level is {show(data)}"
    return Problem(file, "", found, expected="a mapping of recipe sections (data, model, train, ...)")


def _missing_file(path: Path, referrer: str | None) -> RecipeError:
    message = "is a directory, not a recipe file" if path.is_dir() else "no such recipe file"
    if referrer:
        message += f" (named by 'extends' in {referrer})"
    close = _similar_recipe(path)
    if close:
        message += f"; did you mean {close}?"
    return RecipeError([Problem(str(path), "", message)])


def _similar_recipe(path: Path) -> str | None:
    """A file under ``recipes/`` (of the working directory or of the repository) named like ``path``."""
    roots = dict.fromkeys([Path.cwd() / "recipes", Path(__file__).resolve().parents[2] / "recipes"])
    by_stem: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for f in sorted(root.rglob("*.y*ml")):
                by_stem.setdefault(f.stem, f)
    close = suggest(path.stem, by_stem)
    if close is None:
        return None
    found = by_stem[close]
    return _display(found)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)


# --------------------------------------------------------------------------------------------------------------
# extends: and changes:.
# --------------------------------------------------------------------------------------------------------------
def merge_extends(data: dict[str, Any], base: Path, file: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    """``data`` merged over its ``extends`` parents (recursively), then its ``changes`` applied.

    The parent's ``name`` and ``description`` are not inherited (a variant for other data would otherwise show
    its parent's words). ``changes`` is a list of override strings (the command-line syntax)
    applied to the merged recipe: how a variant says exactly where it differs from its parent, including what
    a deep merge cannot say (``~train.phases.recover.steps.discriminator`` removes one step).
    """
    changes = data.pop("changes", None)
    if changes is not None and (not isinstance(changes, list) or not all(isinstance(c, str) for c in changes)):
        raise RecipeError([Problem(file, "changes", f"found {show(changes)}",
                                   expected="a list of overrides such as 'train.phases.recover.epochs=5'")])
    merged = _merge_parent(data, base, file, chain)
    return apply_overrides(merged, changes, file) if changes else merged


def _merge_parent(data: dict[str, Any], base: Path, file: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    if "extends" not in data:
        return data
    ref = data.pop("extends")
    if not isinstance(ref, str) or not ref.strip():
        raise RecipeError([Problem(file, "extends", f"found {show(ref)}",
                                   expected="the path of a parent recipe, relative to this file")])
    parent_path = base / ref
    resolved = parent_path.resolve()
    if resolved in chain:
        cycle = " -> ".join(_display(p) for p in (*chain, resolved))
        raise RecipeError([Problem(file, "extends", f"recipes extend each other in a cycle: {cycle}")])
    parent = read_mapping(parent_path, referrer=file)
    parent = merge_extends(parent, parent_path.parent, str(parent_path), (*chain, resolved))
    parent.pop("name", None)
    parent.pop("description", None)
    return deep_merge(parent, data)
