"""``imrec tune``: an Optuna study over a recipe's keys, every trial trained and selected on VALID only.

A trial is the recipe + the search's fixed overrides + one sampled value per space key, trained on every seed of
the recipe through :func:`imrec.runner.train_seed` (which never touches TEST). Its value is the mean over seeds
of the last phase's selected VALID metric (``train.select`` of that phase, read back from the seed's
``metrics.jsonl``). The trainer's per-epoch callback reports the running best VALID value of every phase that
selects on the same metric to the pruner, so a trial far behind the others at the same (seed, phase, epoch)
stops early (``PRUNED``).

Storage is any RDB URL Optuna accepts, by default ``sqlite:///<tune dir>/study.db``. Trials are resumable:

* a trial whose process died (same host, pid gone) is marked ``FAIL`` when the next worker starts and its
  parameters are queued again; the new trial continues in the dead trial's run directory from its last saved
  epoch (``state.pt``), so no finished epoch is lost and no finished trial is run again;
* a trial of a worker on another machine that stopped sending heartbeats for ``GRACE_SECONDS`` is failed and
  queued again the same way by Optuna's heartbeat mechanism.

The budget ``--trials N`` counts trials that ran (complete, pruned, failed with an error of their own) plus
those running or queued; workers stop once it is reached (concurrent workers may overshoot by up to J-1).
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ImrecError
from .space import Space, override

# Steps reported to the pruner are (seed, phase, epoch) packed into one integer, comparable across trials.
SEED_STRIDE = 10_000_000
PHASE_STRIDE = 100_000
HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


@dataclass(frozen=True)
class TuneSetup:
    """Everything a worker needs to join a study (picklable: workers are spawned processes)."""

    recipe_path: Path
    overrides: tuple[str, ...]
    space: Space
    directory: Path
    storage: str
    study_name: str
    trials: int
    seed: int
    threads: int = 1


def default_storage(directory: Path) -> str:
    return f"sqlite:///{Path(directory).resolve() / 'study.db'}"


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImrecError("imrec tune needs Optuna: pip install -e '.[tune]' (or pip install 'optuna>=3.5')") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def objective_of(setup: TuneSetup) -> tuple[str, str]:
    """(metric, "minimize"|"maximize"): the last phase's VALID selection metric and its direction."""
    from ..config import load_recipe
    from ..runner import prepare

    recipe = load_recipe(setup.recipe_path, setup.overrides)
    if recipe.eval.per_rate:
        raise ImrecError(f"{setup.recipe_path}: eval.per_rate trains one model per missing rate; a tuning trial "
                         f"scores one model per seed on VALID. Tune with the override eval.per_rate=false, then "
                         f"run the chosen configuration per rate")
    prepared = prepare(recipe, load=False)
    last = recipe.train.phases[-1]
    metric = last.select.metric
    mode = last.select.mode or ("max" if prepared.higher_is_better.get(metric, False) else "min")
    return metric, "maximize" if mode == "max" else "minimize"


def _identity(setup: TuneSetup) -> dict[str, Any]:
    """What makes two searches the same: the resolved recipe (not its path, so machines with checkouts in other
    folders join one study), the fixed overrides and the space."""
    import hashlib

    from ..config import load_recipe

    resolved = dict(load_recipe(setup.recipe_path, setup.overrides).resolved)
    resolved.pop("output_dir", None)
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()
    return {"recipe": digest, "overrides": list(setup.overrides), "space": setup.space.describe()}


