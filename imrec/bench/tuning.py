"""Tuning budgets of bench boards: every method gets the same number of Optuna trials on VALID over its own
search space (``<recipe stem>.space.yaml`` beside its recipe), under the board's overrides, before its seeds run.

Each method's study lives in ``<work_dir>/<method>/tune/`` (SQLite there, or the definition's ``tune.storage``
URL, study ``<board>.<method>``) and is resumable like ``imrec tune``; its best trial's parameters become overrides
of the method's cells, and every record of those cells names them (``config``) with the budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ImrecError
from .definition import Definition, Method
from .settings import space_path


def tune_dir(defn: Definition, method: Method, work_dir: Path | None = None) -> Path:
    return Path(work_dir or defn.work_dir) / method.name / "tune"


def tune_setup(defn: Definition, method: Method, work_dir: Path | None = None, threads: int = 1) -> Any:
    """The ``imrec tune`` search of one method under the board's budget."""
    from ..tune.space import load_space
    from ..tune.study import TuneSetup, default_storage

    if defn.tune is None:
        raise ImrecError(f"board {defn.board!r} states no tuning budget (tune:)")
    overrides = [*defn.overrides, *method.overrides, f"seeds={json.dumps(list(defn.tune.seeds))}"]
    if defn.arithmetic is not None:
        overrides.append(f"deterministic={json.dumps(defn.arithmetic.deterministic)}")
        threads = defn.arithmetic.threads
    directory = tune_dir(defn, method, work_dir).resolve()
    return TuneSetup(recipe_path=method.recipe.resolve(), overrides=tuple(overrides),
                     space=load_space(space_path(method)), directory=directory,
                     storage=defn.tune.storage or default_storage(directory),
                     study_name=f"{defn.board}.{method.name}", trials=defn.tune.trials, seed=defn.tune.sampler_seed,
                     threads=threads)


def tune_methods(defn: Definition, methods: Sequence[Method], jobs: int = 1, work_dir: Path | None = None,
                 threads: int = 1, log: Callable[[str], None] | None = None) -> None:
    """Run (or resume, or find finished) the study of each method; write its reports."""
    from ..config import load_recipe
    from ..tune.report import write_outputs
    from ..tune.study import run_study

    log = log or (lambda line: print(line, flush=True))
    for m in methods:
        setup = tune_setup(defn, m, work_dir, threads)
        study = run_study(setup, jobs=jobs)
        summary = write_outputs(study, setup, load_recipe(m.recipe).name)
        best = summary["best"]
        log(f"tune {defn.board}/{m.name}: {summary['states']}; best "
            + (f"trial {best['trial']} VALID {summary['objective']['metric']} {best['value']:.6g}: "
               f"{' '.join(best['overrides'])}" if best else "none"))


def _summary(defn: Definition, method: Method, work_dir: Path | None) -> dict[str, Any] | None:
    path = tune_dir(defn, method, work_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if summary.get("complete") and summary.get("best") else None


def chosen(defn: Definition, method: Method, work_dir: Path | None = None) -> tuple[str, ...] | None:
    """The overrides the method's finished study chose, or None while its tuning is not finished."""
    summary = _summary(defn, method, work_dir)
    return None if summary is None else tuple(summary["best"]["overrides"])


def record_config(defn: Definition, method: Method, work_dir: Path | None = None) -> dict[str, Any]:
    """What each record of a tuned board says about its row's configuration and the budget."""
    from .records import shown_path

    summary = _summary(defn, method, work_dir)
    if summary is None:
        raise ImrecError(f"{defn.board}/{method.name}: its tuning has not finished (no complete "
                         f"{tune_dir(defn, method, work_dir) / 'summary.json'}); run `imrec bench run {defn.source}`")
    best = summary["best"]
    return {"tuned": list(best["overrides"]), "trial": best["trial"],
            "valid": {summary["objective"]["metric"]: best["value"]},
            "budget": {**defn.tune.describe(), "space": shown_path(space_path(method), defn.base)}}
