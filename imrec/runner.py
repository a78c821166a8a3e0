"""Run a validated recipe: data → model → phases per seed → TEST under every condition → run directory.

The parts a run is made of live beside it: :mod:`imrec.preparation` (dataset, conditions, metrics, device, the
checks against the dataset's spec), :mod:`imrec.scoring` (a model scored under each condition) and
:mod:`imrec.trained_runs` (a finished run read back and scored again). Their entry points are importable from
here too, where the CLI, ``imrec tune``, the benchmarks and the tests import them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch

from .config import Recipe, to_yaml
from .errors import ImrecError
from .model import IMModel, build_model
from .preparation import (
    DEFAULT_METRICS,
    RANDOM_PROTOCOL,
    Prepared,
    build_dataset,
    describe_condition,
    per_rate_conditions,
    pick_device,
    prepare,
    rate_of,
    set_determinism,
    spec_problems,
)
from .progress import Reporter
from .runs import (
    atomic_write_json,
    atomic_write_text,
    environment,
    new_run_dir,
    preprocessing_json,
    remove_stale_temporaries,
    run_lock,
    seed_dir,
)
from .scoring import run_summary, score
from .tracking import NO_LOGGERS, Loggers, build_loggers
from .trained_runs import EVAL_OVERRIDE_PREFIX, evaluate_run, final_model, resume_recipe
from .trainer import Trainer, plan_phase, seed_everything

# Callers import (and tests patch) these here: ``imrec tune`` reaches ``prepare`` through this module.
__all__ = [
    "DEFAULT_METRICS", "EVAL_OVERRIDE_PREFIX", "RANDOM_PROTOCOL", "Prepared", "build_dataset", "describe_condition",
    "describe_plan", "evaluate_run", "final_model", "per_rate_conditions", "pick_device", "prepare", "rate_of",
    "resume_recipe", "run_recipe", "run_seed", "score", "set_determinism", "spec_problems", "train_seed",
]


def describe_plan(recipe: Recipe, prepared: Prepared, model: IMModel) -> str:
    """A human-readable plan for ``imrec run --dry-run``: data, components, phases, steps, conditions."""
    from .display import show_condition

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
        env["conditions"] = {c.name: describe_condition(c) for c in prepared.eval_conditions}
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
        atomic_write_json(run_dir / "summary.json", run_summary(results, recipe, run_dir, prepared.eval_conditions))
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
                                               "protocols": {c.name: describe_condition(c) for c in prepared.eval_conditions}})
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
        rate = rate_of(cond)
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
                                     "protocols": {cond.name: describe_condition(cond)}})
            (rdir / "state.pt").unlink(missing_ok=True)
        dist.barrier()
    if dist.is_main:
        atomic_write_json(sdir / "test.json", {"seed": seed, "split": "test", "conditions": per_condition,
                                               "protocols": {c.name: describe_condition(c) for c in prepared.eval_conditions},
                                               "per_rate": True})
    dist.barrier()
    return per_condition