def open_study(setup: TuneSetup) -> Any:
    """Create the study, or load it and check it is the same search (recipe, overrides, space)."""
    import warnings

    optuna = _optuna()
    from optuna.storages import RDBStorage

    metric, direction = objective_of(setup)
    Path(setup.directory).mkdir(parents=True, exist_ok=True)
    retry, argument = _retry_callback()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are marked experimental in every Optuna we support
            storage = RDBStorage(setup.storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                 **{argument: retry(max_retry=None)})
    except Exception as exc:  # a malformed URL, a missing driver, an unreachable server
        raise ImrecError(f"--storage {setup.storage!r}: Optuna cannot open it ({type(exc).__name__}: {exc}); "
                         f"give an RDB URL such as sqlite:///path/study.db or "
                         f"postgresql://user:password@host/db") from None
    p = setup.space.pruner
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=p.startup_trials, n_warmup_steps=p.warmup_epochs)
              if p.name == "median" else optuna.pruners.NopPruner())
    # The sampler is set per worker (``work``): its seed depends on the worker and on the trials already there.
    study = optuna.create_study(storage=storage, study_name=setup.study_name, direction=direction,
                                pruner=pruner, load_if_exists=True)
    ident = {**_identity(setup), "metric": metric}
    stored = study.user_attrs.get("imrec")
    if stored is None:
        study.set_user_attr("imrec", ident)
    elif stored != ident:
        diff = [k for k in ident if stored.get(k) != ident[k]]
        raise ImrecError(f"study {setup.study_name!r} in {setup.storage} is another search (its "
                         f"{', '.join('resolved recipe' if k == 'recipe' else k for k in diff)} "
                         f"differ from this command's); resume it with the same recipe, overrides and space, or "
                         f"start a new one with --study NAME or --dir DIR")
    return study


def _retry_callback() -> tuple[Any, str]:
    """Optuna's callback that queues a heartbeat-stale trial again, and the storage argument taking it (renamed
    in Optuna 4.9; the old name still works up to 6.0)."""
    from optuna import storages

    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return storages.RetryHeartbeatStaleTrialCallback, "heartbeat_stale_trial_callback"
    return storages.RetryFailedTrialCallback, "failed_trial_callback"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dead_trials(study: Any) -> list[int]:
    """Fail the RUNNING trials of processes on this host that no longer exist and queue their parameters again
    (the queued trial continues in the dead one's run directory). Returns the numbers failed."""
    from optuna.trial import TrialState

    host, failed = platform.node(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid, where = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if where != host or pid is None or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "killed", True)  # a finished trial takes no attributes
        # The state change is atomic in the storage: of two workers recovering at once, one queues the retry.
        if study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            failed.append(t.number)
    return failed


def _budget_left(study: Any, trials: int) -> bool:
    """Whether another trial may start: a queued one always; else while the budget is not used up."""
    from optuna.trial import TrialState

    used = 0
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.WAITING:
            return True
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) or (
                t.state == TrialState.FAIL and "error" in t.user_attrs):
            used += 1
    return used < trials


def _run_dir_of(study: Any, trial: Any, directory: Path) -> Path:
    """A retried trial continues in the run directory of the trial it retries; a new one gets trials/<number>."""
    origin = trial.user_attrs.get("retry_of")
    if origin is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the helper is marked experimental; it reads one system attribute
            origin = _retry_callback()[0].retried_trial_number(study._storage.get_trial(trial._trial_id))
    if origin is not None:
        for t in study.get_trials(deepcopy=False):
            if t.number == origin and t.user_attrs.get("run_dir"):
                return Path(directory) / t.user_attrs["run_dir"]
    return Path(directory) / "trials" / f"{trial.number:04d}"


def seed_outcome(seed_dir: Path, last_phase: str, metric: str) -> tuple[float | None, dict[str, int]]:
    """From a trained seed's ``metrics.jsonl``: the last phase's selected VALID value, and epochs run per phase."""
    value, epochs = None, {}
    path = Path(seed_dir) / "metrics.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else ():
        rec = json.loads(line)
        epochs[rec["phase"]] = epochs.get(rec["phase"], 0) + 1
        if rec["phase"] == last_phase and rec.get("selected"):
            value = rec["valid"].get(metric)
    return value, epochs


