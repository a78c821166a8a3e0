"""The Python API: ``imrec.run`` (a recipe → a finished run and its numbers) and ``imrec.load`` (a run → a
predictor for new data, :mod:`imrec.predict`). Documented, with a session run by a test, in docs/api.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import Recipe, load_recipe, recipe_from_dict
from .predict import Predictor, load


@dataclass
class RunResult:
    """A finished run: its directory, TEST metrics per seed (``per_seed[seed][condition][metric]``, the seeds'
    ``test.json``) and their ``summary`` (``summary.json``: mean, std, n over seeds) — the numbers
    ``imrec run`` prints."""

    run_dir: Path
    per_seed: dict[int, dict[str, dict[str, float]]]
    summary: dict[str, Any]

    def mean(self, condition: str, metric: str) -> float | None:
        """The mean over seeds of ``metric`` under ``condition`` (e.g. ``"random/mr=0.00"``, ``"mae"``)."""
        try:
            return self.summary["conditions"][condition][metric]["mean"]
        except KeyError:
            conds = self.summary["conditions"]
            raise KeyError(f"no {metric!r} under condition {condition!r}; conditions: {', '.join(conds)}; metrics: "
                           f"{', '.join(next(iter(conds.values()), {}))}") from None

    def load(self, seed: int | None = None, device: str = "auto") -> Predictor:
        """The predictor of this run (:func:`imrec.load`)."""
        return load(self.run_dir, seed=seed, device=device)


def read_run(run_dir: str | Path) -> RunResult:
    """The results of a finished run directory."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    per_seed = {int(s): json.loads((run_dir / "seeds" / str(s) / "test.json").read_text(encoding="utf-8"))["conditions"]
                for s in summary["seeds"]}
    return RunResult(run_dir, per_seed, summary)


def run(recipe: str | Path | Mapping[str, Any] | Recipe | None = None, overrides: Sequence[str] = (),
        progress: bool = False, resume: str | Path | None = None, threads: int | None = None) -> RunResult:
    """Train and evaluate ``recipe`` (a YAML path, a dict, or a loaded :class:`~imrec.config.Recipe`) with
    command-line style ``overrides`` (``"train.phases.recover.epochs=2"``), exactly as ``imrec run`` does;
    ``resume`` continues an interrupted run directory instead. ``progress`` shows the trainer's progress on
    stderr. CPU threads are chosen as ``imrec run`` chooses them (``threads`` as ``--threads``, then
    ``$IMREC_THREADS``, the recipe's ``threads``, ``$OMP_NUM_THREADS``, the default), recorded in the run's
    environment.json, and torch's previous count is restored on return. Returns the run's directory and metrics."""
    from .progress import Reporter
    from .runner import resume_recipe, run_recipe
    from .threads import resolve_threads, using_threads

    if resume is not None:
        if overrides:
            raise ValueError("resume continues a run exactly as it started: overrides are not allowed")
        loaded, run_dir = resume_recipe(Path(resume)), Path(resume)
    elif recipe is None:
        raise ValueError("imrec.run needs a recipe (a YAML path, a dict or a Recipe), or resume=RUN_DIR")
    else:
        run_dir = None
        if isinstance(recipe, Recipe):
            loaded = recipe_from_dict(recipe.resolved, str(recipe.source or "<recipe>"), overrides) if overrides \
                else recipe
        elif isinstance(recipe, Mapping):
            loaded = recipe_from_dict(dict(recipe), "<dict>", overrides)
        else:
            loaded = load_recipe(recipe, overrides)
    with using_threads(resolve_threads(threads, loaded.threads)):
        out = run_recipe(loaded, run_dir, Reporter(enabled=progress))
    return read_run(out)
