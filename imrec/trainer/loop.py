"""The trainer: one model, one seed, every phase of a recipe, with resume state after every epoch.

Per epoch of a phase: the epoch's training masks and order (seeded by seed, phase, epoch), every batch through the
phase's update mode (:mod:`imrec.trainer.updates`), then VALID under the phase's selection condition
(:func:`imrec.trainer.evaluation.evaluate`), the best checkpoint by ``select.metric``, early stopping, the
learning-rate schedulers, one ``metrics.jsonl`` line and ``state.pt`` (so a killed run resumes to exactly the
results of an uninterrupted one).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..distributed import Single
from ..errors import CheckpointError, Problem, RecipeError, TrainingError
from ..interfaces import Batch, Condition, Split
from ..loader import condition_masks, epoch_order, iterate
from ..model import IMModel, apply_mask
from ..runs import atomic_torch_save, atomic_write_text, safe_torch_load
from .evaluation import eval_seed, evaluate
from .memory import release_freed_memory
from .optimizers import step_scheduler
from .plan import PhasePlan, phase_epochs, plan_phase
from .rng import rng_state, seed_everything, set_rng_state
from .updates import train_batch


@dataclass
class EpochLog:
    """One training epoch: the mean of each logged loss term and step total over its batches, their number, and
    the seconds it took."""

    losses: dict[str, float]
    batches: int
    seconds: float


# What a resume state (state.pt) holds; a file without them was not written by Trainer._save_state.
_STATE_KEYS = ("next_phase", "next_epoch", "model", "optimizers", "best", "bad_epochs", "stopped", "rng",
               "metric_lines")


def _first_mismatch(exc: BaseException) -> str:
    """The first specific line of torch's load_state_dict error (its first line only says 'Error(s) in ...')."""
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    return (lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__)[:300]


@dataclass
class Selection:
    """A phase's model selection so far: the best VALID value of ``metric`` and its epoch, the epochs since it
    last improved, and whether early stopping has ended the phase."""

    metric: str
    mode: str  # "min" or "max"
    best: dict[str, Any] | None = None
    bad: int = 0
    stopped: bool = False

    def update(self, value: float, epoch: int) -> bool:
        """Count ``epoch``'s VALID ``value``; True when it is the best so far (a non-finite value never is)."""
        improved = math.isfinite(value) and (
            self.best is None or (value < self.best["metric"] if self.mode == "min" else value > self.best["metric"])
        )
        if improved:
            self.best = {"metric": value, "epoch": epoch}
            self.bad = 0
        else:
            self.bad += 1
        return improved


