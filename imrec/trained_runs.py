"""A finished run directory read back: its recipe (with inference overrides), each seed's final model, and its
models scored again on any split without training or touching the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import ComponentConfig, Recipe, build_component, load_recipe
from .errors import ImrecError
from .model import IMModel, build_model
from .preparation import Prepared, pick_device, prepare, set_determinism
from .runs import safe_torch_load, seed_dir
from .scoring import run_summary, score


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
            "summary": run_summary(per_seed, recipe, run_dir, conditions)}


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
