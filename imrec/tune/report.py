"""What ``imrec tune`` leaves in its directory, regenerated from the study's storage after every invocation:

    trials.csv       one row per trial: number, state, VALID value, each parameter, epochs run per seed and phase
    best.yaml        the best trial as a recipe: ``extends:`` the tuned recipe + ``changes:`` (docs/recipes.md)
    importances.json each parameter's importance (Optuna's default evaluator), or why there is none
    summary.json     study, storage, objective, budget, trials per state, the best trial
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from ..runs import atomic_write_json, atomic_write_text
from .space import override
from .study import TuneSetup, objective_of


def _epochs_text(epochs: dict[str, dict[str, int]] | None) -> str:
    if not epochs:
        return ""
    return "; ".join(f"{seed}: " + " ".join(f"{ph} {n}" for ph, n in phases.items())
                     for seed, phases in epochs.items())


def trial_rows(study: Any, setup: TuneSetup) -> list[dict[str, Any]]:
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name,
                               "value": t.value if t.value is not None else "",
                               "retry_of": t.user_attrs.get("retry_of", "")}
        for p in setup.space.params:
            row[p.key] = t.params.get(p.key, "")
        row["epochs"] = _epochs_text(t.user_attrs.get("epochs"))
        row["run_dir"] = t.user_attrs.get("run_dir", "")
        row["note"] = t.user_attrs.get("error", "") or ("process died; retried" if t.user_attrs.get("killed") else "")
        rows.append(row)
    return rows


def rows_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def best_trial(study: Any) -> Any | None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def best_recipe_text(study: Any, setup: TuneSetup, recipe_name: str, where: Path) -> str | None:
    """The best trial as a recipe file to be written at ``where``: ``extends`` the tuned recipe (relative path)
    and ``changes`` = the search's fixed overrides + the trial's parameters."""
    import yaml

    best = best_trial(study)
    if best is None:
        return None
    metric, direction = objective_of(setup)
    parent = os.path.relpath(Path(setup.recipe_path).resolve(), Path(where).resolve().parent).replace(os.sep, "/")
    changes = [*setup.overrides, *(override(p.key, best.params[p.key]) for p in setup.space.params
                                   if p.key in best.params)]
    head = (f"# Best of {len(study.get_trials(deepcopy=False))} trials of study {study.study_name!r}: trial "
            f"{best.number}, VALID {metric} = {best.value:.6g} ({direction[:3]}; mean over seeds "
            f"{sorted(int(s) for s in best.user_attrs.get('per_seed', {}))}).\n"
            f"# Written by `imrec tune`; TEST was not evaluated. Run it: imrec run {where.name}\n")
    # ``description`` is not inherited through ``extends`` (docs/recipes.md): carry the tuned recipe's over.
    from ..config import load_recipe

    description = load_recipe(setup.recipe_path, list(setup.overrides)).description
    body = yaml.safe_dump({"extends": parent, "name": f"{recipe_name}_tuned", "description": description,
                           "changes": changes},
                          sort_keys=False, allow_unicode=True, width=120)
    return head + body


def importances(study: Any) -> dict[str, Any]:
    """``{"importances": {key: value}}`` (Optuna's default evaluator over finished trials), or ``{"reason": …}``."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {"importances": None, "reason": f"{len(complete)} complete trial(s); Optuna needs at least 2"}
    try:
        import optuna

        values = optuna.importance.get_param_importances(study)
    except Exception as exc:  # e.g. every trial has the same parameters, or a parameter was never varied
        return {"importances": None, "reason": f"Optuna could not compute them: {type(exc).__name__}: {exc}"}
    return {"importances": {k: float(v) for k, v in values.items()}, "evaluator": "optuna default",
            "trials": len(complete)}


def write_outputs(study: Any, setup: TuneSetup, recipe_name: str) -> dict[str, Any]:
    """Write trials.csv, best.yaml, importances.json and summary.json into the tune directory."""
    from collections import Counter

    directory = Path(setup.directory)
    rows = trial_rows(study, setup)
    atomic_write_text(directory / "trials.csv", rows_csv(rows))
    best_path = directory / "best.yaml"
    text = best_recipe_text(study, setup, recipe_name, best_path)
    if text is not None:
        atomic_write_text(best_path, text)
    imp = importances(study)
    atomic_write_json(directory / "importances.json", imp)
    metric, direction = objective_of(setup)
    best = best_trial(study)
    states = Counter(r["state"] for r in rows)
    ran = states["COMPLETE"] + states["PRUNED"] + sum(1 for t in study.get_trials(deepcopy=False)
                                                      if t.state.name == "FAIL" and "error" in t.user_attrs)
    summary = {
        "study": study.study_name, "storage": setup.storage, "recipe": str(setup.recipe_path),
        "overrides": list(setup.overrides), "objective": {"split": "valid", "metric": metric, "direction": direction},
        "budget": {"trials": setup.trials, "seed": setup.seed, "space": setup.space.describe()},
        "states": dict(states),
        # The search is over: its budget ran and nothing is running or queued (another worker may still be).
        "complete": ran >= setup.trials and not (states["RUNNING"] or states["WAITING"]),
        "best": None if best is None else {"trial": best.number, "value": best.value, "params": best.params,
                                           "overrides": [override(p.key, best.params[p.key])
                                                         for p in setup.space.params if p.key in best.params],
                                           "per_seed": best.user_attrs.get("per_seed"),
                                           "epochs": best.user_attrs.get("epochs"),
                                           "run_dir": best.user_attrs.get("run_dir"),
                                           "recipe": str(best_path)},
        "importances": imp.get("importances"),
    }
    atomic_write_json(directory / "summary.json", summary)
    return summary


def print_report(rows: list[dict[str, Any]], summary: dict[str, Any], setup: TuneSetup) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if Console().is_terminal else Console(width=200)
    obj = summary["objective"]
    table = Table(title=f"imrec tune {summary['study']} — VALID {obj['metric']} ({obj['direction']}), "
                        f"{len(rows)} trials")
    keys = [p.key for p in setup.space.params]
    for col in ("trial", "state", "value", *keys, "epochs", "note"):
        table.add_column(col.rsplit(".", 2)[-1] if col in keys else col, overflow="fold")
    for r in rows:
        value = f"{r['value']:.5g}" if isinstance(r["value"], float) else str(r["value"])
        cells = [f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        table.add_row(str(r["trial"]), r["state"], value, *cells, r["epochs"], r["note"])
    console.print(table)
    best = summary["best"]
    if best is not None:
        print(f"best: trial {best['trial']}, VALID {obj['metric']} {best['value']:.6g}; recipe {best['recipe']}")
    imp = summary["importances"]
    if imp:
        print("importances: " + ", ".join(f"{k} {v:.3f}" for k, v in imp.items()))
    print(json.dumps(summary["states"]))
