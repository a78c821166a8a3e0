"""Validation of a phase's ``steps``: their losses (task losses and the configured components' auxiliary
losses), the optimiser each steps and the parameters it updates."""

from __future__ import annotations

from typing import Any

from ..errors import suggest
from ..slots import COMPONENT_SLOTS
from .checker import Checker, check_part_paths, element_key, join
from .checks import aux_losses, check_positive, non_empty
from .hints import matches, show, type_problem
from .recipe import REQUIRED, STEP, TASK_LOSSES, OptimizerConfig, StepConfig


def check_steps(c: Checker, value: Any, key: str, declared: list[str],
                optimizers: dict[str, OptimizerConfig]) -> list[StepConfig]:
    """The steps of a phase whose optimisers are ``declared`` (names) and, where valid, ``optimizers``."""
    if not isinstance(value, list) or not value:
        c.add(key, f"found {show(value)}", expected="a non-empty list of steps")
        return []
    steps: list[StepConfig] = []
    names: list[str] = []
    for j, raw in enumerate(value):
        skey = element_key(key, j, raw)
        s = c.mapping(raw, skey, tuple(STEP), required=REQUIRED["step"])
        if s is None:
            continue
        name = c.get(s, "name", skey, STEP["name"], f"step{j}", check=non_empty)
        if name in names:
            c.add(join(skey, "name"), f"duplicate step name {name!r}", expected="unique step names in a phase")
        names.append(name)
        losses = check_losses(c, s["losses"], join(skey, "losses")) if "losses" in s else {}
        optimizer = _step_optimizer(c, s, skey, declared)
        update = check_part_paths(c, s["update"], join(skey, "update")) if s.get("update") is not None else None
        params = optimizers[optimizer].params if optimizer in optimizers else None
        for i, path in enumerate(update or []):
            if params is not None and not any(path == q or path.startswith(q + ".") for q in params):
                c.add(f"{skey}.update.{i}", f"{path!r} is not among the params of optimizer {optimizer!r}",
                      allowed=params)
        clip_value = c.get(s, "clip_grad_value", skey, STEP["clip_grad_value"], None, check=check_positive)
        clip_norm = c.get(s, "clip_grad_norm", skey, STEP["clip_grad_norm"], None, check=check_positive)
        when = c.get(s, "when", skey, STEP["when"], "always")
        steps.append(StepConfig(name, losses, optimizer or "", update, clip_value, clip_norm, when))
    return steps


def _step_optimizer(c: Checker, s: dict, skey: str, declared: list[str]) -> str | None:
    if "optimizer" in s:
        name = c.get(s, "optimizer", skey, STEP["optimizer"])
        if name is not None and declared and name not in declared:
            close = suggest(name, declared)
            c.add(join(skey, "optimizer"), f"unknown optimizer {name!r}"
                  + (f"; did you mean {close!r}?" if close else ""), allowed=declared)
        return name
    if len(declared) == 1:
        return declared[0]
    if len(declared) > 1:
        c.add(join(skey, "optimizer"), "missing: this phase has several optimizers; name the one this "
              "step uses", allowed=declared)
    return None


def check_losses(c: Checker, value: Any, key: str) -> dict[str, float]:
    if not isinstance(value, dict) or not value:
        c.add(key, f"found {show(value)}", expected="a non-empty mapping: loss name -> weight")
        return {}
    out: dict[str, float] = {}
    for name, weight in value.items():
        lkey = join(key, name)
        check_loss_name(c, str(name), lkey)
        if not matches(weight, float):
            c.problems.append(type_problem(c.file, lkey, weight, float))
            continue
        out[str(name)] = float(weight)
    return out


def check_loss_name(c: Checker, name: str, key: str) -> None:
    """``task_gt``, ``task_rec``, or ``<slot>.<aux>`` with a configured slot whose factory lists ``aux``."""
    if name in TASK_LOSSES:
        return
    candidates = list(TASK_LOSSES)
    for slot in c.slots or []:
        aux = aux_losses(c.entries[slot].factory) if slot in c.entries else None
        candidates += [f"{slot}.{a}" for a in aux or ()]
    slot, _, aux_name = name.partition(".")
    if slot not in COMPONENT_SLOTS or not aux_name:
        close = suggest(name, candidates)
        c.add(key, f"unknown loss {name!r}" + (f"; did you mean {close!r}?" if close else ""),
              expected="task_gt, task_rec or <slot>.<loss>", allowed=candidates)
        return
    if c.slots is None:
        return
    if slot not in c.slots:
        c.add(key, f"loss {name!r} belongs to slot {slot!r}, which model.{slot} does not configure",
              allowed=candidates)
        return
    entry = c.entries.get(slot)
    aux = aux_losses(entry.factory) if entry else None
    if aux is not None and aux_name not in aux:
        close = suggest(aux_name, aux)
        c.add(key, f"{slot} {entry.name!r} emits no loss {aux_name!r}"
              + (f"; did you mean '{slot}.{close}'?" if close else ""),
              allowed=[f"{slot}.{a}" for a in aux] or ["(it emits no auxiliary losses)"])
