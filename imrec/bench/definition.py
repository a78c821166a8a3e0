"""Bench definitions: which recipes (methods) run on which seeds with which board-wide overrides.

A definition is YAML, validated like a recipe: every problem is collected (file, key, what was found, what was
expected) and raised together as a :class:`DefinitionError`. Paths are relative to the definition's folder.
The schema (``?`` = optional, with its default)::

    board: mosi_bclstm                     # the board's name: records, tables and the LEADERBOARD section
    description?: ""
    seeds: [1111, 1112, 1113, 1114, 1115]  # every method runs every seed
    overrides?: []                         # applied to EVERY method (e.g. the compute budget: epochs)
    methods:                               # display name → recipe (+ optional extra overrides of its own)
      - {name: RoHyDR, recipe: ../recipes/rohydr_mosi_bclstm.yaml, overrides?: []}
    reference: RoHyDR                      # paired significance tests are against this method
    baseline?: null                        # the no-recovery method of the gap-closed score (e.g. zero_fill)
    metrics: [acc2_non0, mae]              # metric columns, one table each, in this order
    output?:
      work_dir?: runs/bench/<board>        # per-cell run directories (resumable)
      records?: null                       # tidy records JSONL written after a run
      leaderboard?: null                   # Markdown file whose section for this board is (re)generated
      plots?: null                         # folder for the metric-vs-MR PNGs (needs matplotlib)
    arithmetic?:                           # pinned for every cell, recorded in every record (``settings``)
      threads: 1                           # torch threads per cell
      deterministic?: true                 # the recipe key ``deterministic`` for every cell
      float32_matmul_precision?: highest   # torch.set_float32_matmul_precision
    tune?:                                 # the same tuning budget for every method (docs/tuning.md)
      trials: 20                           # Optuna trials per method on VALID, space: <recipe stem>.space.yaml
      seeds?: [<first seed>]               # seeds each trial trains
      sampler_seed?: 0                     # TPE seed
      storage?: null                       # an RDB URL shared by several machines (default: SQLite per method)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from .. import bounded_yaml
from ..errors import ImrecError, Problem, RecipeError, suggest
from .settings import Arithmetic, TuneBudget, check_spaces, parse_arithmetic, parse_tune, unknown_keys

_TOP_KEYS = ("board", "description", "seeds", "overrides", "methods", "reference", "baseline", "metrics", "output",
             "arithmetic", "tune")
_METHOD_KEYS = ("name", "recipe", "overrides")
_OUTPUT_KEYS = ("work_dir", "records", "leaderboard", "plots")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# Keys the bench sets itself per cell; a definition that overrode them would break the matrix.
_RESERVED_OVERRIDES = ("seeds", "output_dir")


class DefinitionError(ImrecError):
    """A bench definition is invalid: holds every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in bench definition"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class Method:
    """One row of the board: a display name, its recipe file and its own extra overrides."""

    name: str
    recipe: Path
    overrides: tuple[str, ...] = ()



@dataclass(frozen=True)
class Definition:
    """A validated bench definition (paths resolved against the definition's folder)."""

    board: str
    description: str
    source: Path | None
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    methods: tuple[Method, ...]
    reference: str
    baseline: str | None
    metrics: tuple[str, ...]
    work_dir: Path
    records: Path | None
    leaderboard: Path | None
    plots: Path | None
    base: Path
    arithmetic: Arithmetic | None = None
    tune: TuneBudget | None = None

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise ImrecError(f"board {self.board!r} has no method {name!r}; methods: "
                         + ", ".join(m.name for m in self.methods))


def known_metrics() -> dict[str, bool]:
    """Every metric name a registered metric (or the core: ``loss``, the recovery metrics) can produce → whether
    higher is better, as declared (imrec/metric_info.py)."""
    from ..metric_info import directions

    return directions()