def make_objective(setup: TuneSetup, study: Any) -> Any:
    optuna = _optuna()
    from ..config import load_recipe, to_yaml
    from ..distributed import Single
    from ..errors import TrainingError
    from ..progress import Reporter
    from ..runner import prepare, set_determinism, train_seed
    from ..runs import atomic_write_json, atomic_write_text, seed_dir

    metric, direction = objective_of(setup)
    mode = "min" if direction == "minimize" else "max"

    def objective(trial: Any) -> float:
        values = {p.key: p.suggest(trial) for p in setup.space.params}
        overrides = [*setup.overrides, *(override(k, v) for k, v in values.items())]
        run_dir = _run_dir_of(study, trial, setup.directory)
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("host", platform.node())
        trial.set_user_attr("run_dir", run_dir.relative_to(setup.directory).as_posix())
        recipe = load_recipe(setup.recipe_path, [*overrides, f"output_dir={json.dumps(str(run_dir.parent))}"])
        atomic_write_text(run_dir / "recipe.yaml", to_yaml(recipe))
        atomic_write_json(run_dir / "overrides.json", overrides)
        set_determinism(recipe.deterministic)
        prepared = prepare(recipe)
        # Tuning never evaluates TEST: the split is not even kept (a bug that reached it would fail loudly).
        prepared.splits.pop("test", None)
        last = recipe.train.phases[-1].name
        per_seed: dict[str, float] = {}
        epochs: dict[str, dict[str, int]] = {}
        for s_idx, seed in enumerate(recipe.seeds):
            def report(event: dict[str, Any], s_idx: int = s_idx) -> None:
                # Only phases selecting on the objective's metric, in its direction, are comparable to it.
                if event["metric"] != metric or event["mode"] != mode or event["best"] is None:
                    return
                trial.report(float(event["best"]),
                             s_idx * SEED_STRIDE + event["phase_index"] * PHASE_STRIDE + event["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{event['phase']} epoch {event['epoch']}: VALID {metric} "
                                             f"{event['best']:.4g}")

            sdir = seed_dir(run_dir, seed)
            try:
                train_seed(recipe, prepared, seed, sdir, prepared.device, Reporter(enabled=False), Single(),
                           on_epoch=report)
            except TrainingError as exc:  # e.g. diverged at this learning rate: a result of the search
                trial.set_user_attr("error", str(exc))
                raise
            finally:
                epochs[str(seed)] = seed_outcome(sdir, last, metric)[1]
                trial.set_user_attr("epochs", epochs)
            value, _ = seed_outcome(sdir, last, metric)
            if value is None:
                trial.set_user_attr("error", f"seed {seed}: phase {last!r} selected no epoch (VALID {metric} "
                                             f"never finite)")
                raise TrainingError(trial.user_attrs["error"])
            per_seed[str(seed)] = float(value)
        trial.set_user_attr("per_seed", per_seed)
        return sum(per_seed.values()) / len(per_seed)

    return objective


def _sampler_seed(setup: TuneSetup, worker: int, existing: int) -> int:
    """The TPE seed of one worker: ``--seed`` itself for a fresh study's first worker (so one uninterrupted
    ``--jobs 1`` search is reproducible); other workers, and resumed studies, get streams of their own, so they
    do not propose the same parameters the first stream already tried."""
    if worker == 0 and existing == 0:
        return setup.seed
    import hashlib

    digest = hashlib.blake2b(f"{setup.seed}|{worker}|{existing}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def work(setup: TuneSetup, worker: int = 0, study: Any = None) -> Any:
    """One worker: recover dead trials, then run trials until the budget is used up. Returns the study."""
    import torch

    from ..errors import TrainingError

    torch.set_num_threads(setup.threads)
    study = study if study is not None else open_study(setup)
    recover_dead_trials(study)
    study.sampler = _optuna().samplers.TPESampler(
        seed=_sampler_seed(setup, worker, len(study.get_trials(deepcopy=False))))
    objective = make_objective(setup, study)
    while _budget_left(study, setup.trials):
        study.optimize(objective, n_trials=1, catch=(TrainingError,))
    return study


def _worker_main(setup: TuneSetup, worker: int) -> None:
    from ..bench.workers import exit_with_parent

    exit_with_parent()
    work(setup, worker)


def run_study(setup: TuneSetup, jobs: int = 1) -> Any:
    """Run the search with ``jobs`` worker processes sharing the storage; returns the study."""
    if jobs < 1:
        raise ImrecError(f"--jobs must be ≥ 1, got {jobs}")
    if setup.trials < 0:
        raise ImrecError(f"--trials must be ≥ 0, got {setup.trials}")
    study = open_study(setup)  # fails early (bad storage, another search under this name), before any worker
    if jobs == 1:
        return work(setup, 0, study)
    else:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            for fut in [pool.submit(_worker_main, setup, w) for w in range(jobs)]:
                fut.result()
    return study
