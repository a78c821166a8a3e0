"""Preparing a run: the dataset, the training and evaluation conditions, the metrics and the device, with every
check that needs only the dataset's spec (``spec_problems``: ``imrec validate``, ``run --dry-run``, the start of a
run) or its arrays (empty splits, a single class)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .config import ComponentConfig, Recipe, build_component
from .errors import DataError, ImrecError, Problem, RecipeError
from .interfaces import Condition, DatasetSpec, Split
from .model import build_model
from .plugins import get_registry

DEFAULT_METRICS = {"regression": "metrics.regression", "classification": "metrics.classification"}


@dataclass
class Prepared:
    """What every seed of a run shares: data, conditions, metrics, device."""

    spec: DatasetSpec
    splits: dict[str, Split]
    train_conditions: list[Condition]
    select_conditions: list[Condition]
    eval_conditions: list[Condition]
    metrics: list[Any]
    higher_is_better: dict[str, bool]
    device: torch.device


def pick_device(name: str) -> torch.device:
    """The torch device a recipe's ``device`` names (``auto``: CUDA when available); an error for a CUDA device this
    machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ImrecError(f"recipe asks for device {name!r} but CUDA is not available here; use device=auto or cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ImrecError(f"recipe asks for device {name!r} but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s) (cuda:0 … cuda:{torch.cuda.device_count() - 1}); use device=auto or one of those")
    return dev


def set_determinism(deterministic: bool) -> None:
    """torch's deterministic kernels on (the recipe's ``deterministic: true``) or off (cuDNN autotuning instead)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
        torch.use_deterministic_algorithms(False)


def _single_condition(recipe: Recipe, cfg: Any, names: Sequence[str], key: str) -> Condition:
    conds = build_component("protocol", cfg).conditions(list(names))
    if len(conds) != 1:
        raise RecipeError([Problem(str(recipe.source or "<recipe>"), key,
                                   f"a training protocol must give exactly one condition, this one gives {len(conds)}",
                                   expected="e.g. {name: random, rate: 0.5}")])
    return conds[0]


def build_dataset(recipe: Recipe) -> Any:
    """The recipe's dataset component (its ``spec`` is read without loading any array)."""
    return build_component("dataset", recipe.data)


def prepare(recipe: Recipe, load: bool = True) -> Prepared:
    """What every seed of a run of ``recipe`` shares; every problem against the dataset's spec raised together as a
    RecipeError. ``load=False``: the spec only, no splits (``run --dry-run``)."""
    dataset = build_dataset(recipe)
    spec: DatasetSpec = dataset.spec
    problems: list[Problem] = []
    train_conditions, eval_conditions, metrics, hib = _against_spec(recipe, spec, problems)
    if problems:
        raise RecipeError(problems)
    splits = dataset.load() if load else {}
    for part in ("train", "valid", "test") if load else ():
        if part not in splits:
            raise ImrecError(f"dataset {recipe.data.name!r} has no {part!r} split")
    if load:
        _check_usable(recipe, spec, splits)
    return Prepared(spec, splits, train_conditions, list(train_conditions), eval_conditions, metrics, hib,
                    pick_device(recipe.device))


def spec_problems(recipe: Recipe, spec: DatasetSpec) -> list[Problem]:
    """Every problem of ``recipe`` that needs only the dataset's ``spec`` (no arrays) — what ``prepare`` and
    building the model check at the start of a run, and ``imrec validate`` / ``run --dry-run`` before it:
    modality names in the protocols, rates reachable for K, one condition per training protocol, no condition
    twice, metrics and selection metrics against the task, and the model built for the spec (head vs task)."""
    problems: list[Problem] = []
    _against_spec(recipe, spec, problems)
    try:
        build_model(spec, recipe.model, str(recipe.source or "<recipe>"))
    except RecipeError as exc:
        problems += exc.problems
    except ImrecError as exc:
        problems.append(Problem(str(recipe.source or "<recipe>"), "model", str(exc)))
    return problems


def _against_spec(recipe: Recipe, spec: DatasetSpec, problems: list[Problem]
                  ) -> tuple[list[Condition], list[Condition], list[Any], dict[str, bool]]:
    """Conditions and metrics of ``recipe`` for ``spec``; each problem is appended to ``problems``."""
    file = str(recipe.source or "<recipe>")
    names = spec.names
    train_conditions: list[Condition] = []
    for phase in recipe.train.phases:
        key = f"train.phases.{phase.name}.protocol"
        try:
            train_conditions.append(_single_condition(recipe, phase.protocol, names, key))
        except RecipeError as exc:
            problems += exc.problems
        except ImrecError as exc:
            problems.append(Problem(file, key, str(exc)))
    eval_conditions: list[Condition] = []
    seen: set[str] = set()
    for i, cfg in enumerate(recipe.eval.conditions):
        try:
            conds = build_component("protocol", cfg).conditions(list(names))
        except ImrecError as exc:
            problems.append(Problem(file, f"eval.conditions.{i}", str(exc)))
            continue
        for cond in conds:
            if cond.name in seen:
                problems.append(Problem(file, f"eval.conditions.{i}", f"condition {cond.name!r} appears twice"))
            seen.add(cond.name)
            eval_conditions.append(cond)
    metric_names = recipe.eval.metrics or [DEFAULT_METRICS[spec.task.kind]]
    reg = get_registry()
    metrics, hib = [], {}
    for m in metric_names:
        entry = reg.resolve("metric", m)
        task = getattr(entry.factory, "task", None)
        if task is not None and task != spec.task.kind:
            problems.append(Problem(file, "eval.metrics", f"metric {m!r} is for {task} but dataset "
                                    f"{recipe.data.name!r} is {spec.task.kind}"))
            continue
        inst = entry.factory()
        metrics.append(inst)
        hib.update(getattr(inst, "higher_is_better", {}))
    hib["loss"] = False
    if recipe.eval.per_rate:
        try:
            _check_per_rate(recipe, train_conditions, eval_conditions)
        except RecipeError as exc:
            problems += exc.problems
    # Only when every metric declares its keys (else: unknown at this time).
    if len(metrics) == len(metric_names) and all(isinstance(getattr(m, "higher_is_better", None), Mapping)
                                                 for m in metrics):
        try:
            _check_selection(recipe, spec, hib)
        except RecipeError as exc:
            problems += exc.problems
    return train_conditions, eval_conditions, metrics, hib


