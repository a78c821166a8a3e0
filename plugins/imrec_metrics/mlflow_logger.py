"""``log.mlflow``: an MLflow run per imrec run, through MLflow's client (``mlflow`` extra: mlflow-skinny).

* the parent run (named after the run directory): the resolved recipe as parameters (``train.phases.0.epochs``),
  the mean and std over seeds of every TEST metric (``test/<condition>/<metric>``, ``test_std/<condition>/<metric>``)
  from ``summary.json``, and the run directory as artifacts under ``run/`` (``state.pt`` and ``.lock`` left out);
* a nested run per seed (``seed-<seed>``): ``train/<loss>``, ``valid/<metric>`` (and ``lr/<optimiser>`` with a
  scheduler) of every ``metrics.jsonl`` line at the epoch's run-wide step, and the seed's TEST metrics
  (``test/<condition>/<metric>``).

Condition names are made MLflow-safe: ``random/mr=0.30`` → ``random/mr:0.30``. The tracking server is
``tracking_uri``, else MLflow's own choice (``MLFLOW_TRACKING_URI``, or its default); the experiment is
``experiment``, else the recipe's name. The run ids are kept in ``<run dir>/mlflow.json`` so ``imrec run
--resume`` continues the same MLflow runs (epochs computed again are logged again at their step).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

from imrec.errors import ImrecError

from .params import PARTS, flat_params, metric_key

INSTALL = "pip install 'imrec[mlflow]'"
IDS_FILE = "mlflow.json"
SKIP_ARTIFACTS = {".lock", "state.pt"}  # a lock of this very process; resume state is deleted when a seed ends
BATCH = 100  # MLflow takes at most 100 parameters and 1000 metrics per log_batch call


class MLflowLogger:
    """MLflow: the recipe as parameters, per-epoch losses and VALID metrics per seed, TEST metrics, artifacts."""

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None, artifacts: bool = True) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as exc:
            raise ImrecError(f"log: mlflow needs the MLflow client, which is not installed ({exc}); install it "
                             f"with `{INSTALL}` (mlflow-skinny), or remove mlflow from the recipe's log") from None
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifacts = artifacts
        self.run_dir: Path | None = None
        self.parent: str | None = None
        self.seed_runs: dict[int, str] = {}
        self.experiment_id: str | None = None

    # ------------------------------------------------------------------------------------------- run ids
    def _save_ids(self) -> None:
        from imrec.runs import atomic_write_json

        assert self.run_dir is not None
        atomic_write_json(self.run_dir / IDS_FILE, {
            "tracking_uri": self.client.tracking_uri, "experiment_id": self.experiment_id, "run_id": self.parent,
            "seeds": {str(s): r for s, r in self.seed_runs.items()}})

    def _load_ids(self) -> bool:
        """Take the runs of an earlier start of this run directory on the same server; False if there are none."""
        assert self.run_dir is not None
        path = self.run_dir / IDS_FILE
        if not path.exists():
            return False
        ids = json.loads(path.read_text())
        if ids.get("tracking_uri") != self.client.tracking_uri:
            return False
        self.experiment_id, self.parent = ids["experiment_id"], ids["run_id"]
        self.seed_runs = {int(s): r for s, r in ids.get("seeds", {}).items()}
        for run_id in [self.parent, *self.seed_runs.values()]:
            self.client.update_run(run_id, status="RUNNING")
        return True

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except Exception:  # another process created it in between
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    # ------------------------------------------------------------------------------------------- events
    def start(self, run_dir: Path, recipe: Mapping[str, Any], resumed: bool) -> None:
        from mlflow.entities import Param, RunTag

        self.run_dir = Path(run_dir)
        if resumed and self._load_ids():
            return
        self.experiment_id = self._experiment_id(self.experiment or str(recipe.get("name") or "imrec"))
        run = self.client.create_run(self.experiment_id, run_name=self.run_dir.name,
                                     tags={"imrec.run_dir": str(self.run_dir.resolve())})
        self.parent = run.info.run_id
        params = [Param(metric_key(k), str(v)) for k, v in flat_params(recipe).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.parent, params=params[i:i + BATCH])
        self.client.log_batch(self.parent, tags=[RunTag("imrec.recipe", str(recipe.get("name", "")))])
        self._save_ids()

    def _seed_run(self, seed: int) -> str:
        run_id = self.seed_runs.get(seed)
        if run_id is None:
            run = self.client.create_run(self.experiment_id, run_name=f"seed-{seed}",
                                         tags={"mlflow.parentRunId": self.parent, "imrec.seed": str(seed)})
            run_id = self.seed_runs[seed] = run.info.run_id
            self.client.log_param(run_id, "seed", seed)
            self._save_ids()
        return run_id

    def _log_metrics(self, run_id: str, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for i in range(0, len(metrics), 10 * BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + 10 * BATCH])

    def log_epoch(self, seed: int, step: int, record: Mapping[str, Any]) -> None:
        values = {metric_key(part, name): v for part in PARTS for name, v in (record.get(part) or {}).items()}
        self._log_metrics(self._seed_run(seed), values, step)

    def log_test(self, seed: int, conditions: Mapping[str, Mapping[str, float]]) -> None:
        values = {metric_key("test", c, m): v for c, ms in conditions.items() for m, v in ms.items()}
        self._log_metrics(self._seed_run(seed), values, 0)

    def finish(self, summary: Mapping[str, Any] | None, status: str) -> None:
        if self.parent is None:
            return
        if summary is not None:
            values: dict[str, float] = {}
            for cond, metrics in summary.get("conditions", {}).items():
                for name, stats in metrics.items():
                    if stats.get("mean") is not None:
                        values[metric_key("test", cond, name)] = stats["mean"]
                    if stats.get("std") is not None and math.isfinite(stats["std"]):
                        values[metric_key("test_std", cond, name)] = stats["std"]
            self._log_metrics(self.parent, values, 0)
        if self.artifacts and self.run_dir is not None:
            for path in sorted(self.run_dir.rglob("*")):
                if path.is_file() and path.name not in SKIP_ARTIFACTS and not path.name.endswith(".tmp"):
                    rel = path.relative_to(self.run_dir).parent
                    self.client.log_artifact(self.parent, str(path), "/".join(("run", *rel.parts)))
        for run_id in [*self.seed_runs.values(), self.parent]:
            self.client.set_terminated(run_id, status=status)
