"""A phase's plan: which parameters are frozen, which optimiser owns each trainable one, what each step updates.

Every problem of a phase's ``freeze`` / ``optimizers`` / ``steps`` sections against the built model (a path that
names no part, a parameter claimed by two optimisers, a step that updates nothing or weights a loss the model never
emits) is a :class:`~imrec.errors.RecipeError` naming the recipe key, raised before any training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from ..errors import Problem, RecipeError
from ..model import IMModel
from .optimizers import build_optimizer, build_scheduler


@dataclass
class StepPlan:
    """One optimisation step of a phase: its weighted losses, its optimiser and exactly the parameters it moves."""

    name: str
    losses: dict[str, float]
    optimizer: str
    params: list[nn.Parameter]
    clip_grad_value: float | None
    clip_grad_norm: float | None
    when: str


@dataclass
class PhasePlan:
    """A phase's optimisers (one per ``optimizers`` entry), its steps in order, its frozen parts, every loss a step
    weights (what the forward must compute) and the optimisers' learning-rate schedulers."""

    optimizers: dict[str, torch.optim.Optimizer]
    steps: list[StepPlan]
    frozen: list[str]
    need: set[str] = field(default_factory=set)
    schedulers: dict[str, Any] = field(default_factory=dict)  # optimiser name → its learning-rate scheduler


def _owner(param_name: str, paths: Sequence[str]) -> str | None:
    """The most specific of ``paths`` that contains ``param_name`` (``aligner.discriminator`` beats ``aligner``)."""
    best = None
    for p in paths:
        if param_name == p or param_name.startswith(p + "."):
            if best is None or len(p) > len(best):
                best = p
    return best


def _path_problem(model: IMModel, named: dict[str, nn.Parameter], path: str, source: str,
                  where: str) -> Problem | None:
    """A problem when ``path`` names no part of ``model``."""
    try:
        model.part(path)
    except KeyError:
        return Problem(source, where, f"no component part {path!r} in this model",
                       allowed=sorted({n.rsplit('.', 1)[0] for n in named} | set(model.slots())))
    return None


def _claims(model: IMModel, phase: Any, named: dict[str, nn.Parameter], source: str, key: str) -> dict[str, str]:
    """Each path an optimiser lists → that optimiser; raises when a path names no part (frozen ones included) or
    two optimisers list the same path."""
    found = [_path_problem(model, named, path, source, f"{key}.freeze.{i}") for i, path in enumerate(phase.freeze)]
    listed: list[tuple[str, str]] = []  # (path, optimiser), in the recipe's order
    for oname, ocfg in phase.optimizers.items():
        for i, path in enumerate(ocfg.params):
            found.append(_path_problem(model, named, path, source, f"{key}.optimizers.{oname}.params.{i}"))
            listed.append((path, oname))
    problems = [p for p in found if p is not None]
    if problems:
        raise RecipeError(problems)
    claims: dict[str, str] = {}
    for path, oname in listed:
        if path in claims and claims[path] != oname:
            problems.append(Problem(source, f"{key}.optimizers", f"{path!r} is in optimisers {claims[path]!r} and "
                                    f"{oname!r}; each parameter must belong to exactly one optimiser"))
        claims[path] = oname
    if problems:
        raise RecipeError(problems)
    return claims


def _assign(named: dict[str, nn.Parameter], frozen: Sequence[str], claims: dict[str, str],
            optimizers: Sequence[str]) -> tuple[dict[str, list[nn.Parameter]], dict[str, str]]:
    """Freeze what is frozen or claimed by no optimiser; give every other parameter to the optimiser of the most
    specific path that claims it. Returns optimiser → its parameters, and parameter name → its optimiser."""
    opt_params: dict[str, list[nn.Parameter]] = {o: [] for o in optimizers}
    owner_of: dict[str, str] = {}
    for pname, param in named.items():
        path = _owner(pname, list(claims))
        if _owner(pname, frozen) is not None or path is None:
            param.requires_grad_(False)
            continue
        param.requires_grad_(True)
        opt_params[claims[path]].append(param)
        owner_of[pname] = claims[path]
    return opt_params, owner_of


