"""Run a validated recipe: data → model → phases per seed → TEST under every condition → run directory."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .config import ComponentConfig, Recipe, build_component, load_recipe, to_yaml
from .errors import DataError, ImrecError, Problem, RecipeError
from .interfaces import Condition, DatasetSpec, Split
from .model import IMModel, build_model
from .plugins import get_registry
from .progress import Reporter
from .runs import (
    atomic_write_json,
    atomic_write_text,
    environment,
    new_run_dir,
    preprocessing_json,
    remove_stale_temporaries,
    run_lock,
    safe_torch_load,
    seed_dir,
    summarize,
)
from .tracking import NO_LOGGERS, Loggers, build_loggers
from .trainer import Trainer, evaluate, seed_everything

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
    return build_component("dataset", recipe.data)


def prepare(recipe: Recipe, load: bool = True) -> Prepared:
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


def _rate_of(cond: Condition) -> float | None:
    """The missing rate of a random-missing condition, None for any other condition."""
    d = _describe(cond)
    return float(d["rate"]) if isinstance(d, dict) and d.get("protocol") == RANDOM_PROTOCOL else None


def _check_per_rate(recipe: Recipe, train_conditions: Sequence[Condition], eval_conditions: Sequence[Condition]) -> None:
    source = str(recipe.source or "<recipe>")
    problems = []
    other = [c.name for c in eval_conditions if _rate_of(c) is None]
    if other:
        problems.append(Problem(source, "eval.per_rate", f"trains one model per random missing rate, but "
                                f"conditions {other} have no rate", expected="eval.conditions of random rates only "
                                "(score fixed subsets with a single-model recipe: eval.per_rate: false)"))
    if not any((_rate_of(c) or 0.0) > 0.0 for c in train_conditions):
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
    return [at_rate if (_rate_of(c) or 0.0) > 0.0 else c for c in prepared.train_conditions]


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


def describe_plan(recipe: Recipe, prepared: Prepared, model: IMModel) -> str:
    """A human-readable plan for ``imrec run --dry-run``: data, components, phases, steps, conditions."""
    from .display import show_condition
    from .trainer import plan_phase

    lines = [f"recipe {recipe.name}: {recipe.description or ''}".rstrip(),
             f"data {recipe.data.name}: {', '.join(f'{m.name} {m.dim}d' + (f'×{m.length}' if m.length else '') for m in prepared.spec.modalities)}; task {prepared.spec.task.kind}",
             f"device {prepared.device}; seeds {recipe.seeds}"]
    for slot in model.slots():
        comp = getattr(model, slot)
        n = sum(p.numel() for p in comp.parameters())
        lines.append(f"  {slot:<10} {recipe.model[slot].name:<28} {n:>10,} parameters")
    for phase in recipe.train.phases:
        plan = plan_phase(model, phase, str(recipe.source or "<recipe>"))
        budget = f"{phase.epochs} epochs" + (f" or more, at least {phase.min_steps} optimiser steps" if phase.min_steps else "")
        lines.append(f"phase {phase.name}: {budget}, protocol {show_condition(prepared.train_conditions[recipe.train.phases.index(phase)].name)}, "
                     f"early stop {phase.early_stop}, select {phase.select.metric}, frozen {phase.freeze or '-'}, "
                     f"bypassed {phase.bypass or '-'}")
        for s in plan.steps:
            n = sum(p.numel() for p in s.params)
            lines.append(f"  step {s.name}: {s.losses} → optimiser {s.optimizer} ({n:,} parameters), when {s.when}")
    lines.append("evaluation conditions: " + ", ".join(show_condition(c.name) for c in prepared.eval_conditions))
    return "\n".join(lines)


def run_recipe(
    recipe: Recipe,
    run_dir: Path | None = None,
    reporter: Reporter | None = None,
    dist: Any = None,
) -> Path:
    """Train and evaluate every seed of ``recipe``; ``run_dir`` given = resume that run. Returns the run dir.

    A seed whose ``test.json`` exists is done and is not recomputed; a seed with a ``state.pt`` continues from
    its last finished epoch.
    """
    from .distributed import Single

    dist = dist or Single()
    reporter = reporter or Reporter(enabled=dist.is_main)
    # Built first: a tracker whose extra is not installed stops the run before any data is read.
    loggers = build_loggers(recipe, enabled=dist.is_main)
    resumed = run_dir is not None
    set_determinism(recipe.deterministic)
    prepared = prepare(recipe)
    device = dist.device(prepared.device)
    if run_dir is None:
        run_dir = dist.broadcast_path(new_run_dir(recipe.output_dir, recipe.name) if dist.is_main else None)
        if dist.is_main:
            atomic_write_text(run_dir / "recipe.yaml", to_yaml(recipe))
            atomic_write_json(run_dir / "overrides.json", list(recipe.overrides))
    run_dir = Path(run_dir)
    # One process (rank 0 of a distributed run) holds the directory while it runs: a second runner of the same
    # directory is refused instead of interleaving its epochs into the same files.
    with run_lock(run_dir) if dist.is_main else contextlib.nullcontext():
        if dist.is_main:
            remove_stale_temporaries(run_dir)  # left by a killed write; nobody else writes here while we hold it
        loggers.start(run_dir, recipe.resolved, resumed)
        try:
            _run_in(recipe, run_dir, prepared, device, reporter, dist, loggers)
        except BaseException as exc:  # Ctrl-C included: the CLI tells the user how to continue
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                loggers.finish(None, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            # (read by imrec.cli.main, which prints it after the error)
            exc.imrec_resume_command = f"imrec run --resume {run_dir}"  # type: ignore[attr-defined]
            raise
        if dist.is_main:
            loggers.finish(json.loads((run_dir / "summary.json").read_text()), "FINISHED")
        return run_dir


def _run_in(recipe: Recipe, run_dir: Path, prepared: Prepared, device: torch.device, reporter: Reporter,
            dist: Any, loggers: Loggers = NO_LOGGERS) -> Path:
    if dist.is_main:
        env = environment(device, recipe.seeds, recipe.deterministic)
        env["world_size"] = dist.world
        env["conditions"] = {c.name: _describe(c) for c in prepared.eval_conditions}
        atomic_write_json(run_dir / "environment.json", env)
        atomic_write_json(run_dir / "preprocessing.json", preprocessing_json(prepared.splits))

    results: dict[int, dict[str, dict[str, float]]] = {}
    with reporter:
        for seed in recipe.seeds:
            sdir = seed_dir(run_dir, seed)
            test_path = sdir / "test.json"
            if test_path.exists():
                results[seed] = _finished_seed(test_path, run_dir, seed)
                reporter.message(f"seed {seed}: already finished, not recomputed")
                continue
            reporter.prefix = f"[seed {seed}] " if len(recipe.seeds) > 1 else ""
            results[seed] = run_seed(recipe, prepared, seed, sdir, device, reporter, dist, loggers)
    if dist.is_main:
        atomic_write_json(run_dir / "summary.json", _summary(results, recipe, run_dir, prepared.eval_conditions))
    dist.barrier()
    return run_dir


def _finished_seed(test_path: Path, run_dir: Path, seed: int) -> dict[str, dict[str, float]]:
    """The TEST results of a finished seed; a damaged ``test.json`` is an error saying how to recompute it."""
    fix = f"delete {test_path.parent} to train and evaluate seed {seed} again, then `imrec run --resume {run_dir}`"
    try:
        data = json.loads(test_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ImrecError(f"{test_path}: not readable JSON ({str(exc)[:200]}); {fix}") from None
    conditions = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(conditions, dict) or not all(isinstance(v, dict) for v in conditions.values()):
        raise ImrecError(f"{test_path}: holds no TEST results ('conditions', a mapping of condition to metrics); "
                         f"{fix}")
    return conditions


def _summary(results: dict[int, dict[str, dict[str, float]]], recipe: Recipe, run_dir: Path,
             conditions: Sequence[Condition]) -> dict[str, Any]:
    summary = summarize(results)
    summary["recipe"] = recipe.name
    summary["run_dir"] = str(run_dir)
    summary["conditions_order"] = [c.name for c in conditions]
    return summary


def score(model: IMModel, recipe: Recipe, prepared: Prepared, split: str, conditions: Sequence[Condition],
          seed: int, device: torch.device, reporter: Reporter | None = None) -> dict[str, dict[str, float]]:
    """Metrics of ``model`` on ``split`` under each condition, evaluated as a run evaluates TEST; ``reporter``
    hears of each condition as it is done."""
    out: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    for i, cond in enumerate(conditions):
        t0 = time.perf_counter()
        out[cond.name] = evaluate(model, prepared.splits[split], cond, seed, recipe.train.eval_batch_size,
                                  prepared.metrics, device, recovery=recipe.eval.recovery_metrics,
                                  bypass=recipe.train.phases[-1].bypass).metrics
        if reporter is not None:
            now = time.perf_counter()
            reporter.evaluated(split, i + 1, len(conditions), cond.name, now - t0, now - start)
    return out


def _describe(cond: Condition) -> Any:
    d = getattr(cond, "describe", None)
    return d() if callable(d) else {"name": cond.name}


def train_seed(recipe: Recipe, prepared: Prepared, seed: int, sdir: Path, device: torch.device, reporter: Reporter,
               dist: Any, loggers: Loggers = NO_LOGGERS, on_epoch: Any = None) -> IMModel:
    """Train one seed through every phase (resuming from ``sdir/state.pt``), selecting on VALID only; returns the
    model with the last phase's selected weights. TEST is not touched: ``run_seed`` scores it, ``imrec tune``
    never does. ``on_epoch`` is the trainer's per-epoch callback (``Trainer``)."""
    seed_everything(seed)
    model = build_model(prepared.spec, recipe.model, str(recipe.source or "<recipe>")).to(device)
    dist.broadcast_module(model)
    trainer = Trainer(recipe, model, prepared.splits, prepared.train_conditions, prepared.select_conditions,
                      prepared.metrics, prepared.higher_is_better, seed, device, sdir, reporter,
                      dist=dist, loggers=loggers, on_epoch=on_epoch)
    trainer.fit()
    return model


