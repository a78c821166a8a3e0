"""Validation of ``train``: batch sizes, train-level defaults, phases, their optimisers and ``select``
(a phase's steps are :mod:`imrec.config.check_steps`)."""

from __future__ import annotations

import copy
from typing import Any

from ..errors import suggest
from .check_steps import check_steps
from .checker import Checker, check_component, check_part_paths, element_key, join
from .checks import check_betas, check_non_negative, check_positive, metric_directions, non_empty
from .hints import show
from .recipe import (BYPASSABLE, OPTIMIZER, PHASE, REQUIRED, SELECT, TRAIN, ComponentConfig, OptimizerConfig,
                     PhaseConfig, SelectConfig, TrainConfig)


def check_train(c: Checker, value: Any) -> TrainConfig | None:
    t = c.mapping(value, "train", tuple(TRAIN), required=REQUIRED["train"])
    if t is None:
        return None
    batch_size = c.get(t, "batch_size", "train", TRAIN["batch_size"], 32, check=check_positive)
    eval_batch_size = c.get(t, "eval_batch_size", "train", TRAIN["eval_batch_size"], 256, check=check_positive)
    protocol = None
    if t.get("protocol") is not None:
        protocol = check_component(c, t["protocol"], "train.protocol", "protocol")
    select = check_select(c, t["select"], "train.select") if "select" in t else SelectConfig()
    early_stop = c.get(t, "early_stop", "train", TRAIN["early_stop"], None, check=check_positive)
    defaults = {"protocol": protocol, "protocol_given": t.get("protocol") is not None, "select": select,
                "early_stop": early_stop}
    phases = check_phases(c, t["phases"], defaults) if "phases" in t else []
    return TrainConfig(batch_size, eval_batch_size, protocol, select, early_stop, phases)


def check_phases(c: Checker, value: Any, defaults: dict[str, Any]) -> list[PhaseConfig]:
    if not isinstance(value, list) or not value:
        c.add("train.phases", f"found {show(value)}", expected="a non-empty list of phases")
        return []
    phases: list[PhaseConfig] = []
    names: list[str] = []
    for i, raw in enumerate(value):
        phase = check_phase(c, raw, element_key("train.phases", i, raw), i, names, defaults)
        if phase is not None:
            phases.append(phase)
    return phases


def check_phase(c: Checker, raw: Any, key: str, index: int, names: list[str],
                defaults: dict[str, Any]) -> PhaseConfig | None:
    """One phase; ``names`` holds the names of the phases before it (this one's is appended)."""
    p = c.mapping(raw, key, tuple(PHASE), required=REQUIRED["phase"])
    if p is None:
        return None
    name = c.get(p, "name", key, PHASE["name"], f"phase{index}", check=non_empty)
    if name in names:
        c.add(join(key, "name"), f"duplicate phase name {name!r}", expected="unique phase names")
    earlier = list(names)
    names.append(name)
    epochs = c.get(p, "epochs", key, PHASE["epochs"], 1, check=check_positive)
    min_steps = c.get(p, "min_steps", key, PHASE["min_steps"], None, check=check_positive)
    protocol = _phase_protocol(c, p, key, name, defaults)
    early_stop = c.get(p, "early_stop", key, PHASE["early_stop"], defaults["early_stop"], check=check_positive)
    select = check_select(c, p["select"], join(key, "select")) if "select" in p else copy.deepcopy(defaults["select"])
    freeze = check_part_paths(c, p["freeze"], join(key, "freeze")) if "freeze" in p else []
    init_from = c.get(p, "init_from", key, PHASE["init_from"], None)
    if isinstance(init_from, str) and init_from.startswith("phase:") and init_from[6:] not in earlier:
        close = suggest(init_from[6:], earlier)
        c.add(join(key, "init_from"), f"{init_from!r} does not name an earlier phase"
              + (f"; did you mean 'phase:{close}'?" if close else ""),
              expected="'phase:<name of an earlier phase>' or a checkpoint path",
              allowed=[f"phase:{n}" for n in earlier])
    reuse_forward = c.get(p, "reuse_forward", key, PHASE["reuse_forward"], True)
    bypass = c.get(p, "bypass", key, PHASE["bypass"], [])
    for j, slot in enumerate(bypass if isinstance(bypass, list) else []):
        if slot not in BYPASSABLE:
            c.add(f"{join(key, 'bypass')}.{j}", f"cannot bypass {slot!r}", allowed=list(BYPASSABLE))
    declared = list(p["optimizers"]) if isinstance(p.get("optimizers"), dict) else []
    optimizers = check_optimizers(c, p["optimizers"], join(key, "optimizers")) if "optimizers" in p else {}
    steps = check_steps(c, p["steps"], join(key, "steps"), declared, optimizers) if "steps" in p else []
    return PhaseConfig(name, epochs, protocol, early_stop, freeze, init_from, optimizers, steps, reuse_forward,
                       select, list(bypass) if isinstance(bypass, list) else [], min_steps)


