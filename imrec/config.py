"""Recipes: read YAML, merge ``extends`` parents, apply command-line overrides, validate, resolve.

A recipe is plain YAML (read with PyYAML's safe loader) turned into the typed dataclasses below. Validation
collects every problem before raising one :class:`~imrec.errors.RecipeError`; each problem names the file, the
dotted key path (usable as an override path: list elements are addressed by ``name`` or index), what was found,
what was expected and the allowed values. Component arguments are checked by binding them to the registered
factory's signature *without* building anything.

Two small extensions of YAML 1.1 as PyYAML reads it: a duplicate key is an error (PyYAML silently keeps the
last), and ``1e-3`` is a float (YAML 1.1 only reads ``1.0e-3`` as one; ``lr: 1e-3`` would be a string).

The schema (``?`` = optional, with its default)::

    name?: <file stem>            description?: ""
    data: {name: <dataset>, ...its arguments}
    model: {encoder, fuser, head, recoverer?: null, aligner?: null}      # each {name: ..., ...arguments}
    train:
      batch_size?: 32             eval_batch_size?: 256       early_stop?: null
      protocol?: {name: <protocol>, ...}   (the default of every phase that names none)
      select?: {metric: loss, mode: min}   (mode defaults to the metric's direction)
      phases:                     # at least one
        - {name?: phase<i>, epochs, min_steps?: null, protocol?, early_stop?, select?, freeze?: [], init_from?: null,
           reuse_forward?: true, bypass?: [],
           optimizers: {<name>: {name: adam|adamw|sgd, lr, weight_decay?: 0, betas?: null, momentum?: 0,
                                 params?: <every configured slot, if it is the phase's only optimizer>}},
           steps: [{name?: step<i>, losses: {task_gt|task_rec|<slot>.<aux>: weight},
                    optimizer?: <the only one>, update?: null, clip_grad_value?: null,
                    clip_grad_norm?: null, when?: always|missing}]}
    eval?: {conditions?: [{name: random, rates: [0.0]}], metrics?: null, recovery_metrics?: true}
    seeds?: [1111]                device?: auto|cpu|cuda|cuda:N     deterministic?: true     output_dir?: runs

``extends: parent.yaml`` (relative to the recipe's file) deep-merges the recipe over its parent, then the
recipe's ``changes:`` (a list of overrides) apply; command-line
overrides are described in :func:`apply_overrides`.
"""

from __future__ import annotations

import collections.abc as abc
import copy
import inspect
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import yaml

from . import bounded_yaml
from .boundary import short, short_repr
from .errors import Problem, RecipeError, UnknownComponentError, suggest
from .interfaces import COMPONENT_SLOTS
from .plugins import get_registry
from .registry import Entry, Registry

__all__ = [
    "ComponentConfig",
    "OptimizerConfig",
    "StepConfig",
    "SelectConfig",
    "PhaseConfig",
    "TrainConfig",
    "EvalConfig",
    "Recipe",
    "load_recipe",
    "recipe_from_dict",
    "apply_overrides",
    "deep_merge",
    "to_yaml",
    "bind_component",
    "build_component",
    "CONTEXT_ARGS",
]

REQUIRED_SLOTS = ("encoder", "fuser", "head")
# Arguments the core injects into factories that name them (see imrec/interfaces.py); recipes may not set them.
CONTEXT_ARGS: dict[str, tuple[str, ...]] = {
    "encoder": ("modalities",),
    "recoverer": ("modalities", "d_model"),
    "fuser": ("modalities", "d_model"),
    "aligner": ("dim",),
    "head": ("in_dim", "task"),
}
TASK_LOSSES = ("task_gt", "task_rec")
SWAP_WORDS = ("data", *COMPONENT_SLOTS)  # `SLOT=other.name` on the command line swaps a component
DEFAULT_EVAL_CONDITION = {"name": "random", "rates": [0.0]}

OptimizerName = Literal["adam", "adamw", "sgd"]
When = Literal["always", "missing"]
Mode = Literal["min", "max"]

_TOP_KEYS = ("name", "description", "data", "model", "train", "eval", "seeds", "device", "deterministic",
             "output_dir", "log", "threads")
_TRAIN_KEYS = ("batch_size", "eval_batch_size", "protocol", "select", "early_stop", "phases")
_PHASE_KEYS = ("name", "epochs", "min_steps", "protocol", "early_stop", "select", "freeze", "init_from", "reuse_forward",
               "bypass", "optimizers", "steps")
# Optional components a phase may run without (e.g. pre-training a plain fuser + head before the aligner exists).
_BYPASSABLE = ("recoverer", "aligner")
_OPTIMIZER_KEYS = ("name", "lr", "weight_decay", "betas", "momentum", "params", "scheduler")
_STEP_KEYS = ("name", "losses", "optimizer", "update", "clip_grad_value", "clip_grad_norm", "when")
_SELECT_KEYS = ("metric", "mode")
_EVAL_KEYS = ("conditions", "metrics", "recovery_metrics", "per_rate")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")
_NONE = type(None)


# --------------------------------------------------------------------------------------------------------------
# The typed recipe.
# --------------------------------------------------------------------------------------------------------------
@dataclass
class ComponentConfig:
    """A component: its registered ``name`` (canonical, namespaced), the recipe's keyword arguments, and
    ``key``, where it sits in the resolved recipe (``"model.recoverer"``, ``"train.phases.recover.protocol"``)."""

    name: str
    kwargs: dict[str, Any]
    key: str


@dataclass
class OptimizerConfig:
    """One optimiser of a phase; ``params`` are component paths (``slot`` or ``slot.attribute``)."""

    name: str
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] | None = None
    momentum: float = 0.0
    params: list[str] = field(default_factory=list)
    # A learning-rate scheduler: ``{name: <torch.optim.lr_scheduler class>, <its keyword arguments>}``, stepped once
    # per epoch (ReduceLROnPlateau on the phase's VALID selection metric). None = constant learning rate.
    scheduler: dict[str, Any] | None = None


@dataclass
class StepConfig:
    """One optimisation step per batch: weighted ``losses``, the ``optimizer`` it steps, the parameters it
    ``update``s (``None`` = all of the optimiser's), gradient clipping, and ``when`` it runs."""

    name: str
    losses: dict[str, float]
    optimizer: str
    update: list[str] | None = None
    clip_grad_value: float | None = None
    clip_grad_norm: float | None = None
    when: str = "always"


@dataclass
class SelectConfig:
    """Model selection on the valid split: ``metric`` and ``mode`` (``None`` = the metric's own direction)."""

    metric: str = "loss"
    mode: str | None = "min"


