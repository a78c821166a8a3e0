"""Search spaces for ``imrec tune``: YAML over recipe keys, validated like a recipe (every problem at once).

Schema (``?`` = optional, with its default)::

    params:                                   # recipe key (override syntax) → distribution
      train.phases.recover.optimizers.main.lr: {type: log-float, low: 1.0e-4, high: 1.0e-2}
      train.phases.recover.steps.task.clip_grad_value: {type: float, low: 0.1, high: 1.0, step?: null}
      model.fuser.layers: {type: int, low: 1, high: 4, step?: 1}
      model.encoder.d_model: {type: categorical, choices: [16, 32, 64]}
    pruner?: {name: median, startup_trials?: 5, warmup_epochs?: 0}   # or {name: none}

A key is any key an override can set (``docs/recipes.md``), list elements by name included. Each sampled value
becomes the override ``KEY=<value>``; the recipe is validated with every bound and every choice before anything
runs, so a key the recipe does not have, or a value its component rejects, fails here with the space file named.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import ImrecError, Problem, RecipeError, suggest

TYPES = ("float", "log-float", "int", "categorical")
_PARAM_KEYS = {"float": ("type", "low", "high", "step"), "log-float": ("type", "low", "high"),
               "int": ("type", "low", "high", "step"), "categorical": ("type", "choices")}
_PRUNERS = ("median", "none")
_PRUNER_KEYS = ("name", "startup_trials", "warmup_epochs")


class SpaceError(ImrecError):
    """A search space file is invalid: holds every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in search space:\n"
                         + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class Param:
    """One searched recipe key and its distribution."""

    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial samples for this key."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1))
        if self.type == "log-float":
            return trial.suggest_float(self.key, float(self.low), float(self.high), log=True)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step)

    def extremes(self) -> list[Any]:
        """The values the recipe is checked with before a search: both bounds, or every choice."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update({"low": self.low, "high": self.high})
            if self.step is not None:
                out["step"] = self.step
        return out


@dataclass(frozen=True)
class Pruner:
    """Median pruning on the per-epoch VALID selection metric (``none``: every trial runs to its end)."""

    name: str = "median"
    startup_trials: int = 5
    warmup_epochs: int = 0


@dataclass(frozen=True)
class Space:
    source: Path | None
    params: tuple[Param, ...]
    pruner: Pruner

    def describe(self) -> dict[str, Any]:
        """A plain form, stored with the study: resuming it with another space is refused."""
        return {"params": {p.key: p.describe() for p in self.params},
                "pruner": {"name": self.pruner.name, "startup_trials": self.pruner.startup_trials,
                           "warmup_epochs": self.pruner.warmup_epochs}}


def override(key: str, value: Any) -> str:
    """The recipe override that sets ``key`` to ``value`` (JSON is YAML: numbers round-trip exactly)."""
    return f"{key}={json.dumps(value)}"


def load_space(path: str | Path) -> Space:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpaceError([Problem(str(path), "", f"cannot read the file: {exc.strerror or exc}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpaceError([Problem(str(path), "", f"YAML error: {exc}")]) from None
    return space_from_dict(data, str(path), path)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def space_from_dict(data: Any, file: str = "<space>", source: Path | None = None) -> Space:
    """Validate a search space given as a dict (every problem at once, as a :class:`SpaceError`)."""
    problems: list[Problem] = []

    def add(key: str, message: str, expected: str | None = None, allowed: Sequence[str] | None = None) -> None:
        problems.append(Problem(file, key, message, expected, list(allowed) if allowed else None))

    if not isinstance(data, dict):
        raise SpaceError([Problem(file, "", f"found {type(data).__name__}",
                                  expected="a mapping with 'params' (and optionally 'pruner')")])
    for k in data:
        if k not in ("params", "pruner"):
            close = suggest(str(k), ["params", "pruner"])
            add(str(k), f"unknown key {k!r}" + (f"; did you mean {close!r}?" if close else ""),
                allowed=["params", "pruner"])
    raw = data.get("params")
    if not (isinstance(raw, dict) and raw):
        add("params", "missing (required)" if raw is None else f"found {raw!r}",
            expected="a mapping: recipe key → {type: float|log-float|int|categorical, …}")
        raw = {}
    params = [p for p in (_param(key, spec, add) for key, spec in raw.items()) if p is not None]
    pruner = _pruner(data.get("pruner", {"name": "median"}), add)
    if problems:
        raise SpaceError(problems)
    return Space(source, tuple(params), pruner)


def _param(key: Any, spec: Any, add: Any) -> Param | None:
    """The distribution of one searched key; None when it is invalid (each problem given to ``add``)."""
    where = f"params.{key}"
    if not isinstance(key, str) or not key or key.startswith("~") or "=" in key:
        add(where, f"{key!r} is not a recipe key", expected="a dotted key as in an override, e.g. "
                                                             "train.phases.recover.optimizers.main.lr")
        return None
    if not isinstance(spec, dict):
        add(where, f"found {spec!r}", expected="a mapping {type: …, low: …, high: …} or {type: categorical, "
                                               "choices: […]}")
        return None
    kind = spec.get("type")
    if kind not in TYPES:
        close = suggest(str(kind), list(TYPES))
        add(f"{where}.type", ("missing (required)" if kind is None else f"unknown type {kind!r}")
            + (f"; did you mean {close!r}?" if close and kind is not None else ""), allowed=list(TYPES))
        return None
    for k in spec:
        if k not in _PARAM_KEYS[kind]:
            add(f"{where}.{k}", f"unknown key {k!r} for type {kind}", allowed=list(_PARAM_KEYS[kind]))
    if kind == "categorical":
        return _categorical(key, spec.get("choices"), add)
    return _numeric(key, kind, spec.get("low"), spec.get("high"), spec.get("step"), add)


def _categorical(key: str, choices: Any, add: Any) -> Param | None:
    where = f"params.{key}.choices"
    if not (isinstance(choices, list) and choices):
        add(where, "missing (required)" if choices is None else f"found {choices!r}",
            expected="a non-empty list of values")
        return None
    bad = [c for c in choices if not (c is None or isinstance(c, (bool, int, float, str)))]
    if bad:
        add(where, f"found {bad[0]!r}",
            expected="scalars (numbers, strings, booleans, null): Optuna stores only those; search a "
                     "list-valued key through a string key of the component instead")
        return None
    if len({json.dumps(c) for c in choices}) != len(choices):
        add(where, f"a choice is listed twice: {choices}")
    return Param(key, "categorical", choices=tuple(choices))


def _numeric(key: str, kind: str, low: Any, high: Any, step: Any, add: Any) -> Param | None:
    where = f"params.{key}"
    ok = True
    for name, v in (("low", low), ("high", high)):
        if not _number(v) or (kind == "int" and not isinstance(v, int)):
            add(f"{where}.{name}", "missing (required)" if v is None else f"found {v!r}",
                expected="an integer" if kind == "int" else "a finite number")
            ok = False
    if step is not None and (not _number(step) or step <= 0 or (kind == "int" and not isinstance(step, int))):
        add(f"{where}.step", f"found {step!r}", expected="a positive " + ("integer" if kind == "int" else
                                                                          "number") + " (or leave it out)")
        ok = False
    if ok and low > high:
        add(where, f"low {low} is above high {high}", expected="low ≤ high")
        ok = False
    if ok and kind == "log-float" and low <= 0:
        add(f"{where}.low", f"found {low!r}", expected="a positive number (a log scale starts above 0)")
        ok = False
    return Param(key, kind, low, high, step) if ok else None


def _pruner(raw: Any, add: Any) -> Pruner:
    if raw is None:
        raw = {"name": "none"}
    if not isinstance(raw, dict):
        add("pruner", f"found {raw!r}", expected="{name: median, startup_trials: 5, warmup_epochs: 0} or "
                                                 "{name: none}")
        return Pruner()
    for k in raw:
        if k not in _PRUNER_KEYS:
            add(f"pruner.{k}", f"unknown key {k!r}", allowed=list(_PRUNER_KEYS))
    name = raw.get("name", "median")
    if name not in _PRUNERS:
        add("pruner.name", f"unknown pruner {name!r}", allowed=list(_PRUNERS))
        name = "median"
    values = {}
    for k, default in (("startup_trials", 5), ("warmup_epochs", 0)):
        v = raw.get(k, default)
        if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            add(f"pruner.{k}", f"found {v!r}", expected="a non-negative integer")
            v = default
        values[k] = v
    return Pruner(name, **values)


def check_recipe(space: Space, recipe_path: Path, overrides: Sequence[str]) -> None:
    """Load the recipe with every parameter at each of its bounds / choices (the others at the recipe's
    values): a key the recipe does not have or a value it rejects is reported here, with the space file named,
    before any trial runs."""
    from ..config import load_recipe

    file = str(space.source or "<space>")
    problems: list[Problem] = []
    for p in space.params:
        for value in p.extremes():
            try:
                load_recipe(recipe_path, [*overrides, override(p.key, value)])
            except RecipeError as exc:
                for q in exc.problems:
                    problems.append(Problem(file, f"params.{p.key}", f"with {p.key}={json.dumps(value)} the recipe "
                                            f"{recipe_path} is invalid: {q.key}: {q.message}"
                                            + (f" (expected {q.expected})" if q.expected else "")))
                break
            except ImrecError as exc:
                problems.append(Problem(file, f"params.{p.key}", f"with {p.key}={json.dumps(value)}: {exc}"))
                break
    if problems:
        raise SpaceError(problems)