def _step_plan(model: IMModel, step: Any, named: dict[str, nn.Parameter], opt_params: dict[str, list[nn.Parameter]],
               owner_of: dict[str, str], source: str, key: str, problems: list[Problem]) -> StepPlan:
    """The step's plan: with ``update``, the listed parts' parameters its optimiser owns (a trainable parameter
    there owned by another optimiser is a problem); without, every parameter of its optimiser."""
    where = f"{key}.steps.{step.name}"
    if step.update:
        for j, path in enumerate(step.update):
            problem = _path_problem(model, named, path, source, f"{where}.update.{j}")
            if problem is not None:
                problems.append(problem)
        params = [p for n, p in named.items() if _owner(n, step.update) and owner_of.get(n) == step.optimizer]
        stray = [n for n, p in named.items() if _owner(n, step.update) and p.requires_grad
                 and owner_of.get(n) != step.optimizer]
        if stray:
            problems.append(Problem(source, f"{where}.update",
                                    f"parameters outside optimiser {step.optimizer!r}: {stray[:3]}…"))
    else:
        params = list(opt_params.get(step.optimizer, []))
    if not params and not problems:
        problems.append(Problem(source, where, "updates no trainable parameter"))
    return StepPlan(step.name, dict(step.losses), step.optimizer, params, step.clip_grad_value, step.clip_grad_norm,
                    step.when)


def plan_phase(model: IMModel, phase: Any, source: str = "<recipe>", select_mode: str = "min") -> PhasePlan:
    """Freeze, assign every trainable parameter to exactly one optimiser, and resolve each step's parameters."""
    key = f"train.phases.{phase.name}"
    named = dict(model.named_parameters())
    claims = _claims(model, phase, named, source, key)
    opt_params, owner_of = _assign(named, phase.freeze, claims, list(phase.optimizers))
    problems: list[Problem] = []
    optimizers: dict[str, torch.optim.Optimizer] = {}
    for oname, ocfg in phase.optimizers.items():
        if not opt_params[oname]:
            problems.append(Problem(source, f"{key}.optimizers.{oname}",
                                    "has no trainable parameters (all frozen or claimed by a more specific path)"))
            continue
        optimizers[oname] = build_optimizer(ocfg, opt_params[oname])
    steps = [_step_plan(model, s, named, opt_params, owner_of, source, key, problems) for s in phase.steps]
    available = model.aux_loss_names(phase.bypass)
    for s in steps:
        for loss in s.losses:
            if loss not in available:
                problems.append(Problem(source, f"{key}.steps.{s.name}.losses.{loss}", "this model never emits it",
                                        allowed=sorted(available)))
    if problems:
        raise RecipeError(problems)
    need = {n for s in steps for n in s.losses}
    schedulers = {
        oname: build_scheduler(optimizers[oname], ocfg.scheduler, f"{key}.optimizers.{oname}.scheduler", source,
                               select_mode)
        for oname, ocfg in phase.optimizers.items() if getattr(ocfg, "scheduler", None)
    }
    return PhasePlan(optimizers, steps, list(phase.freeze), need, schedulers)


def phase_epochs(phase: Any, n_train: int, batch_size: int, shard: tuple[int, int] = (0, 1)) -> tuple[int, int]:
    """``(epoch cap, epochs before early stopping may end the phase)`` of a phase on ``n_train`` training samples:
    ``epochs`` and 0, or with ``min_steps`` both raised to the epochs that make at least that many optimiser steps
    (batches per epoch as the loader makes them on this rank)."""
    if not getattr(phase, "min_steps", None):
        return phase.epochs, 0
    per_rank = n_train // shard[1] if shard[1] > 1 else n_train
    batches = max(1, math.ceil(per_rank / batch_size))
    need = math.ceil(phase.min_steps / batches)
    return max(phase.epochs, need), need