def run_seed(recipe: Recipe, prepared: Prepared, seed: int, sdir: Path, device: torch.device, reporter: Reporter,
             dist: Any, loggers: Loggers = NO_LOGGERS) -> dict[str, dict[str, float]]:
    if recipe.eval.per_rate:
        # One model per rate, each with epochs of its own: trackers get the seed's TEST metrics only.
        per_condition = _run_seed_per_rate(recipe, prepared, seed, sdir, device, reporter, dist)
        if dist.is_main:
            loggers.test(seed, per_condition)
        return per_condition
    model = train_seed(recipe, prepared, seed, sdir, device, reporter, dist, loggers)
    # TEST, once, with the selected checkpoint of this run (already loaded at the end of the last phase).
    per_condition = score(model, recipe, prepared, "test", prepared.eval_conditions, seed, device, reporter)
    if dist.is_main:
        atomic_write_json(sdir / "test.json", {"seed": seed, "split": "test", "conditions": per_condition,
                                               "protocols": {c.name: _describe(c) for c in prepared.eval_conditions}})
        (sdir / "state.pt").unlink(missing_ok=True)
        loggers.test(seed, per_condition)
    dist.barrier()
    return per_condition


def _run_seed_per_rate(recipe: Recipe, prepared: Prepared, seed: int, sdir: Path, device: torch.device,
                       reporter: Reporter, dist: Any) -> dict[str, dict[str, float]]:
    """The reference's protocol: for each evaluation rate, a model trained (and selected on VALID) at that rate
    in ``seeds/<seed>/rate-<r>/`` — a run directory's seed layout of its own, resumable — scored on TEST at that
    rate only. Each model starts from the same seed, so the rates differ only in their missingness."""
    per_condition: dict[str, dict[str, float]] = {}
    for cond in prepared.eval_conditions:
        rate = _rate_of(cond)
        rdir = sdir / f"rate-{cond.name.split('=', 1)[-1]}"
        done = rdir / "test.json"
        if done.exists():
            finished = _finished_seed(done, sdir.parent.parent, seed)
            if cond.name not in finished:
                raise ImrecError(f"{done}: holds no TEST results for {cond.name!r}; delete {rdir} to train and "
                                 f"evaluate that model again, then `imrec run --resume {sdir.parent.parent}`")
            per_condition[cond.name] = finished[cond.name]
            continue
        if dist.is_main:
            rdir.mkdir(parents=True, exist_ok=True)
        dist.barrier()
        conds = per_rate_conditions(prepared, rate)
        seed_everything(seed)
        model = build_model(prepared.spec, recipe.model, str(recipe.source or "<recipe>")).to(device)
        dist.broadcast_module(model)
        from .display import show_condition

        reporter.message(f"seed {seed}: the model for {show_condition(cond.name)}")
        Trainer(recipe, model, prepared.splits, conds, conds, prepared.metrics, prepared.higher_is_better, seed,
                device, rdir, reporter, dist=dist).fit()
        per_condition[cond.name] = score(model, recipe, prepared, "test", [cond], seed, device)[cond.name]
        if dist.is_main:
            atomic_write_json(done, {"seed": seed, "split": "test", "conditions": {cond.name: per_condition[cond.name]},
                                     "protocols": {cond.name: _describe(cond)}})
            (rdir / "state.pt").unlink(missing_ok=True)
        dist.barrier()
    if dist.is_main:
        atomic_write_json(sdir / "test.json", {"seed": seed, "split": "test", "conditions": per_condition,
                                               "protocols": {c.name: _describe(c) for c in prepared.eval_conditions},
                                               "per_rate": True})
    dist.barrier()
    return per_condition