@dataclass
class PhaseConfig:
    """A training phase: ``epochs`` under one missing-modality ``protocol``, running ``steps`` on each batch."""

    name: str
    epochs: int
    protocol: ComponentConfig
    early_stop: int | None
    freeze: list[str]
    init_from: str | None
    optimizers: dict[str, OptimizerConfig]
    steps: list[StepConfig]
    reuse_forward: bool = True
    select: SelectConfig = field(default_factory=SelectConfig)
    bypass: list[str] = field(default_factory=list)
    # A budget in optimiser steps: the phase runs at least this many batches (its epoch count raised to reach
    # them, early stopping held off until then), so one recipe fits 40 samples and 40,000 alike.
    min_steps: int | None = None


@dataclass
class TrainConfig:
    """Training: batch sizes, train-level defaults (``protocol``, ``select``, ``early_stop``) and the phases.
    ``protocol`` is ``None`` when every phase names its own."""

    batch_size: int
    eval_batch_size: int
    protocol: ComponentConfig | None
    select: SelectConfig
    early_stop: int | None
    phases: list[PhaseConfig]


@dataclass
class EvalConfig:
    """Test-time evaluation: protocol ``conditions``, ``metrics`` (``None`` = chosen by the task kind at run
    time) and whether to score recovered features (``recovery_metrics``)."""

    conditions: list[ComponentConfig]
    metrics: list[str] | None = None
    recovery_metrics: bool = True
    # One model per missing rate (the reference's protocol): each rate's model is trained with its missing
    # phases at that rate and tested at that rate only. False: one model, trained at the recipe's rate, tested
    # at every condition.
    per_rate: bool = False


@dataclass
class Recipe:
    """A validated recipe. ``model`` has every slot (``None`` = not configured); ``resolved`` is the same recipe
    as a plain dict with every default filled in (what :func:`to_yaml` writes). Two recipes are equal when they
    describe the same experiment: ``source`` and ``overrides`` (where it came from) do not take part."""

    name: str
    description: str
    source: Path | None = field(compare=False)
    data: ComponentConfig
    model: dict[str, ComponentConfig | None]
    train: TrainConfig
    eval: EvalConfig
    seeds: list[int]
    device: str
    deterministic: bool
    output_dir: str
    resolved: dict[str, Any] = field(default_factory=dict, repr=False)
    overrides: list[str] = field(default_factory=list, compare=False)
    # Experiment trackers fed alongside the run directory (``log: [tensorboard]``); off by default.
    log: list[ComponentConfig] = field(default_factory=list)
    # CPU threads for `imrec run`/`eval` (imrec.threads; --threads and $IMREC_THREADS win); None = the default.
    # How fast, not what is computed: not part of the experiment's identity.
    threads: int | None = field(default=None, compare=False)


