"""The typed recipe: the dataclasses a validated recipe becomes, and every key a recipe may hold.

``KEYS`` declares each section's keys, in the order error messages list them, with the type of the YAML value.
Validation checks values against these types (:mod:`imrec.config.check_recipe` and its siblings) and
``imrec schema`` writes them as JSON Schema (:mod:`imrec.config.json_schema`), so a new recipe key is declared
here once. ``Annotated`` markers (:class:`Component`, :class:`Section`, ...) say what plain types cannot: the
validator reads through them (``Annotated[str, X]`` is checked as ``str``) and the schema writer uses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from ..slots import BYPASSABLE_SLOTS, COMPONENT_SLOTS, CONTEXT_ARGS, REQUIRED_SLOTS

# --------------------------------------------------------------------------------------------------------------
# The component slots, as recipes see them: derived from their declaration (imrec/slots.py), kept together here.
# CONTEXT_ARGS: the arguments the core injects into a slot's factories; recipes may not set them.
# --------------------------------------------------------------------------------------------------------------
BYPASSABLE = BYPASSABLE_SLOTS  # optional components a phase may run without (`bypass: [...]`)
SWAP_WORDS = ("data", *COMPONENT_SLOTS)  # `SLOT=other.name` on the command line swaps a component

TASK_LOSSES = ("task_gt", "task_rec")
DEFAULT_EVAL_CONDITION = {"name": "random", "rates": [0.0]}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")

OptimizerName = Literal["adam", "adamw", "sgd"]
When = Literal["always", "missing"]
Mode = Literal["min", "max"]


# --------------------------------------------------------------------------------------------------------------
# Markers for KEYS: what a value is beyond its YAML type.
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Component:
    """A registered component of ``kind``: on a mapping, ``{name: ..., **its arguments}``; on a string, its name."""

    kind: str


@dataclass(frozen=True)
class Section:
    """A nested mapping whose keys are ``KEYS[name]``."""

    name: str


@dataclass(frozen=True)
class Pattern:
    """A string matching ``regex``."""

    regex: str


@dataclass(frozen=True)
class OneOf:
    """A string among ``values`` (checked with its own message, not as a Literal)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class PartPaths:
    """Component paths: a configured slot, optionally followed by ``.attribute`` (``aligner.discriminator``)."""


@dataclass(frozen=True)
class LossNames:
    """Loss name → weight: ``task_gt``, ``task_rec`` or ``<slot>.<auxiliary loss of that slot's component>``."""


@dataclass(frozen=True)
class NamedMapping:
    """``{name: <non-empty string>, **arguments}`` checked when built (needs torch); ``forbidden`` keys refused."""

    example: str
    forbidden: tuple[str, ...] = ()


def _component(kind: str) -> Any:
    return Annotated[dict, Component(kind)]


def _section(name: str) -> Any:
    return Annotated[dict, Section(name)]


_PARTS = Annotated[list[str], PartPaths()]

KEYS: dict[str, dict[str, Any]] = {
    "recipe": {
        "name": Annotated[str, Pattern(NAME_RE.pattern)],
        "description": str | None,
        "data": _component("dataset"),
        "model": _section("model"),
        "train": _section("train"),
        "eval": _section("eval") | None,
        "seeds": list[int],
        "device": Annotated[str, Pattern(DEVICE_RE.pattern)],
        "deterministic": bool,
        "output_dir": str,
        "log": list[Annotated[str, Component("logger")] | _component("logger")] | None,
        "threads": int | None,
    },
    "model": {slot: _component(slot) if slot in REQUIRED_SLOTS else _component(slot) | None
              for slot in COMPONENT_SLOTS},
    "train": {
        "batch_size": int,
        "eval_batch_size": int,
        "protocol": _component("protocol") | None,
        "select": _section("select"),
        "early_stop": int | None,
        "phases": list[_section("phase")],
    },
    "phase": {
        "name": str,
        "epochs": int,
        "min_steps": int | None,
        "protocol": _component("protocol") | None,
        "early_stop": int | None,
        "select": _section("select"),
        "freeze": _PARTS,
        "init_from": str | None,
        "reuse_forward": bool,
        "bypass": list[Annotated[str, OneOf(BYPASSABLE)]],
        "optimizers": dict[str, _section("optimizer")],
        "steps": list[_section("step")],
    },
    "optimizer": {
        "name": OptimizerName,
        "lr": float,
        "weight_decay": float,
        "betas": tuple[float, float] | None,
        "momentum": float,
        "params": _PARTS,
        "scheduler": Annotated[dict, NamedMapping("{name: StepLR, step_size: 10}", ("optimizer",))] | None,
    },
    "step": {
        "name": str,
        "losses": Annotated[dict[str, float], LossNames()],
        "optimizer": str,
        "update": _PARTS | None,
        "clip_grad_value": float | None,
        "clip_grad_norm": float | None,
        "when": When,
    },
    "select": {"metric": str, "mode": Mode | None},
    "eval": {
        "conditions": list[_component("protocol")] | None,
        "metrics": list[Annotated[str, Component("metric")]] | None,
        "recovery_metrics": bool,
        "per_rate": bool,
    },
}
# Keys a complete recipe must give, per section (a recipe that `extends:` another gives only what differs).
REQUIRED: dict[str, tuple[str, ...]] = {
    "recipe": ("data", "model", "train"),
    "model": REQUIRED_SLOTS,
    "train": ("phases",),
    "phase": ("epochs", "optimizers", "steps"),
    "optimizer": ("name", "lr"),
    "step": ("losses",),
    "select": (),
    "eval": (),
}
TOP = KEYS["recipe"]
TRAIN = KEYS["train"]
PHASE = KEYS["phase"]
OPTIMIZER = KEYS["optimizer"]
STEP = KEYS["step"]
SELECT = KEYS["select"]
EVAL = KEYS["eval"]


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
