"""Validation of a whole recipe: the top level, ``model``, ``eval``, ``log`` and ``select`` sections
(``train`` is :mod:`imrec.config.check_train`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..errors import UnknownComponentError
from ..slots import COMPONENT_SLOTS
from .check_train import check_train
from .checker import Checker, check_component
from .checks import check_device, check_name, check_seeds, check_threads, non_empty
from .hints import show
from .recipe import DEFAULT_EVAL_CONDITION, EVAL, KEYS, REQUIRED, TOP, ComponentConfig, EvalConfig, Recipe
from .resolved import plain_recipe
from .signatures import unknown_problem


def check_recipe(c: Checker, data: dict, default_name: str, source: Path | None, overrides: list[str]) -> Recipe | None:
    """The typed recipe, or None when ``c`` collected problems."""
    top = c.mapping(data, "", tuple(TOP), required=REQUIRED["recipe"])
    if top is None:
        return None
    name = c.get(top, "name", "", TOP["name"], default_name, check=check_name)
    description = c.get(top, "description", "", TOP["description"], "") or ""
    data_cfg = check_component(c, top["data"], "data", "dataset") if "data" in top else None
    model = check_model(c, top["model"]) if "model" in top else {s: None for s in COMPONENT_SLOTS}
    train = check_train(c, top["train"]) if "train" in top else None
    evaluation = check_eval(c, top.get("eval"))
    seeds = c.get(top, "seeds", "", TOP["seeds"], [1111], check=check_seeds)
    device = c.get(top, "device", "", TOP["device"], "auto", check=check_device)
    deterministic = c.get(top, "deterministic", "", TOP["deterministic"], True)
    output_dir = c.get(top, "output_dir", "", TOP["output_dir"], "runs", check=non_empty)
    log = check_loggers(c, top.get("log"))
    threads = c.get(top, "threads", "", TOP["threads"], None, check=check_threads)
    if c.problems or data_cfg is None or train is None:
        return None
    recipe = Recipe(name, description, source, data_cfg, model, train, evaluation, seeds, device, deterministic,
                    output_dir, overrides=overrides, log=log, threads=threads)
    recipe.resolved = plain_recipe(recipe)
    return recipe


def check_loggers(c: Checker, value: Any) -> list[ComponentConfig]:
    """``log``: experiment trackers, each a registered logger's name or ``{name: ..., **options}``."""
    if value is None:
        return []
    expected = "a list of logger names or {name: ..., options} mappings, e.g. [tensorboard] (imrec list logger)"
    if not isinstance(value, list):
        c.add("log", f"found {show(value)}", expected=expected)
        return []
    out: list[ComponentConfig] = []
    for i, raw in enumerate(value):
        cfg = check_component(c, {"name": raw} if isinstance(raw, str) else raw, f"log.{i}", "logger")
        if cfg is None:
            continue
        if any(x.name == cfg.name for x in out):
            c.add(f"log.{i}", f"logger {cfg.name!r} is listed twice")
            continue
        out.append(cfg)
    return out


def check_model(c: Checker, value: Any) -> dict[str, ComponentConfig | None]:
    out: dict[str, ComponentConfig | None] = {slot: None for slot in COMPONENT_SLOTS}
    m = c.mapping(value, "model", tuple(KEYS["model"]), required=REQUIRED["model"])
    if m is None:
        return out
    c.slots = [s for s in COMPONENT_SLOTS if m.get(s) is not None]
    for slot in COMPONENT_SLOTS:
        if m.get(slot) is not None:
            out[slot] = check_component(c, m[slot], f"model.{slot}", slot)
        elif slot in m and slot in REQUIRED["model"]:
            c.add(f"model.{slot}", "is null", expected=f"a {slot}: every model needs one")
    return out


def check_eval(c: Checker, value: Any) -> EvalConfig:
    e = c.mapping({} if value is None else value, "eval", tuple(EVAL))
    if e is None:
        return EvalConfig([])
    conditions: list[ComponentConfig] = []
    raw = e.get("conditions")
    note = ""
    if raw is None:
        raw, note = [copy.deepcopy(DEFAULT_EVAL_CONDITION)], " (this is the default condition; set eval.conditions)"
    if not isinstance(raw, list) or not raw:
        c.add("eval.conditions", f"found {show(raw)}", expected="a non-empty list of protocols")
    else:
        for i, item in enumerate(raw):
            cfg = check_component(c, item, f"eval.conditions.{i}", "protocol", note)
            if cfg is not None:
                conditions.append(cfg)
    metrics = c.get(e, "metrics", "eval", EVAL["metrics"], None)
    for i, name in enumerate(metrics or []):
        try:
            metrics[i] = c.registry.resolve("metric", name).name
        except UnknownComponentError as exc:
            c.problems.append(unknown_problem(c.file, f"eval.metrics.{i}", exc))
    recovery_metrics = c.get(e, "recovery_metrics", "eval", EVAL["recovery_metrics"], True)
    per_rate = c.get(e, "per_rate", "eval", EVAL["per_rate"], False)
    return EvalConfig(conditions, metrics, recovery_metrics, per_rate)

