"""Scoring a trained model on a split under each condition, and a run's summary over seeds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import Recipe
from .interfaces import Condition
from .model import IMModel
from .preparation import Prepared
from .progress import Reporter
from .runs import summarize
from .trainer import evaluate


def run_summary(results: dict[int, dict[str, dict[str, float]]], recipe: Recipe, run_dir: Path,
                conditions: Sequence[Condition]) -> dict[str, Any]:
    """``summary.json``: each condition's metrics over seeds (imrec.runs.summarize), with the recipe's name, the run
    directory and the conditions in the recipe's order."""
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