RANDOM_PROTOCOL = "protocols.random"


def rate_of(cond: Condition) -> float | None:
    """The missing rate of a random-missing condition, None for any other condition."""
    d = describe_condition(cond)
    return float(d["rate"]) if isinstance(d, dict) and d.get("protocol") == RANDOM_PROTOCOL else None


def _check_per_rate(recipe: Recipe, train_conditions: Sequence[Condition], eval_conditions: Sequence[Condition]) -> None:
    source = str(recipe.source or "<recipe>")
    problems = []
    other = [c.name for c in eval_conditions if rate_of(c) is None]
    if other:
        problems.append(Problem(source, "eval.per_rate", f"trains one model per random missing rate, but "
                                f"conditions {other} have no rate", expected="eval.conditions of random rates only "
                                "(score fixed subsets with a single-model recipe: eval.per_rate: false)"))
    if not any((rate_of(c) or 0.0) > 0.0 for c in train_conditions):
        problems.append(Problem(source, "eval.per_rate", "no training phase draws random missingness "
                                "(protocol random with a rate > 0), so there is nothing to set to each rate"))
    if problems:
        raise RecipeError(problems)


def _check_selection(recipe: Recipe, spec: DatasetSpec, computed: dict[str, bool]) -> None:
    """Every phase selects on a metric the run computes on VALID for this task (``mae`` on a classification
    task would never improve: no checkpoint would be selected and the run would end with untrained weights)."""
    problems = []
    for phase in recipe.train.phases:
        if phase.select.metric not in computed:
            problems.append(Problem(
                str(recipe.source or "<recipe>"), f"train.phases.{phase.name}.select.metric",
                f"{phase.select.metric!r} is not computed for this {spec.task.kind} task (dataset "
                f"{recipe.data.name!r}, metrics {', '.join(recipe.eval.metrics or [DEFAULT_METRICS[spec.task.kind]])})",
                allowed=sorted(computed)))
    if problems:
        raise RecipeError(problems)


def per_rate_conditions(prepared: Prepared, rate: float) -> list[Condition]:
    """The training (and VALID selection) conditions of the model for ``rate``: every phase that draws random
    missingness at a rate > 0 draws it at ``rate``; the others (e.g. complete-data pre-training) are unchanged."""
    cfg = ComponentConfig(RANDOM_PROTOCOL, {"rate": float(rate)}, "eval.per_rate")
    at_rate = build_component("protocol", cfg).conditions(list(prepared.spec.names))[0]
    return [at_rate if (rate_of(c) or 0.0) > 0.0 else c for c in prepared.train_conditions]


def _check_usable(recipe: Recipe, spec: DatasetSpec, splits: dict[str, Split]) -> None:
    """Refuse data that would train or score nothing while looking like a normal run: an empty split, a split
    where no sample has any modality, a classification training split with a single class."""
    data = f"dataset {recipe.data.name!r}"
    for part in ("train", "valid", "test"):
        split = splits[part]
        if len(split) == 0:
            role = {"train": "to train on", "valid": "to select the model on", "test": "to report results on"}[part]
            raise DataError(f"{data}: the {part} split is empty (0 samples); it needs samples {role}. Check the "
                            f"data's {part} files or split definition")
        present = split.present
        if present is not None and not bool(np.asarray(present).any()):
            raise DataError(f"{data}: no sample of the {part} split has any modality available (its availability "
                            f"mask 'present' is all False): the model would see only zeros. Check the 'present' "
                            f"array of the data")
    if spec.task.kind == "classification":
        classes = np.unique(np.asarray(splits["train"].labels))
        if len(classes) < 2:
            raise DataError(f"{data}: every one of the {len(splits['train'])} training labels is class "
                            f"{classes[0] if len(classes) else '?'}; a classifier needs at least two classes in the "
                            f"train split. Check the labels (or use task: regression)")




def describe_condition(cond: Condition) -> Any:
    """What the condition says of itself (its ``describe()``, e.g. protocol and rate), else its name."""
    d = getattr(cond, "describe", None)
    return d() if callable(d) else {"name": cond.name}