def evaluate_run(run_dir: Path, split: str = "valid", rates: Sequence[float] | None = None,
                 device: str | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Score the trained model of every seed of a finished run on ``split``, without training or touching TEST.

    The weights are those TEST was scored with (``phase-<last phase>.pt``). Conditions: the recipe's evaluation
    conditions, or random missing at ``rates``. Masks and noise draws are seeded exactly as ``evaluate`` does
    for TEST. ``overrides`` (``model.…=value`` only) change inference settings of the trained model without
    retraining, e.g. ``model.recoverer.sample_steps=20``; one that changes the weights' shapes is refused.
    Returns ``{"split", "overrides", "per_seed": {seed: {condition: metrics}}, "summary"}``; the run directory
    is not modified. This is how a recipe is tuned: compare variants on VALID, then run TEST once.
    """
    run_dir = Path(run_dir)
    recipe = resume_recipe(run_dir, overrides)
    if recipe.eval.per_rate:
        raise ImrecError(f"{run_dir}: a per-rate run (eval.per_rate) has one model per missing rate, in "
                         f"seeds/<seed>/rate-<r>/; imrec eval scores single-model runs")
    set_determinism(recipe.deterministic)  # the same kernels as the run's own TEST evaluation
    prepared = prepare(recipe)
    if split not in prepared.splits:
        raise ImrecError(f"split {split!r} is not one of {sorted(prepared.splits)}")
    if rates is None:
        conditions = prepared.eval_conditions
    else:
        bad = [r for r in rates if not 0.0 <= float(r) < 1.0]
        if bad:
            raise ImrecError(f"--rates must be missing rates in [0, 1), got {bad}")
        cfg = ComponentConfig("protocols.random", {"rates": [float(r) for r in rates]}, "--rates")
        conditions = build_component("protocol", cfg).conditions(list(prepared.spec.names))
    dev = pick_device(device or recipe.device)
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    for seed in recipe.seeds:
        model = final_model(run_dir, recipe, prepared, seed, dev)
        per_seed[seed] = score(model, recipe, prepared, split, conditions, seed, dev)
    return {"split": split, "overrides": list(overrides), "per_seed": per_seed,
            "summary": _summary(per_seed, recipe, run_dir, conditions)}


def final_model(run_dir: Path, recipe: Recipe, prepared: Prepared, seed: int,
                device: torch.device | str = "cpu") -> IMModel:
    """The model one seed of a run ended with (``phase-<last phase>.pt``, the weights TEST was scored with), in
    eval mode on ``device``; a clear error for a seed the run does not have or has not finished."""
    if seed not in recipe.seeds:
        raise ImrecError(f"{run_dir}: seed {seed} is not one of the run's seeds {list(recipe.seeds)}")
    path = seed_dir(run_dir, seed) / f"phase-{recipe.train.phases[-1].name}.pt"
    if not path.exists():
        raise ImrecError(f"{run_dir}: seed {seed} has not finished training (no {path.name}); "
                         f"finish it with `imrec run --resume {run_dir}`")
    model = build_model(prepared.spec, recipe.model, str(recipe.source or "<recipe>")).to(device)
    ckpt = safe_torch_load(path, map_location=device, required=("model",),
                           fix=f"train seed {seed} again: delete {path.parent} and run `imrec run --resume {run_dir}`")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:  # the recipe (or an eval override) builds another architecture than was trained
        first = str(exc).strip().splitlines()
        raise ImrecError(f"{path}: the saved weights do not fit the model the recipe builds "
                         f"({first[1].strip() if len(first) > 1 else first[0]}); an override that changes "
                         f"widths, depths or components cannot be applied to a trained run") from None
    return model.eval()


EVAL_OVERRIDE_PREFIX = "model."


def resume_recipe(run_dir: Path, overrides: Sequence[str] = ()) -> Recipe:
    """The recipe a run directory was started with (its resolved ``recipe.yaml``), with ``overrides`` applied:
    ``model.…`` keys only, since data, seeds and training are what the run was, and scoring it under others
    would report numbers of an experiment that did not happen."""
    run_dir = Path(run_dir)
    path = run_dir / "recipe.yaml"
    if not path.exists():
        raise ImrecError(f"{run_dir} is not an imrec run directory (no recipe.yaml); pass the folder `imrec run` printed")
    bad = [o for o in overrides if not (o.startswith(EVAL_OVERRIDE_PREFIX) and "=" in o)]
    if bad:
        raise ImrecError(f"{run_dir}: a trained run takes only model settings as overrides, written "
                         f"`{EVAL_OVERRIDE_PREFIX}<key>=<value>` (e.g. model.recoverer.sample_steps=20); got {bad}")
    recipe = load_recipe(path, overrides)
    try:
        recipe.overrides = json.loads((run_dir / "overrides.json").read_text())
    except (OSError, ValueError):
        pass
    return recipe