class Trainer:
    """Trains one model for one seed through all phases of a recipe, with resume state after every epoch."""

    def __init__(
        self,
        recipe: Any,
        model: IMModel,
        splits: Mapping[str, Split],
        train_conditions: Sequence[Condition],
        select_conditions: Sequence[Condition],
        metrics: Sequence[Callable[[np.ndarray, np.ndarray], dict[str, float]]],
        higher_is_better: Mapping[str, bool],
        seed: int,
        device: torch.device,
        workdir: Any,
        reporter: Any,
        dist: Single | None = None,
        loggers: Any = None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.recipe = recipe
        self.model = model
        self.splits = splits
        self.train_conditions = list(train_conditions)
        self.select_conditions = list(select_conditions)
        self.metrics = list(metrics)
        self.higher_is_better = dict(higher_is_better)
        self.seed = seed
        self.device = device
        self.dir = workdir
        self.reporter = reporter
        self.loggers = loggers  # experiment trackers (imrec.tracking.Loggers), fed each metrics.jsonl line
        # The execution context (imrec.distributed): one process, or this rank of a torchrun job.
        self.dist = dist if dist is not None else Single()
        # Called after every epoch's VALID evaluation, once the resume state is saved (so an exception it raises,
        # e.g. a tuner pruning the trial, leaves a consistent run directory), with {phase, phase_index, epoch,
        # metric, mode, value, improved, best, stopped}: the phase's VALID selection metric. docs/hooks.md.
        self.on_epoch = on_epoch
        self.shard = (self.dist.rank, self.dist.world)
        self.is_main = self.dist.is_main
        self.allreduce = self.dist.allreduce_mean  # None in one process
        self.barrier = self.dist.barrier
        self.all_true = self.dist.all_true
        self.source = str(getattr(recipe, "source", None) or "<recipe>")
        # ``train.batch_size`` is the global batch: each of W ranks takes batch_size / W of every batch, so the
        # W ranks together see exactly the single-process batches (imrec.distributed).
        world = self.dist.world
        if recipe.train.batch_size % world:
            raise RecipeError([Problem(self.source, "train.batch_size",
                                       f"{recipe.train.batch_size} cannot be split evenly over {world} processes",
                                       expected=f"a multiple of {world} (the global batch; each process takes "
                                                f"batch_size / {world})")])
        self.batch_size = recipe.train.batch_size // world

    # -------------------------------------------------------------------------------------------- checkpoints
    @property
    def state_path(self):
        return self.dir / "state.pt"

    @property
    def metrics_path(self):
        return self.dir / "metrics.jsonl"

    def _save(self, path, payload: dict[str, Any]) -> None:
        if self.is_main:
            atomic_torch_save(path, payload)

    def _checkpoint(self, phase: str, epoch: int, metric: float | None) -> dict[str, Any]:
        return {"config": self.recipe.resolved, "phase": phase, "epoch": epoch, "metric": metric, "seed": self.seed,
                "model": self.model.state_dict()}

    def _restart_fix(self) -> str:
        # The run directory holds recipe.yaml: seeds/<seed>/ up two levels, seeds/<seed>/rate-<r>/ (per-rate) three.
        run_dir = next((p for p in self.dir.parents if (p / "recipe.yaml").exists()), self.dir.parent.parent)
        return (f"delete {self.dir} to train seed {self.seed} again from the start, then `imrec run --resume "
                f"{run_dir}`")

    def _load_weights(self, state: Any, path: Any, fix: str) -> None:
        try:
            self.model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{path}: its weights do not fit the model of this run's recipe "
                                  f"({_first_mismatch(exc)}); {fix}") from None

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        import json

        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.loggers:
            self.loggers.epoch(self.seed, record)

    def _metric_lines(self) -> list[str]:
        if not self.metrics_path.exists():
            return []
        # errors="replace": a damaged byte must not stop a resume (the line count is what matters here)
        return self.metrics_path.read_text(encoding="utf-8", errors="replace").splitlines()

    # -------------------------------------------------------------------------------------------- main loop
    def fit(self) -> None:
        """Train every phase in turn, from where ``state.pt`` left off; each phase ends with its selected (VALID)
        weights loaded and kept as ``phase-<name>.pt``."""
        rank, world = self.shard
        if world > 1 and rank > 0:
            # Each rank draws its own dropout masks and diffusion noise (rank 0 keeps the single-process stream);
            # the model itself is already identical on every rank.
            seed_everything(int(eval_seed(self.seed, f"rank {rank}")))
        resumed = self._resume_state()
        start_phase = resumed["next_phase"] if resumed is not None else 0
        for p_idx in range(start_phase, len(self.recipe.train.phases)):
            self._fit_phase(p_idx, resumed if p_idx == start_phase else None)
            self._save_state(p_idx + 1, 0, None, None, 0, False)

    def _resume_state(self) -> dict[str, Any] | None:
        """The state an interrupted run saved (its weights loaded, the metric lines written after it dropped), or
        None to start afresh."""
        if not self.state_path.exists():
            if self.is_main and self.metrics_path.exists():
                # Killed during the first epoch, after its line but before any state: that epoch is run again.
                self.metrics_path.unlink()
            return None
        phases = self.recipe.train.phases
        resumed = safe_torch_load(self.state_path, map_location=self.device, required=_STATE_KEYS,
                                  fix=self._restart_fix())
        start_phase, start_epoch = resumed["next_phase"], resumed["next_epoch"]
        counters = (start_phase, start_epoch, resumed["metric_lines"])
        if not all(isinstance(v, int) and v >= 0 for v in counters) or start_phase > len(phases):
            raise CheckpointError(f"{self.state_path}: holds no valid position (phase {start_phase!r}, epoch "
                                  f"{start_epoch!r} of {len(phases)} phases); {self._restart_fix()}")
        self._load_weights(resumed["model"], self.state_path, self._restart_fix())
        # Lines written after the state was saved belong to the epoch that was lost: drop them.
        if self.is_main:
            lines = self._metric_lines()[: resumed["metric_lines"]]
            atomic_write_text(self.metrics_path, "".join(l + "\n" for l in lines))
        return resumed

    def _restore(self, plan: PhasePlan, resumed: Mapping[str, Any]) -> None:
        """The optimisers', schedulers' and random-number generators' state ``resumed`` holds."""
        try:
            for name, sd in (resumed.get("optimizers") or {}).items():
                plan.optimizers[name].load_state_dict(sd)
            for name, sd in (resumed.get("schedulers") or {}).items():
                plan.schedulers[name].load_state_dict(sd)
            ranks = resumed.get("rng_ranks")
            set_rng_state(ranks[self.shard[0]] if ranks and len(ranks) == self.shard[1] else resumed["rng"])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"{self.state_path}: its optimiser or random-number state does not fit "
                                  f"this run ({type(exc).__name__}: {str(exc)[:200]}); "
                                  f"{self._restart_fix()}") from None

    def _fit_phase(self, p_idx: int, resumed: Mapping[str, Any] | None) -> None:
        """Phase ``p_idx``'s epochs (from ``resumed``, a state saved in it or at its start, if given)."""
        phase = self.recipe.train.phases[p_idx]
        metric = phase.select.metric
        mode = phase.select.mode or ("max" if self.higher_is_better.get(metric, False) else "min")
        # A state saved mid-phase carries the optimisers; one saved at a phase boundary starts the phase afresh.
        if resumed is not None and resumed.get("optimizers"):
            epoch = resumed["next_epoch"]
            sel = Selection(metric, mode, resumed["best"], resumed["bad_epochs"], resumed["stopped"])
        else:
            epoch, sel = 0, Selection(metric, mode)
            if phase.init_from:
                self._init_from(phase)
        plan = plan_phase(self.model, phase, self.source, select_mode=mode)
        if resumed is not None:
            self._restore(plan, resumed)
        epochs, hold = phase_epochs(phase, len(self.splits["train"]), self.batch_size, self.shard)
        if not sel.stopped and epoch < epochs:
            self.reporter.phase_start(phase.name, epochs, self._phase_note(p_idx, epochs))
        while not sel.stopped and epoch < epochs:
            self._fit_epoch(p_idx, plan, epoch, (epochs, hold), sel)
            epoch += 1
        self._finish_phase(p_idx, phase, sel.best)

    def _fit_epoch(self, p_idx: int, plan: PhasePlan, epoch: int, budget: tuple[int, int], sel: Selection) -> None:
        """One epoch: train, score VALID, keep the best checkpoint, log, step the schedulers, save the resume
        state, then call ``on_epoch``. ``budget``: the phase's (epoch cap, epochs before early stopping may end
        it)."""
        phase = self.recipe.train.phases[p_idx]
        log = self.train_epoch(p_idx, phase, plan, epoch)
        release_freed_memory()
        valid = evaluate(self.model, self.splits["valid"], self.select_conditions[p_idx], self.seed,
                         self.recipe.train.eval_batch_size, self.metrics, self.device, bypass=phase.bypass)
        value = valid.metrics.get(sel.metric, float("nan"))
        improved = sel.update(value, epoch)
        if improved:
            self._save(self.dir / "best.pt", self._checkpoint(phase.name, epoch, value))
        record = {"phase": phase.name, "epoch": epoch, "train": log.losses, "batches": log.batches,
                  "seconds": round(log.seconds, 3), "valid": valid.metrics, "selected": improved}
        if plan.schedulers:  # the learning rate this epoch trained with, then the schedule's step
            record["lr"] = {n: plan.optimizers[n].param_groups[0]["lr"] for n in plan.schedulers}
            for sched in plan.schedulers.values():
                step_scheduler(sched, value)
        self._log(record)
        self.reporter.epoch_end(phase.name, epoch, budget[0], log.losses, sel.metric, value, improved)
        sel.stopped = phase.early_stop is not None and sel.bad >= phase.early_stop and epoch + 1 >= budget[1]
        self._save_state(p_idx, epoch + 1, plan, sel.best, sel.bad, sel.stopped)
        if self.on_epoch is not None:
            self.on_epoch({"phase": phase.name, "phase_index": p_idx, "epoch": epoch, "metric": sel.metric,
                           "mode": sel.mode, "value": value, "improved": improved,
                           "best": sel.best["metric"] if sel.best else None, "stopped": sel.stopped})

    def _phase_note(self, p_idx: int, epochs: int) -> str:
        """What the user needs to read this phase's VALID numbers: under which condition they are measured, and
        that they are not comparable with the previous phase's when that condition changed (e.g. RoHyDR's recover
        phase scores VALID under missingness, after a pre-training phase scored it on complete data)."""
        from ..display import show_condition

        phase = self.recipe.train.phases[p_idx]
        cond = show_condition(self.select_conditions[p_idx].name)
        note = f"phase {phase.name}: up to {epochs} epochs; VALID {phase.select.metric} measured under {cond}"
        if p_idx > 0 and self.select_conditions[p_idx - 1].name != self.select_conditions[p_idx].name:
            before = show_condition(self.select_conditions[p_idx - 1].name)
            note += (f" (phase {self.recipe.train.phases[p_idx - 1].name}: under {before}), so its values are not "
                     f"comparable with the previous phase's")
        return note

    def _finish_phase(self, p_idx: int, phase: Any, best: dict[str, Any] | None) -> None:
        """Load the phase's selected (VALID) weights, and keep them as ``phase-<name>.pt``."""
        self.barrier()  # rank 0 wrote best.pt; every rank loads the same weights
        if best is not None and (self.dir / "best.pt").exists():
            ckpt = safe_torch_load(self.dir / "best.pt", map_location=self.device, required=("phase", "model"),
                                   fix=self._restart_fix())
            if ckpt["phase"] == phase.name:
                self._load_weights(ckpt["model"], self.dir / "best.pt", self._restart_fix())
        self._save(self.dir / f"phase-{phase.name}.pt", self._checkpoint(phase.name, -1, best and best["metric"]))
        self.barrier()  # a later phase's init_from reads it on every rank

    def _init_from(self, phase: Any) -> None:
        from pathlib import Path

        src = phase.init_from
        path = self.dir / f"phase-{src[6:]}.pt" if src.startswith("phase:") else Path(src)
        if not path.exists():
            raise TrainingError(f"phase {phase.name!r}: init_from {src!r}: checkpoint not found at {path}")
        fix = (f"re-run phase {src[6:]!r} (delete {path} and resume)" if src.startswith("phase:") else
               f"point train.phases.{phase.name}.init_from at a checkpoint imrec wrote (best.pt or phase-<name>.pt)")
        ckpt = safe_torch_load(path, map_location=self.device, fix=fix)
        state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise TrainingError(f"phase {phase.name!r}: init_from {path}: holds no model weights (a mapping of "
                                f"parameter names to tensors); {fix}")
        try:
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise TrainingError(f"phase {phase.name!r}: init_from {path}: the weights do not fit this model "
                                f"({_first_mismatch(exc)}); {fix}") from None
        if unexpected:
            raise TrainingError(f"phase {phase.name!r}: init_from {path}: unexpected keys {unexpected[:5]}")

    def _save_state(self, next_phase: int, next_epoch: int, plan: PhasePlan | None, best, bad: int,
                    stopped: bool) -> None:
        rng = rng_state()
        ranks = self.dist.gather_objects(rng) if self.shard[1] > 1 else None  # every rank's stream, for resume
        self._save(self.state_path, {
            "next_phase": next_phase, "next_epoch": next_epoch, "model": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in plan.optimizers.items()} if plan else {},
            "schedulers": {k: s.state_dict() for k, s in plan.schedulers.items()} if plan else {},
            "best": best, "bad_epochs": bad, "stopped": stopped, "rng": rng, "rng_ranks": ranks,
            "metric_lines": len(self._metric_lines()),
        })

    # -------------------------------------------------------------------------------------------- one epoch
    def train_epoch(self, p_idx: int, phase: Any, plan: PhasePlan, epoch: int) -> EpochLog:
        """One training epoch of phase ``p_idx``: the epoch's masks and order (this rank's shard), every batch
        through :meth:`train_batch`; returns the mean of each logged loss over the batches."""
        t0 = time.perf_counter()
        model = self.model
        model.train()
        for path in plan.frozen:  # a frozen part computes targets: no dropout, fixed norm statistics
            model.part(path).eval()
        split = self.splits["train"]
        # Training masks are redrawn every epoch from (seed, phase, epoch).
        masked = condition_masks(self.train_conditions[p_idx], split, model.names, self.seed,
                                 epoch=p_idx * 1_000_000 + epoch)
        order = epoch_order(len(split), self.seed, p_idx, epoch, self.shard)
        bs = self.batch_size
        n_batches = math.ceil(len(order) / bs)
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        self.reporter.epoch_start(phase.name, epoch, phase_epochs(phase, len(split), bs, self.shard)[0], n_batches)
        for b, (full, mask, frames) in enumerate(iterate(masked, bs, order)):
            full = full.to(self.device)
            mask = mask.to(self.device)
            frames = {k: v.to(self.device) for k, v in frames.items()} if frames else None
            inp = apply_mask(full, mask, frames)
            values = self.train_batch(phase, plan, inp, full, epoch)
            if self.allreduce is not None:
                self.dist.sync_buffers(model)  # e.g. running statistics: identical models on every rank
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            self.reporter.batch_end(b + 1, values)
        losses = {k: sums[k] / counts[k] for k in sums}
        return EpochLog(losses, n_batches, time.perf_counter() - t0)

    def train_batch(self, phase: Any, plan: PhasePlan, inp: Batch, full: Batch, epoch: int) -> dict[str, float]:
        """One batch through the phase's update mode (:func:`imrec.trainer.updates.train_batch`), with this
        process's collectives; returns the logged loss terms and step totals."""
        return train_batch(self.model, phase, plan, inp, full, epoch, self.allreduce, self.all_true)