def _phase_protocol(c: Checker, p: dict, key: str, name: str, defaults: dict[str, Any]) -> ComponentConfig | None:
    """The phase's own protocol, else a copy of ``train.protocol`` (a problem when neither is set)."""
    if p.get("protocol") is not None:
        return check_component(c, p["protocol"], f"train.phases.{name}.protocol", "protocol")
    protocol = defaults["protocol"]
    if protocol is not None:
        return ComponentConfig(protocol.name, copy.deepcopy(protocol.kwargs), f"train.phases.{name}.protocol")
    if not defaults["protocol_given"]:
        c.add(join(key, "protocol"), "missing: this phase has no protocol and train.protocol is not set",
              expected="a missing-modality protocol, e.g. {name: random, rate: 0.5}")
    return None


def check_optimizers(c: Checker, value: Any, key: str) -> dict[str, OptimizerConfig]:
    if not isinstance(value, dict) or not value:
        c.add(key, f"found {show(value)}",
              expected="a non-empty mapping: optimizer name -> {name: adam|adamw|sgd, lr: ..., params: [...]}")
        return {}
    out: dict[str, OptimizerConfig] = {}
    owner: dict[str, str] = {}  # component path → the optimiser that claims it
    for oname, raw in value.items():
        okey = join(key, oname)
        o = c.mapping(raw, okey, tuple(OPTIMIZER), required=REQUIRED["optimizer"])
        if o is None:
            continue
        kind = c.get(o, "name", okey, OPTIMIZER["name"], "adam")
        lr = c.get(o, "lr", okey, OPTIMIZER["lr"], 1e-3, check=check_positive)
        weight_decay = c.get(o, "weight_decay", okey, OPTIMIZER["weight_decay"], 0.0, check=check_non_negative)
        betas = c.get(o, "betas", okey, OPTIMIZER["betas"], None, check=check_betas)
        momentum = c.get(o, "momentum", okey, OPTIMIZER["momentum"], 0.0, check=check_non_negative)
        if kind == "sgd" and betas is not None:
            c.add(join(okey, "betas"), "betas apply to adam and adamw, not sgd; remove them")
        if kind != "sgd" and momentum:
            c.add(join(okey, "momentum"), f"momentum applies to sgd, not {kind}; use betas")
        params = _optimizer_params(c, o, okey, only=len(value) == 1)
        for path in params:
            if path in owner and owner[path] != oname:
                c.add(join(okey, "params"), f"{path!r} is also in optimizer {owner[path]!r}; each "
                      "parameter must belong to exactly one optimizer")
            owner.setdefault(path, oname)
        scheduler = None
        if o.get("scheduler") is not None:
            scheduler = check_scheduler(c, o["scheduler"], join(okey, "scheduler"))
        out[str(oname)] = OptimizerConfig(kind, lr, weight_decay, betas, momentum, params, scheduler)
    return out


def _optimizer_params(c: Checker, o: dict, okey: str, only: bool) -> list[str]:
    if "params" in o:
        return check_part_paths(c, o["params"], join(okey, "params"))
    if only:
        return list(c.slots or [])  # the only optimiser of the phase trains every component
    c.add(join(okey, "params"), "missing: with several optimizers each must list its params",
          expected="component paths such as [encoder, fuser, head] or [aligner.discriminator]")
    return []


def check_scheduler(c: Checker, value: Any, key: str) -> dict[str, Any] | None:
    """``{name: <class in torch.optim.lr_scheduler>, **kwargs}``; the class and its arguments are checked when
    the phase's optimisers are built (``imrec run --dry-run`` does), since that needs torch."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        c.add(key, f"found {show(value)}",
              expected="a mapping with the scheduler's class name and its arguments, e.g. "
                       "{name: ReduceLROnPlateau, factor: 0.5, patience: 24} or {name: StepLR, step_size: 10}")
        return None
    if "optimizer" in value:
        c.add(join(key, "optimizer"), "is set by imrec (the optimiser this scheduler belongs to); remove it")
        return None
    return copy.deepcopy(value)


def check_select(c: Checker, value: Any, key: str) -> SelectConfig:
    m = c.mapping(value, key, tuple(SELECT))
    if m is None:
        return SelectConfig()
    metric = c.get(m, "metric", key, SELECT["metric"], "loss")
    directions = metric_directions(c.registry)
    if directions and metric not in directions:
        close = suggest(metric, directions)
        c.add(join(key, "metric"), f"unknown metric {metric!r}" + (f"; did you mean {close!r}?" if close else ""),
              allowed=sorted(directions))
    if "mode" in m:
        mode = c.get(m, "mode", key, SELECT["mode"], None)
    else:  # the metric's own direction when the registered metrics agree on it; else decided at run time
        mode = "min" if metric == "loss" else directions.get(metric)
    return SelectConfig(metric, mode)