# --------------------------------------------------------------------------------------------------------------
# Public functions.
# --------------------------------------------------------------------------------------------------------------
def load_recipe(path: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge (``extends``), override and validate the recipe at ``path``; raises ``RecipeError``."""
    path = Path(path)
    data = _read_mapping(path)
    data = _merge_extends(data, path.parent, str(path), (path.resolve(),))
    return _finish(data, str(path), path, overrides, default_name=path.stem)


def recipe_from_dict(data: dict[str, Any], source: str = "<dict>", overrides: Sequence[str] = ()) -> Recipe:
    """Validate a recipe given as a dict. ``extends`` is read relative to ``source``'s folder when ``source``
    is a file path, else relative to the working directory. ``data`` is not modified."""
    is_file = not source.startswith("<")
    if not isinstance(data, dict):
        raise RecipeError([_top_level_problem(source, data)])
    base = Path(source).parent if is_file else Path.cwd()
    chain = (Path(source).resolve(),) if is_file else ()
    merged = _merge_extends(copy.deepcopy(data), base, source, chain)
    return _finish(merged, source, Path(source) if is_file else None, overrides,
                   default_name=Path(source).stem if is_file else "recipe")


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
            _apply_override(out, text)
        except _OverrideError as exc:
            problems.append(Problem(source, f"override {short_repr(text, 120)}", str(exc)))
    if problems:
        raise RecipeError(problems)
    return out


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base``: mappings merge recursively; lists, scalars and explicit nulls replace."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every default written out); loading it back gives an equal ``Recipe``."""
    head = f"# imrec recipe {recipe.name!r}, resolved"
    if recipe.source is not None:
        head += f" from {recipe.source}"
    lines = [head]
    if recipe.overrides:
        lines.append("# overrides: " + " ".join(o.replace("\n", " ") for o in recipe.overrides))
    body = yaml.dump(recipe.resolved, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return "\n".join(lines) + "\n" + body


def bind_component(kind: str, cfg: ComponentConfig,
                   context: Mapping[str, Any] | None = None) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The registered factory of ``cfg`` and the keyword arguments to call it with: the recipe's arguments
    (lists turned into tuples and ints into floats where the signature asks for those) plus the ``context``
    entries the factory's signature names. Raises ``RecipeError`` if the arguments do not bind."""
    context = dict(context or {})
    entry = get_registry().resolve(kind, cfg.name)
    reserved = tuple(dict.fromkeys([*CONTEXT_ARGS.get(kind, ()), *context]))
    problems = _argument_problems(kind, entry, cfg, "<recipe>", reserved=reserved, provided=tuple(context))
    if problems:
        raise RecipeError(problems)
    params, _ = _keyword_params(entry.factory)
    hints = _type_hints(entry.factory)
    kwargs = {k: _coerce(copy.deepcopy(v), hints.get(k)) for k, v in cfg.kwargs.items()}
    kwargs.update({k: v for k, v in context.items() if k in params})
    return entry.factory, kwargs


def build_component(kind: str, cfg: ComponentConfig, **context: Any) -> Any:
    """Build ``cfg``'s component: its factory called with the recipe's arguments plus those of ``context``
    (``modalities``, ``d_model``, ``dim``, ``in_dim``, ``task``) that its signature names."""
    factory, kwargs = bind_component(kind, cfg, context)
    return factory(**kwargs)


# --------------------------------------------------------------------------------------------------------------
# Reading YAML files.
# --------------------------------------------------------------------------------------------------------------
# ``1e-3`` (no dot) as a float; YAML 1.1's own float pattern needs a dot.
_EXP_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; a duplicate key in a mapping is an error instead of silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """Writes lists of scalars inline (``rates: [0.0, 0.1]``) and quotes strings the loader would read as floats."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(x, (dict, list, tuple)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789"))
_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(tuple, _represent_list)


def _read_mapping(path: Path, referrer: str | None = None) -> dict[str, Any]:
    if not path.is_file():
        raise _missing_file(path, referrer)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError([Problem(str(path), "", f"cannot read the file: {exc}")]) from None
    return _parse_mapping(text, str(path))


def _parse_mapping(text: str, file: str) -> dict[str, Any]:
    try:
        data = bounded_yaml.load(text, _Loader)  # depth and alias expansion bounded before anything is built
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
    found = "the recipe is empty" if data is None else f"the top level is {_show(data)}"
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
    roots = dict.fromkeys([Path.cwd() / "recipes", Path(__file__).resolve().parents[1] / "recipes"])
    by_stem: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for f in sorted(root.rglob("*.y*ml")):
                by_stem.setdefault(f.stem, f)
    close = suggest(path.stem, by_stem)
    if close is None:
        return None
    found = by_stem[close]
    try:
        return os.path.relpath(found)
    except ValueError:  # another drive (Windows)
        return str(found)


def _merge_extends(data: dict[str, Any], base: Path, file: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    """``data`` merged over its ``extends`` parents (recursively), then its ``changes`` applied.

    The parent's ``name`` and ``description`` are not inherited (a variant for other data would otherwise show
    its parent's words). ``changes`` is a list of override strings (the command-line syntax)
    applied to the merged recipe: how a variant says exactly where it differs from its parent, including what
    a deep merge cannot say (``~train.phases.recover.steps.discriminator`` removes one step).
    """
    changes = data.pop("changes", None)
    if changes is not None and (not isinstance(changes, list) or not all(isinstance(c, str) for c in changes)):
        raise RecipeError([Problem(file, "changes", f"found {_show(changes)}",
                                   expected="a list of overrides such as 'train.phases.recover.epochs=5'")])
    merged = _merge_parent(data, base, file, chain)
    return apply_overrides(merged, changes, file) if changes else merged


def _merge_parent(data: dict[str, Any], base: Path, file: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    if "extends" not in data:
        return data
    ref = data.pop("extends")
    if not isinstance(ref, str) or not ref.strip():
        raise RecipeError([Problem(file, "extends", f"found {_show(ref)}",
                                   expected="the path of a parent recipe, relative to this file")])
    parent_path = base / ref
    resolved = parent_path.resolve()
    if resolved in chain:
        cycle = " -> ".join(_display(p) for p in (*chain, resolved))
        raise RecipeError([Problem(file, "extends", f"recipes extend each other in a cycle: {cycle}")])
    parent = _read_mapping(parent_path, referrer=file)
    parent = _merge_extends(parent, parent_path.parent, str(parent_path), (*chain, resolved))
    parent.pop("name", None)
    parent.pop("description", None)
    return deep_merge(parent, data)


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _finish(data: dict[str, Any], file: str, source: Path | None, overrides: Sequence[str],
            default_name: str) -> Recipe:
    data = apply_overrides(data, overrides, file)
    checker = _Checker(file, get_registry())
    recipe = checker.recipe(data, default_name, source, list(overrides))
    if checker.problems or recipe is None:
        raise RecipeError(checker.problems)
    return recipe


# --------------------------------------------------------------------------------------------------------------
# Overrides.
# --------------------------------------------------------------------------------------------------------------
class _OverrideError(Exception):
    pass


def _apply_override(data: dict[str, Any], text: str) -> None:
    text = text.strip()
    delete = text.startswith("~")
    if delete:
        path, value = text[1:].strip(), None
    elif "=" in text:
        path, raw = (s.strip() for s in text.split("=", 1))
        try:
            value = bounded_yaml.load(raw, _Loader)
        except (yaml.YAMLError, bounded_yaml.YAMLBoundsError) as exc:
            raise _OverrideError(f"cannot read the value {short_repr(raw)} as YAML: "
                                 f"{getattr(exc, 'problem', None) or exc}") from None
    else:
        raise _OverrideError("expected KEY=VALUE (set), ~KEY (delete) or SLOT=name (swap a component)")
    if not path:
        raise _OverrideError("the key is empty")
    segments = path.split(".")
    if any(not s for s in segments):
        raise _OverrideError(f"the key {path!r} has an empty segment")
    if len(segments) == 1 and path in SWAP_WORDS:
        segments = ["data"] if path == "data" else ["model", path]
        if isinstance(value, str):
            value = {"name": value}
        elif not delete and value is not None and not isinstance(value, dict):
            raise _OverrideError(f"found {_show(value)}; expected the name of a registered {path} (or a mapping)")
    container, key = _locate(data, segments, create=not delete)
    if delete:
        del container[key]
    else:
        container[key] = value


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
            raise _OverrideError(f"{where} is {_show(node)}, not a mapping or list; it has no {rest[0]!r}")
        i += n
        trail.append(".".join(rest[:n]))
        if i == len(segments):
            return node, key
        if isinstance(node, dict) and node.get(key) is None:
            if not create:
                raise _OverrideError(f"{'.'.join(trail)} is not set; nothing to delete under it")
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
    raise _OverrideError(f"{where} has no key {rest[0]!r}" + (f"; did you mean {close!r}?" if close else "")
                         + f" (keys: {', '.join(map(str, node)) or 'none'})")


def _list_index(node: list[Any], rest: list[str], where: str) -> tuple[int, int]:
    if re.fullmatch(r"-?[0-9]+", rest[0]):
        index = int(rest[0])
        if not -len(node) <= index < len(node):
            raise _OverrideError(f"{where} has {len(node)} elements; index {index} is out of range")
        return index % len(node), 1
    names = [e.get("name") for e in node if isinstance(e, dict)]
    for n in range(len(rest), 0, -1):
        wanted = ".".join(rest[:n])
        hits = [j for j, e in enumerate(node) if isinstance(e, dict) and e.get("name") == wanted]
        if len(hits) > 1:
            raise _OverrideError(f"{where} has {len(hits)} elements named {wanted!r}; address one by index")
        if hits:
            return hits[0], n
    close = suggest(rest[0], [str(x) for x in names if x is not None])
    raise _OverrideError(f"{where} has no element named {rest[0]!r}" + (f"; did you mean {close!r}?" if close else "")
                         + f" (names: {', '.join(str(x) for x in names if x is not None) or 'none'}; "
                         f"or use an index 0..{len(node) - 1})")


# --------------------------------------------------------------------------------------------------------------
# Validation: one pass over the raw dict that builds the typed recipe and collects every problem.
# --------------------------------------------------------------------------------------------------------------
class _Checker:
    def __init__(self, file: str, registry: Registry):
        self.file = file
        self.registry = registry
        self.problems: list[Problem] = []
        self.slots: list[str] | None = None  # configured model slots; None when `model` itself is broken
        self.entries: dict[str, Entry] = {}  # slot → registry entry, for slots whose name resolved

    def add(self, key: str, message: str, expected: str | None = None, allowed: Sequence[str] | None = None) -> None:
        self.problems.append(Problem(self.file, key, message, expected, list(allowed) if allowed else None))

    # ---------------------------------------------------------------------------------------- generic pieces
    def mapping(self, value: Any, key: str, allowed: Sequence[str], required: Sequence[str] = ()) -> dict | None:
        """``value`` if it is a mapping (unknown keys and missing required keys reported), else None."""
        if not isinstance(value, dict):
            self.add(key, f"found {_show(value)}", expected="a mapping")
            return None
        for k in value:
            if k not in allowed:
                close = suggest(str(k), allowed)
                self.add(_join(key, short(str(k), 80)), f"unknown key {short_repr(k)}"
                         + (f"; did you mean {close!r}?" if close else ""),
                         allowed=allowed)
        for k in required:
            if k not in value:
                self.add(_join(key, k), "missing (required)")
        return value

    def get(self, m: dict, name: str, path: str, hint: Any, default: Any = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
        """``m[name]`` checked against the type ``hint`` (and ``check``), or ``default`` if absent or wrong."""
        if name not in m:
            return copy.deepcopy(default)
        value = m[name]
        if not _matches(value, hint):
            self.problems.append(_type_problem(self.file, _join(path, name), value, hint))
            return copy.deepcopy(default)
        value = _coerce(value, hint)
        message = check(value) if check else None
        if message:
            self.add(_join(path, name), message)
        return value

    def component(self, value: Any, key: str, kind: str, note: str = "") -> ComponentConfig | None:
        """A component mapping ``{name: ..., **kwargs}``: name resolved, arguments bound to the signature."""
        if not isinstance(value, dict):
            self.add(key, f"found {_show(value)}", expected=f"a mapping with the name of a registered {kind} "
                     "and its arguments")
            return None
        name = value.get("name")
        if not isinstance(name, str) or not name:
            self.add(_join(key, "name"), "missing (required)" if "name" not in value else f"found {_show(name)}",
                     expected=f"the name of a registered {kind}")
            return None
        try:
            entry = self.registry.resolve(kind, name)
        except UnknownComponentError as exc:
            self.problems.append(_unknown_problem(self.file, _join(key, "name"), exc, note))
            return None
        cfg = ComponentConfig(entry.name, _plain({k: v for k, v in value.items() if k != "name"}), key)
        reserved = CONTEXT_ARGS.get(kind, ())
        self.problems += _argument_problems(kind, entry, cfg, self.file, reserved=reserved, provided=reserved)
        if kind in COMPONENT_SLOTS:
            self.entries[kind] = entry
        return cfg

    def part_paths(self, value: Any, key: str) -> list[str]:
        """A list of component paths (``slot`` or ``slot.attribute``) whose slot is configured."""
        if not _matches(value, list[str]):
            self.problems.append(_type_problem(self.file, key, value, list[str]))
            return []
        for i, path in enumerate(value):
            head = path.split(".", 1)[0]
            if self.slots is not None and head not in self.slots:
                close = suggest(head, self.slots)
                self.add(f"{key}.{i}", f"{path!r} does not start with a configured model slot"
                         + (f"; did you mean {close!r}?" if close else ""), allowed=self.slots)
        return list(value)

    # ---------------------------------------------------------------------------------------- sections
    def recipe(self, data: dict, default_name: str, source: Path | None, overrides: list[str]) -> Recipe | None:
        top = self.mapping(data, "", _TOP_KEYS, required=("data", "model", "train"))
        if top is None:
            return None
        name = self.get(top, "name", "", str, default_name, check=_check_name)
        description = self.get(top, "description", "", str | None, "") or ""
        data_cfg = self.component(top["data"], "data", "dataset") if "data" in top else None
        model = self.model(top["model"]) if "model" in top else {s: None for s in COMPONENT_SLOTS}
        train = self.train(top["train"]) if "train" in top else None
        evaluation = self.evaluation(top.get("eval"))
        seeds = self.get(top, "seeds", "", list[int], [1111], check=_check_seeds)
        device = self.get(top, "device", "", str, "auto", check=_check_device)
        deterministic = self.get(top, "deterministic", "", bool, True)
        output_dir = self.get(top, "output_dir", "", str, "runs", check=_non_empty)
        log = self.loggers(top.get("log"))
        threads = self.get(top, "threads", "", int | None, None, check=_check_threads)
        if self.problems or data_cfg is None or train is None:
            return None
        recipe = Recipe(name, description, source, data_cfg, model, train, evaluation, seeds, device, deterministic,
                        output_dir, overrides=overrides, log=log, threads=threads)
        recipe.resolved = _plain_recipe(recipe)
        return recipe

    def loggers(self, value: Any) -> list[ComponentConfig]:
        """``log``: experiment trackers, each a registered logger's name or ``{name: ..., **options}``."""
        if value is None:
            return []
        expected = "a list of logger names or {name: ..., options} mappings, e.g. [tensorboard] (imrec list logger)"
        if not isinstance(value, list):
            self.add("log", f"found {_show(value)}", expected=expected)
            return []
        out: list[ComponentConfig] = []
        for i, raw in enumerate(value):
            cfg = self.component({"name": raw} if isinstance(raw, str) else raw, f"log.{i}", "logger")
            if cfg is None:
                continue
            if any(c.name == cfg.name for c in out):
                self.add(f"log.{i}", f"logger {cfg.name!r} is listed twice")
                continue
            out.append(cfg)
        return out

    def model(self, value: Any) -> dict[str, ComponentConfig | None]:
        out: dict[str, ComponentConfig | None] = {slot: None for slot in COMPONENT_SLOTS}
        m = self.mapping(value, "model", COMPONENT_SLOTS, required=REQUIRED_SLOTS)
        if m is None:
            return out
        self.slots = [s for s in COMPONENT_SLOTS if m.get(s) is not None]
        for slot in COMPONENT_SLOTS:
            if m.get(slot) is not None:
                out[slot] = self.component(m[slot], f"model.{slot}", slot)
            elif slot in m and slot in REQUIRED_SLOTS:
                self.add(f"model.{slot}", "is null", expected=f"a {slot}: every model needs one")
        return out

    def train(self, value: Any) -> TrainConfig | None:
        t = self.mapping(value, "train", _TRAIN_KEYS, required=("phases",))
        if t is None:
            return None
        batch_size = self.get(t, "batch_size", "train", int, 32, check=_check_positive)
        eval_batch_size = self.get(t, "eval_batch_size", "train", int, 256, check=_check_positive)
        protocol = None
        if t.get("protocol") is not None:
            protocol = self.component(t["protocol"], "train.protocol", "protocol")
        select = self.select(t["select"], "train.select") if "select" in t else SelectConfig()
        early_stop = self.get(t, "early_stop", "train", int | None, None, check=_check_positive)
        defaults = {"protocol": protocol, "protocol_given": t.get("protocol") is not None, "select": select,
                    "early_stop": early_stop}
        phases = self.phases(t["phases"], defaults) if "phases" in t else []
        return TrainConfig(batch_size, eval_batch_size, protocol, select, early_stop, phases)

    def phases(self, value: Any, defaults: dict[str, Any]) -> list[PhaseConfig]:
        if not isinstance(value, list) or not value:
            self.add("train.phases", f"found {_show(value)}", expected="a non-empty list of phases")
            return []
        phases: list[PhaseConfig] = []
        names: list[str] = []
        for i, raw in enumerate(value):
            phase = self.phase(raw, _element_key("train.phases", i, raw), i, names, defaults)
            if phase is not None:
                phases.append(phase)
        return phases

    def phase(self, raw: Any, key: str, index: int, names: list[str], defaults: dict[str, Any]) -> PhaseConfig | None:
        p = self.mapping(raw, key, _PHASE_KEYS, required=("epochs", "optimizers", "steps"))
        if p is None:
            return None
        name = self.get(p, "name", key, str, f"phase{index}", check=_non_empty)
        if name in names:
            self.add(_join(key, "name"), f"duplicate phase name {name!r}", expected="unique phase names")
        earlier = list(names)
        names.append(name)
        epochs = self.get(p, "epochs", key, int, 1, check=_check_positive)
        min_steps = self.get(p, "min_steps", key, int | None, None, check=_check_positive)
        if p.get("protocol") is not None:
            protocol = self.component(p["protocol"], f"train.phases.{name}.protocol", "protocol")
        else:
            protocol = defaults["protocol"]
            if protocol is not None:
                protocol = ComponentConfig(protocol.name, copy.deepcopy(protocol.kwargs),
                                           f"train.phases.{name}.protocol")
            elif not defaults["protocol_given"]:
                self.add(_join(key, "protocol"), "missing: this phase has no protocol and train.protocol is not set",
                         expected="a missing-modality protocol, e.g. {name: random, rate: 0.5}")
        early_stop = self.get(p, "early_stop", key, int | None, defaults["early_stop"], check=_check_positive)
        select = self.select(p["select"], _join(key, "select")) if "select" in p else copy.deepcopy(defaults["select"])
        freeze = self.part_paths(p["freeze"], _join(key, "freeze")) if "freeze" in p else []
        init_from = self.get(p, "init_from", key, str | None, None)
        if isinstance(init_from, str) and init_from.startswith("phase:") and init_from[6:] not in earlier:
            close = suggest(init_from[6:], earlier)
            self.add(_join(key, "init_from"), f"{init_from!r} does not name an earlier phase"
                     + (f"; did you mean 'phase:{close}'?" if close else ""),
                     expected="'phase:<name of an earlier phase>' or a checkpoint path",
                     allowed=[f"phase:{n}" for n in earlier])
        reuse_forward = self.get(p, "reuse_forward", key, bool, True)
        bypass = self.get(p, "bypass", key, list[str], [])
        for j, slot in enumerate(bypass if isinstance(bypass, list) else []):
            if slot not in _BYPASSABLE:
                self.add(f"{_join(key, 'bypass')}.{j}", f"cannot bypass {slot!r}", allowed=list(_BYPASSABLE))
        declared = list(p["optimizers"]) if isinstance(p.get("optimizers"), dict) else []
        optimizers = self.optimizers(p["optimizers"], _join(key, "optimizers")) if "optimizers" in p else {}
        steps = self.steps(p["steps"], _join(key, "steps"), declared, optimizers) if "steps" in p else []
        return PhaseConfig(name, epochs, protocol, early_stop, freeze, init_from, optimizers, steps, reuse_forward,
                           select, list(bypass) if isinstance(bypass, list) else [], min_steps)

    def optimizers(self, value: Any, key: str) -> dict[str, OptimizerConfig]:
        if not isinstance(value, dict) or not value:
            self.add(key, f"found {_show(value)}",
                     expected="a non-empty mapping: optimizer name -> {name: adam|adamw|sgd, lr: ..., params: [...]}")
            return {}
        out: dict[str, OptimizerConfig] = {}
        owner: dict[str, str] = {}  # component path → the optimiser that claims it
        for oname, raw in value.items():
            okey = _join(key, oname)
            o = self.mapping(raw, okey, _OPTIMIZER_KEYS, required=("name", "lr"))
            if o is None:
                continue
            kind = self.get(o, "name", okey, OptimizerName, "adam")
            lr = self.get(o, "lr", okey, float, 1e-3, check=_check_positive)
            weight_decay = self.get(o, "weight_decay", okey, float, 0.0, check=_check_non_negative)
            betas = self.get(o, "betas", okey, tuple[float, float] | None, None, check=_check_betas)
            momentum = self.get(o, "momentum", okey, float, 0.0, check=_check_non_negative)
            if kind == "sgd" and betas is not None:
                self.add(_join(okey, "betas"), "betas apply to adam and adamw, not sgd; remove them")
            if kind != "sgd" and momentum:
                self.add(_join(okey, "momentum"), f"momentum applies to sgd, not {kind}; use betas")
            if "params" in o:
                params = self.part_paths(o["params"], _join(okey, "params"))
            elif len(value) == 1:
                params = list(self.slots or [])  # the only optimiser of the phase trains every component
            else:
                self.add(_join(okey, "params"), "missing: with several optimizers each must list its params",
                         expected="component paths such as [encoder, fuser, head] or [aligner.discriminator]")
                params = []
            for path in params:
                if path in owner and owner[path] != oname:
                    self.add(_join(okey, "params"), f"{path!r} is also in optimizer {owner[path]!r}; each "
                             "parameter must belong to exactly one optimizer")
                owner.setdefault(path, oname)
            scheduler = self.scheduler(o["scheduler"], _join(okey, "scheduler")) if o.get("scheduler") is not None else None
            out[str(oname)] = OptimizerConfig(kind, lr, weight_decay, betas, momentum, params, scheduler)
        return out

    def scheduler(self, value: Any, key: str) -> dict[str, Any] | None:
        """``{name: <class in torch.optim.lr_scheduler>, **kwargs}``; the class and its arguments are checked when
        the phase's optimisers are built (``imrec run --dry-run`` does), since that needs torch."""
        if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
            self.add(key, f"found {_show(value)}",
                     expected="a mapping with the scheduler's class name and its arguments, e.g. "
                              "{name: ReduceLROnPlateau, factor: 0.5, patience: 24} or {name: StepLR, step_size: 10}")
            return None
        if "optimizer" in value:
            self.add(_join(key, "optimizer"), "is set by imrec (the optimiser this scheduler belongs to); remove it")
            return None
        return copy.deepcopy(value)

    def steps(self, value: Any, key: str, declared: list[str], optimizers: dict[str, OptimizerConfig]) -> list[StepConfig]:
        if not isinstance(value, list) or not value:
            self.add(key, f"found {_show(value)}", expected="a non-empty list of steps")
            return []
        steps: list[StepConfig] = []
        names: list[str] = []
        for j, raw in enumerate(value):
            skey = _element_key(key, j, raw)
            s = self.mapping(raw, skey, _STEP_KEYS, required=("losses",))
            if s is None:
                continue
            name = self.get(s, "name", skey, str, f"step{j}", check=_non_empty)
            if name in names:
                self.add(_join(skey, "name"), f"duplicate step name {name!r}", expected="unique step names in a phase")
            names.append(name)
            losses = self.losses(s["losses"], _join(skey, "losses")) if "losses" in s else {}
            optimizer = self.step_optimizer(s, skey, declared)
            update = self.part_paths(s["update"], _join(skey, "update")) if s.get("update") is not None else None
            params = optimizers[optimizer].params if optimizer in optimizers else None
            for i, path in enumerate(update or []):
                if params is not None and not any(path == q or path.startswith(q + ".") for q in params):
                    self.add(f"{skey}.update.{i}", f"{path!r} is not among the params of optimizer {optimizer!r}",
                             allowed=params)
            clip_value = self.get(s, "clip_grad_value", skey, float | None, None, check=_check_positive)
            clip_norm = self.get(s, "clip_grad_norm", skey, float | None, None, check=_check_positive)
            when = self.get(s, "when", skey, When, "always")
            steps.append(StepConfig(name, losses, optimizer or "", update, clip_value, clip_norm, when))
        return steps

    def step_optimizer(self, s: dict, skey: str, declared: list[str]) -> str | None:
        if "optimizer" in s:
            name = self.get(s, "optimizer", skey, str)
            if name is not None and declared and name not in declared:
                close = suggest(name, declared)
                self.add(_join(skey, "optimizer"), f"unknown optimizer {name!r}"
                         + (f"; did you mean {close!r}?" if close else ""), allowed=declared)
            return name
        if len(declared) == 1:
            return declared[0]
        if len(declared) > 1:
            self.add(_join(skey, "optimizer"), "missing: this phase has several optimizers; name the one this "
                     "step uses", allowed=declared)
        return None

    def losses(self, value: Any, key: str) -> dict[str, float]:
        if not isinstance(value, dict) or not value:
            self.add(key, f"found {_show(value)}", expected="a non-empty mapping: loss name -> weight")
            return {}
        out: dict[str, float] = {}
        for name, weight in value.items():
            lkey = _join(key, name)
            self.loss_name(str(name), lkey)
            if not _matches(weight, float):
                self.problems.append(_type_problem(self.file, lkey, weight, float))
                continue
            out[str(name)] = float(weight)
        return out

    def loss_name(self, name: str, key: str) -> None:
        """``task_gt``, ``task_rec``, or ``<slot>.<aux>`` with a configured slot whose factory lists ``aux``."""
        if name in TASK_LOSSES:
            return
        candidates = list(TASK_LOSSES)
        for slot in self.slots or []:
            aux = _aux_losses(self.entries[slot].factory) if slot in self.entries else None
            candidates += [f"{slot}.{a}" for a in aux or ()]
        slot, _, aux_name = name.partition(".")
        if slot not in COMPONENT_SLOTS or not aux_name:
            close = suggest(name, candidates)
            self.add(key, f"unknown loss {name!r}" + (f"; did you mean {close!r}?" if close else ""),
                     expected="task_gt, task_rec or <slot>.<loss>", allowed=candidates)
            return
        if self.slots is None:
            return
        if slot not in self.slots:
            self.add(key, f"loss {name!r} belongs to slot {slot!r}, which model.{slot} does not configure",
                     allowed=candidates)
            return
        entry = self.entries.get(slot)
        aux = _aux_losses(entry.factory) if entry else None
        if aux is not None and aux_name not in aux:
            close = suggest(aux_name, aux)
            self.add(key, f"{slot} {entry.name!r} emits no loss {aux_name!r}"
                     + (f"; did you mean '{slot}.{close}'?" if close else ""),
                     allowed=[f"{slot}.{a}" for a in aux] or ["(it emits no auxiliary losses)"])

    def select(self, value: Any, key: str) -> SelectConfig:
        m = self.mapping(value, key, _SELECT_KEYS)
        if m is None:
            return SelectConfig()
        metric = self.get(m, "metric", key, str, "loss")
        directions = _metric_directions(self.registry)
        if directions and metric not in directions:
            close = suggest(metric, directions)
            self.add(_join(key, "metric"), f"unknown metric {metric!r}" + (f"; did you mean {close!r}?" if close else ""),
                     allowed=sorted(directions))
        if "mode" in m:
            mode = self.get(m, "mode", key, Mode | None, None)
        else:  # the metric's own direction when the registered metrics agree on it; else decided at run time
            mode = "min" if metric == "loss" else directions.get(metric)
        return SelectConfig(metric, mode)

    def evaluation(self, value: Any) -> EvalConfig:
        e = self.mapping({} if value is None else value, "eval", _EVAL_KEYS)
        if e is None:
            return EvalConfig([])
        conditions: list[ComponentConfig] = []
        raw = e.get("conditions")
        note = ""
        if raw is None:
            raw, note = [copy.deepcopy(DEFAULT_EVAL_CONDITION)], " (this is the default condition; set eval.conditions)"
        if not isinstance(raw, list) or not raw:
            self.add("eval.conditions", f"found {_show(raw)}", expected="a non-empty list of protocols")
        else:
            for i, item in enumerate(raw):
                cfg = self.component(item, f"eval.conditions.{i}", "protocol", note)
                if cfg is not None:
                    conditions.append(cfg)
        metrics = self.get(e, "metrics", "eval", list[str] | None, None)
        for i, name in enumerate(metrics or []):
            try:
                metrics[i] = self.registry.resolve("metric", name).name
            except UnknownComponentError as exc:
                self.problems.append(_unknown_problem(self.file, f"eval.metrics.{i}", exc))
        recovery_metrics = self.get(e, "recovery_metrics", "eval", bool, True)
        per_rate = self.get(e, "per_rate", "eval", bool, False)
        return EvalConfig(conditions, metrics, recovery_metrics, per_rate)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _element_key(path: str, index: int, raw: Any) -> str:
    """A list element's key path: by its name when it has one (as overrides address it), else by index."""
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{path}.{name}" if isinstance(name, str) and name else f"{path}.{index}"


def _check_positive(v: Any) -> str | None:
    return None if v is None or v > 0 else f"must be > 0 (found {v!r})"


def _check_non_negative(v: Any) -> str | None:
    return None if v >= 0 else f"must be >= 0 (found {v!r})"


def _non_empty(v: str) -> str | None:
    return None if v.strip() else "must not be empty"


def _check_name(v: str) -> str | None:
    return None if _NAME_RE.match(v) else (f"{short_repr(v)} cannot name a run directory: use letters, digits and _ . + - "
                                           "(starting with a letter or digit)")


def _check_threads(v: int | None) -> str | None:
    return None if v is None or v >= 1 else f"threads must be ≥ 1 (or null for the default), got {v}"


def _check_device(v: str) -> str | None:
    return None if _DEVICE_RE.match(v) else f"unknown device {short_repr(v)}; use auto, cpu, cuda or cuda:N"


def _check_seeds(v: list[int]) -> str | None:
    if not v:
        return "must list at least one seed"
    if len(set(v)) != len(v):
        return f"seeds must be distinct (found {v})"
    if any(s < 0 for s in v):
        return f"seeds must be >= 0 (found {v})"
    return None


def _check_betas(v: tuple[float, float] | None) -> str | None:
    return None if v is None or all(0 <= b < 1 for b in v) else f"each beta must be in [0, 1) (found {list(v)})"


def _metric_directions(registry: Registry) -> dict[str, str | None]:
    """Metric name → ``"min"``/``"max"`` (``None`` where registered metrics disagree), plus ``loss``; empty when
    no registered metric declares ``higher_is_better`` (then selection metrics are not checked)."""
    directions: dict[str, str | None] = {}
    for entry in registry.entries("metric"):
        hib = getattr(entry.factory, "higher_is_better", None)
        if isinstance(hib, Mapping):
            for name, higher in hib.items():
                mode = "max" if higher else "min"
                directions[name] = mode if directions.get(name, mode) == mode else None
    if directions:
        directions.setdefault("loss", "min")
    return directions


def _aux_losses(factory: Any) -> tuple[str, ...] | None:
    aux = getattr(factory, "aux_losses", None)
    if isinstance(aux, (tuple, list, set, frozenset)) and all(isinstance(a, str) for a in aux):
        return tuple(aux)
    return None


def _unknown_problem(file: str, key: str, exc: UnknownComponentError, note: str = "") -> Problem:
    ambiguous = [n for n in exc.known if "." not in exc.name and n.split(".", 1)[1] == exc.name]
    if len(ambiguous) > 1:
        return Problem(file, key, f"{exc.kind} name {exc.name!r} is ambiguous; write it in full{note}",
                       allowed=ambiguous)
    message = f"unknown {exc.kind} {short_repr(exc.name)}"
    close = suggest(exc.name, exc.known)
    if close:
        message += f"; did you mean {close!r}?"
    if not exc.known:
        message += f"; no {exc.kind} is registered (is the plugin that provides it installed?)"
    return Problem(file, key, message + note, allowed=exc.known or None)


# --------------------------------------------------------------------------------------------------------------
# Component arguments against factory signatures (validation and building share this).
# --------------------------------------------------------------------------------------------------------------
def _keyword_params(factory: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """Parameters settable by keyword, and whether the factory takes ``**kwargs``; ({}, True) if unknowable."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}, True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = {n: p for n, p in sig.parameters.items() if p.kind in kinds}
    return params, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def _type_hints(factory: Any) -> dict[str, Any]:
    """Resolved annotations of the factory's parameters; string annotations that do not resolve are left out."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # one unresolvable annotation: resolve the others one by one
        pass
    raw = getattr(target, "__annotations__", None)
    namespace = dict(getattr(inspect.unwrap(target), "__globals__", {}))
    hints: dict[str, Any] = {}
    for name, ann in (raw.items() if isinstance(raw, dict) else ()):
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)  # noqa: S307 — what typing.get_type_hints does, per annotation
            except Exception:
                continue
        hints[name] = ann
    return hints


def _argument_problems(kind: str, entry: Entry, cfg: ComponentConfig, file: str, reserved: Sequence[str],
                       provided: Sequence[str]) -> list[Problem]:
    """Problems binding ``cfg.kwargs`` to ``entry``'s factory: arguments imrec injects (``reserved``), unknown
    arguments, wrong types, and required arguments neither the recipe nor ``provided`` supplies."""
    params, var_keyword = _keyword_params(entry.factory)
    hints = _type_hints(entry.factory)
    settable = [n for n in params if n not in reserved]
    problems = []
    for arg, value in cfg.kwargs.items():
        key = f"{cfg.key}.{arg}"
        if arg in reserved:
            problems.append(Problem(file, key, f"{arg!r} is injected by imrec into {kind} factories; remove it "
                                    "from the recipe"))
        elif arg not in params and not var_keyword:
            close = suggest(str(arg), settable)
            problems.append(Problem(file, key, f"unknown argument {arg!r} for {kind} {cfg.name!r}"
                                    + (f"; did you mean {close!r}?" if close else ""),
                                    allowed=settable or ["(it takes no arguments)"]))
        elif arg in hints and not _matches(value, hints[arg]):
            problems.append(_type_problem(file, key, value, hints[arg]))
    for name, param in params.items():
        if param.default is inspect.Parameter.empty and name not in cfg.kwargs and name not in provided:
            why = " (imrec injects it; the caller did not provide it)" if name in reserved else ""
            expected = _describe(hints[name]) if name in hints else None
            problems.append(Problem(file, f"{cfg.key}.{name}", f"missing required argument of {kind} "
                                    f"{cfg.name!r}{why}", expected=expected))
    return problems


def _matches(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a type annotation; annotations YAML cannot express (classes) always fit."""
    if hint is Any or hint is object or hint is inspect.Parameter.empty:
        return True
    if hint is None or hint is _NONE:
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _matches(value, args[0])
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in args)
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
    if hint in (list, tuple) or origin in (list, tuple, abc.Sequence, abc.MutableSequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if hint is dict or origin in (dict, abc.Mapping, abc.MutableMapping):
        if not isinstance(value, dict):
            return False
        return len(args) != 2 or all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    return True


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` shaped as ``hint`` asks where YAML cannot say it: lists to tuples, ints to floats."""
    if hint is None:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _coerce(value, args[0])
    if origin in (Union, types.UnionType):
        fit = next((a for a in args if a is not _NONE and _matches(value, a)), None)
        return value if fit is None else _coerce(value, fit)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is tuple or origin is tuple) and isinstance(value, (list, tuple)):
        if args and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_coerce(v, a) for v, a in zip(value, args))
        return tuple(_coerce(v, args[0] if args else None) for v in value)
    if origin is list and args and isinstance(value, list):
        return [_coerce(v, args[0]) for v in value]
    return value


def _literal_values(hint: Any) -> list[Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return list(args)
    if origin in (Union, types.UnionType, typing.Annotated):
        return [v for a in (args if origin is not typing.Annotated else args[:1]) for v in _literal_values(a)]
    return []


def _describe(hint: Any) -> str:
    """A type annotation in words for error messages."""
    if hint is None or hint is _NONE:
        return "null"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _describe(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if hint in (list, tuple) or origin in (list, tuple, abc.Sequence, abc.MutableSequence):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} ({', '.join(_describe(a) for a in args)})"
        return f"a list of {_describe_part(args[0])}" if args else "a list"
    if hint is dict or origin in (dict, abc.Mapping, abc.MutableMapping):
        return f"a mapping of {_describe_part(args[0])} to {_describe_part(args[1])}" if len(args) == 2 else "a mapping"
    names = {bool: "bool (true/false)", int: "int", float: "float", str: "string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _describe_part(hint: Any) -> str:
    """:func:`_describe` for an element type, parenthesised when it has alternatives."""
    text = _describe(hint)
    return f"({text})" if " or " in text else text


def _show(value: Any) -> str:
    """A found value for error messages: its YAML kind and a short repr."""
    if value is None:
        return "null"
    kinds = {bool: "bool", int: "int", float: "float", str: "string", list: "list", tuple: "list", dict: "mapping"}
    text = short_repr(value, 60)  # cut while rendering: a huge value is never rendered whole
    return f"{kinds.get(type(value), type(value).__name__)} {text}"


def _type_problem(file: str, key: str, value: Any, hint: Any) -> Problem:
    allowed = [str(a) for a in _literal_values(hint)]
    message = f"found {_show(value)}"
    if allowed and isinstance(value, str):
        close = suggest(value, allowed)
        if close:
            message += f"; did you mean {close!r}?"
    expected = "one of the allowed values" + (" or null" if _matches(None, hint) else "") if allowed else _describe(hint)
    return Problem(file, key, message, expected=expected, allowed=allowed or None)


# --------------------------------------------------------------------------------------------------------------
# The resolved recipe as plain data (what to_yaml writes and Recipe.resolved holds).
# --------------------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """YAML-ready copy: tuples become lists, mappings and lists are copied."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _plain_component(cfg: ComponentConfig | None) -> dict[str, Any] | None:
    return None if cfg is None else {"name": cfg.name, **_plain(cfg.kwargs)}


def _plain_select(s: SelectConfig) -> dict[str, Any]:
    return {"metric": s.metric, "mode": s.mode}


def _plain_optimizer(o: OptimizerConfig) -> dict[str, Any]:
    out = {"name": o.name, "lr": o.lr, "weight_decay": o.weight_decay,
           "betas": None if o.betas is None else list(o.betas), "momentum": o.momentum, "params": list(o.params)}
    if o.scheduler is not None:  # written only when set, so recipes without one resolve exactly as before
        out["scheduler"] = copy.deepcopy(o.scheduler)
    return out


def _plain_phase(p: PhaseConfig) -> dict[str, Any]:
    return {
        "name": p.name,
        "epochs": p.epochs,
        **({"min_steps": p.min_steps} if p.min_steps is not None else {}),  # written only when set
        "protocol": _plain_component(p.protocol),
        "early_stop": p.early_stop,
        "select": _plain_select(p.select),
        "freeze": list(p.freeze),
        "init_from": p.init_from,
        "reuse_forward": p.reuse_forward,
        "bypass": list(p.bypass),
        "optimizers": {
            n: _plain_optimizer(o) for n, o in p.optimizers.items()
        },
        "steps": [
            {"name": s.name, "losses": dict(s.losses), "optimizer": s.optimizer,
             "update": None if s.update is None else list(s.update), "clip_grad_value": s.clip_grad_value,
             "clip_grad_norm": s.clip_grad_norm, "when": s.when}
            for s in p.steps
        ],
    }


def _plain_recipe(r: Recipe) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "data": _plain_component(r.data),
        "model": {slot: _plain_component(cfg) for slot, cfg in r.model.items()},
        "train": {
            "batch_size": r.train.batch_size,
            "eval_batch_size": r.train.eval_batch_size,
            "protocol": _plain_component(r.train.protocol),
            "select": _plain_select(r.train.select),
            "early_stop": r.train.early_stop,
            "phases": [_plain_phase(p) for p in r.train.phases],
        },
        "eval": {
            "conditions": [_plain_component(c) for c in r.eval.conditions],
            "metrics": None if r.eval.metrics is None else list(r.eval.metrics),
            "recovery_metrics": r.eval.recovery_metrics,
            **({"per_rate": True} if r.eval.per_rate else {}),  # written only when set: older runs resolve as before
        },
        "seeds": list(r.seeds),
        "device": r.device,
        "deterministic": r.deterministic,
        "output_dir": r.output_dir,
        # Only when set: recipes without trackers resolve exactly as before (bench cells compare recipe.yaml).
        **({"log": [_plain_component(c) for c in r.log]} if r.log else {}),
        # Written only when set, so recipes (and run directories) that never chose threads read as before.
        **({"threads": r.threads} if r.threads is not None else {}),
    }