def load_definition(path: str | Path, check_recipes: bool = True) -> Definition:
    """Read and validate the definition at ``path``; with ``check_recipes`` every method's recipe is loaded with
    the board's and its own overrides (so a bad override fails here, before anything runs)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([Problem(str(path), "", f"cannot read the file: {exc.strerror or exc}")]) from None
    try:
        data = bounded_yaml.load(text)  # depth and alias expansion bounded, as for recipes
    except (yaml.YAMLError, bounded_yaml.YAMLBoundsError) as exc:
        raise DefinitionError([Problem(str(path), "", f"YAML error: {exc}")]) from None
    return definition_from_dict(data, str(path), path.parent, check_recipes=check_recipes)


def definition_from_dict(data: Any, file: str, base: Path, check_recipes: bool = True) -> Definition:
    """Validate a definition given as a dict; relative paths are read against ``base``."""
    problems: list[Problem] = []

    def add(key: str, message: str, expected: str | None = None, allowed: Sequence[str] | None = None) -> None:
        problems.append(Problem(file, key, message, expected, list(allowed) if allowed else None))

    if not isinstance(data, dict):
        raise DefinitionError([Problem(file, "", f"found {type(data).__name__}",
                                       expected="a mapping with board, seeds, methods, reference, metrics")])
    unknown_keys(data, "", _TOP_KEYS, add)
    for key in ("board", "seeds", "methods", "reference", "metrics"):
        if key not in data:
            add(key, "missing (required)")

    board = data.get("board")
    if "board" in data and not (isinstance(board, str) and _NAME_RE.match(board)):
        add("board", f"found {board!r}", expected="a name of letters, digits, '_', '.', '+', '-'")
    description = data.get("description") or ""
    if not isinstance(description, str):
        add("description", f"found {description!r}", expected="a string")
        description = ""
    seeds = _seeds(data, add)
    overrides = _overrides(data.get("overrides", []), "overrides", add)
    methods = _methods(data, base, add)
    names = [m.name for m in methods]
    reference, baseline = data.get("reference"), data.get("baseline")
    if "reference" in data:
        _one_of_methods(reference, "reference", names, add)
    if baseline is not None:
        _one_of_methods(baseline, "baseline", names, add)
    metrics = _metrics(data, add)
    paths = _output(data, base, add)
    arithmetic = parse_arithmetic(data.get("arithmetic"), add)
    tune = parse_tune(data.get("tune"), seeds, methods, add)

    if problems:
        raise DefinitionError(problems)
    if check_recipes:
        _check_recipes(file, methods, overrides, problems)
        if tune is not None and not problems:
            check_spaces(file, methods, overrides, problems)
        if problems:
            raise DefinitionError(problems)
    return Definition(
        board=board, description=description, source=Path(file), seeds=tuple(seeds), overrides=tuple(overrides),
        methods=tuple(methods), reference=reference, baseline=baseline, metrics=tuple(metrics),
        work_dir=paths["work_dir"] or base / "runs" / "bench" / board, records=paths["records"],
        leaderboard=paths["leaderboard"], plots=paths["plots"], base=base, arithmetic=arithmetic, tune=tune,
    )


def _seeds(data: dict, add: Any) -> list[int]:
    seeds = data.get("seeds")
    if "seeds" in data and not (isinstance(seeds, list) and seeds
                                and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        add("seeds", f"found {seeds!r}", expected="a non-empty list of integers, e.g. [1111, 1112, 1113]")
        seeds = []
    elif isinstance(seeds, list) and len(set(seeds)) != len(seeds):
        add("seeds", f"a seed is listed twice: {seeds}")
    return seeds or []


def _methods(data: dict, base: Path, add: Any) -> list[Method]:
    """The valid methods (each problem added); a method with a bad name or recipe is left out."""
    methods: list[Method] = []
    raw_methods = data.get("methods")
    if "methods" in data and not (isinstance(raw_methods, list) and raw_methods):
        add("methods", f"found {raw_methods!r}", expected="a non-empty list of {name, recipe, overrides?}")
        raw_methods = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_methods or []):
        key = f"methods.{i}"
        if not isinstance(raw, dict):
            add(key, f"found {raw!r}", expected="a mapping {name: ..., recipe: path/to/recipe.yaml}")
            continue
        unknown_keys(raw, key, _METHOD_KEYS, add)
        name, recipe = raw.get("name"), raw.get("recipe")
        if not (isinstance(name, str) and _NAME_RE.match(name)):
            add(f"{key}.name", "missing (required)" if name is None else f"found {name!r}",
                expected="a display name of letters, digits, '_', '.', '+', '-' (it names the cell's folder)")
            continue
        key = f"methods.{name}"
        if name in seen:
            add(key, f"method {name!r} is listed twice")
        seen.add(name)
        if not isinstance(recipe, str) or not recipe:
            add(f"{key}.recipe", "missing (required)" if recipe is None else f"found {recipe!r}",
                expected="the path of a recipe file, relative to the definition")
            continue
        rpath = base / recipe
        if not rpath.is_file():
            add(f"{key}.recipe", f"no such recipe file: {rpath}")
            continue
        methods.append(Method(name, rpath, _overrides(raw.get("overrides", []), f"{key}.overrides", add)))
    return methods


def _one_of_methods(value: Any, key: str, names: Sequence[str], add: Any) -> None:
    """``reference`` / ``baseline`` must name a method (unless no method is valid: that is reported already)."""
    if value not in names and names:
        close = suggest(str(value), names)
        add(key, f"{value!r} is not one of the methods" + (f"; did you mean {close!r}?" if close else ""),
            allowed=names)


def _metrics(data: dict, add: Any) -> list[str]:
    metrics = data.get("metrics")
    if "metrics" not in data:
        return []
    if not (isinstance(metrics, list) and metrics and all(isinstance(m, str) for m in metrics)):
        add("metrics", f"found {metrics!r}", expected="a non-empty list of metric names, e.g. [acc2_non0, mae]")
        metrics = []
    known = known_metrics()
    for i, m in enumerate(metrics):
        if m not in known:
            close = suggest(m, list(known))
            add(f"metrics.{i}", f"unknown metric {m!r}" + (f"; did you mean {close!r}?" if close else ""),
                allowed=sorted(known))
    if len(set(metrics)) != len(metrics):
        add("metrics", f"a metric is listed twice: {metrics}")
    return metrics


def _output(data: dict, base: Path, add: Any) -> dict[str, Path | None]:
    """``output``'s paths, resolved against ``base`` (None: not given)."""
    output = data.get("output", {}) or {}
    if not isinstance(output, dict):
        add("output", f"found {output!r}", expected="a mapping {work_dir?, records?, leaderboard?, plots?}")
        output = {}
    unknown_keys(output, "output", _OUTPUT_KEYS, add)
    paths: dict[str, Path | None] = {}
    for key in _OUTPUT_KEYS:
        value = output.get(key)
        if value is not None and not (isinstance(value, str) and value):
            add(f"output.{key}", f"found {value!r}", expected="a path relative to the definition")
            value = None
        paths[key] = base / value if value else None
    return paths


def _overrides(value: Any, key: str, add: Any) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        add(key, f"found {value!r}", expected="a list of recipe overrides, e.g. [train.phases.recover.epochs=10]")
        return ()
    for i, text in enumerate(value):
        target = text.lstrip("~").split("=", 1)[0].strip()
        if target in _RESERVED_OVERRIDES:
            add(f"{key}.{i}", f"{text!r}: the bench sets {target!r} itself for every cell",
                expected="seeds in the definition's 'seeds', run directories under output.work_dir")
    return tuple(value)


def _check_recipes(file: str, methods: Sequence[Method], overrides: Sequence[str], problems: list[Problem]) -> None:
    from ..config import load_recipe

    for m in methods:
        try:
            load_recipe(m.recipe, [*overrides, *m.overrides])
        except RecipeError as exc:
            for p in exc.problems:
                problems.append(Problem(file, f"methods.{m.name}", f"its recipe is invalid with the board's "
                                        f"overrides: {p}"))
        except ImrecError as exc:
            problems.append(Problem(file, f"methods.{m.name}", f"its recipe cannot be loaded: {exc}"))
