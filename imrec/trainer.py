"""The generic, recipe-driven trainer: phases of epochs, each batch an ordered list of optimisation steps.

The trainer knows components, named losses and steps; nothing about diffusion or GANs. Per batch:

1. one missing pattern is drawn (the epoch's mask rows for the batch) and applied to the features;
2. one forward pass computes every loss any step of the phase needs (``reuse_forward: true``, the default) —
   or one forward per step (``false``), the reference code's sequential schedule but with the *same* mask;
3. each step takes the gradient of its weighted loss with respect to exactly the parameters it updates
   (``torch.autograd.grad``), so no gradient ever reaches a parameter another step owns; then the steps'
   optimisers step in order.

With a shared forward, all steps' gradients are taken at the same parameter values before any update
(simultaneous updates, as in simultaneous-gradient GAN training); the sequential mode updates between steps.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .distributed import Single
from .errors import RecipeError, Problem, TrainingError, suggest
from .interfaces import Condition, Split
from .loader import condition_masks, epoch_order, iterate
from .model import IMModel, apply_mask
from .runs import atomic_torch_save, safe_torch_load

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


# ------------------------------------------------------------------------------------------------ parameters
def _multi_tensor(name: str, params: Sequence[nn.Parameter]) -> dict[str, bool]:
    """Keyword arguments that select the fastest implementation of optimiser ``name`` for ``params``.

    torch picks the one-tensor-at-a-time loop by default on CPU (~8 small ops per parameter tensor: 24 ms per
    step of RoHyDR's 785 tensors on one core). Adam/AdamW's fused kernel (CPU and CUDA) does the same update in
    one pass (5 ms); SGD gets the multi-tensor ``foreach`` loop. Same update rule, same state dict.
    """
    devices = {p.device.type for p in params}
    floating = all(p.is_floating_point() for p in params)
    if name in ("adam", "adamw") and floating and devices <= {"cpu", "cuda"}:
        return {"fused": True}
    if name == "sgd" and devices <= {"cpu", "cuda"}:
        return {"foreach": True}
    return {}


def _param_paths(model: IMModel) -> dict[str, nn.Parameter]:
    return dict(model.named_parameters())


def _owner(param_name: str, paths: Sequence[str]) -> str | None:
    """The most specific of ``paths`` that contains ``param_name`` (``aligner.discriminator`` beats ``aligner``)."""
    best = None
    for p in paths:
        if param_name == p or param_name.startswith(p + "."):
            if best is None or len(p) > len(best):
                best = p
    return best


@dataclass
class StepPlan:
    name: str
    losses: dict[str, float]
    optimizer: str
    params: list[nn.Parameter]
    clip_grad_value: float | None
    clip_grad_norm: float | None
    when: str


@dataclass
class PhasePlan:
    optimizers: dict[str, torch.optim.Optimizer]
    steps: list[StepPlan]
    frozen: list[str]
    need: set[str] = field(default_factory=set)
    schedulers: dict[str, Any] = field(default_factory=dict)  # optimiser name → its learning-rate scheduler


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], where: str, source: str,
                    select_mode: str = "min") -> Any:
    """The ``torch.optim.lr_scheduler`` class named by ``cfg["name"]`` on ``optimizer`` with ``cfg``'s other
    entries as arguments. ReduceLROnPlateau's ``mode`` defaults to the phase's selection direction, since it is
    stepped on the VALID selection metric."""
    sched = torch.optim.lr_scheduler
    known = sorted(n for n in dir(sched) if isinstance(getattr(sched, n), type)
                   and (issubclass(getattr(sched, n), sched.LRScheduler) or n == "ReduceLROnPlateau")
                   and n not in ("LRScheduler", "_LRScheduler", "ChainedScheduler", "SequentialLR", "LambdaLR",
                                 "MultiplicativeLR"))
    name = cfg["name"]
    if name not in known:
        close = suggest(name, known)
        raise RecipeError([Problem(source, f"{where}.name", f"{name!r} is not a learning-rate scheduler of "
                                   f"torch.optim.lr_scheduler" + (f"; did you mean {close!r}?" if close else ""),
                                   allowed=known)])
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    if name == "ReduceLROnPlateau":
        kwargs.setdefault("mode", select_mode)
    try:
        return getattr(sched, name)(optimizer, **kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError([Problem(source, where, f"{name}: {exc}")]) from None


def step_scheduler(scheduler: Any, valid_metric: float) -> None:
    """One epoch's step: ReduceLROnPlateau on the VALID selection metric (skipped when it is not finite), the
    others on the epoch count."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if math.isfinite(valid_metric):
            scheduler.step(valid_metric)
    else:
        scheduler.step()


def plan_phase(model: IMModel, phase: Any, source: str = "<recipe>", select_mode: str = "min") -> PhasePlan:
    """Freeze, assign every trainable parameter to exactly one optimiser, and resolve each step's parameters."""
    problems: list[Problem] = []
    key = f"train.phases.{phase.name}"
    named = _param_paths(model)

    def check_path(path: str, where: str) -> None:
        try:
            model.part(path)
        except KeyError:
            problems.append(Problem(source, where, f"no component part {path!r} in this model",
                                    allowed=sorted({n.rsplit('.', 1)[0] for n in named} | set(model.slots()))))

    for i, path in enumerate(phase.freeze):
        check_path(path, f"{key}.freeze.{i}")
    all_paths: list[tuple[str, str]] = []  # (path, optimizer)
    for oname, ocfg in phase.optimizers.items():
        for i, path in enumerate(ocfg.params):
            check_path(path, f"{key}.optimizers.{oname}.params.{i}")
            all_paths.append((path, oname))
    if problems:
        raise RecipeError(problems)

    dup = {}
    for path, oname in all_paths:
        if path in dup and dup[path] != oname:
            problems.append(Problem(source, f"{key}.optimizers", f"{path!r} is in optimisers {dup[path]!r} and "
                                    f"{oname!r}; each parameter must belong to exactly one optimiser"))
        dup[path] = oname
    if problems:
        raise RecipeError(problems)

    opt_params: dict[str, list[nn.Parameter]] = {o: [] for o in phase.optimizers}
    owner_of: dict[str, str] = {}
    for pname, param in named.items():
        frozen = _owner(pname, phase.freeze) is not None
        path = _owner(pname, [p for p, _ in all_paths])
        if frozen or path is None:
            param.requires_grad_(False)
            continue
        param.requires_grad_(True)
        oname = dup[path]
        opt_params[oname].append(param)
        owner_of[pname] = oname

    optimizers: dict[str, torch.optim.Optimizer] = {}
    for oname, ocfg in phase.optimizers.items():
        if not opt_params[oname]:
            problems.append(Problem(source, f"{key}.optimizers.{oname}",
                                    "has no trainable parameters (all frozen or claimed by a more specific path)"))
            continue
        kwargs: dict[str, Any] = {"lr": ocfg.lr, "weight_decay": ocfg.weight_decay}
        if ocfg.name in ("adam", "adamw") and ocfg.betas is not None:
            kwargs["betas"] = tuple(ocfg.betas)
        if ocfg.name == "sgd":
            kwargs["momentum"] = ocfg.momentum
        kwargs.update(_multi_tensor(ocfg.name, opt_params[oname]))
        optimizers[oname] = OPTIMIZERS[ocfg.name](opt_params[oname], **kwargs)

    steps: list[StepPlan] = []
    for i, s in enumerate(phase.steps):
        if s.update:
            for j, path in enumerate(s.update):
                check_path(path, f"{key}.steps.{s.name}.update.{j}")
            params = [p for n, p in named.items() if _owner(n, s.update) and owner_of.get(n) == s.optimizer]
            stray = [n for n, p in named.items() if _owner(n, s.update) and p.requires_grad
                     and owner_of.get(n) != s.optimizer]
            if stray:
                problems.append(Problem(source, f"{key}.steps.{s.name}.update",
                                        f"parameters outside optimiser {s.optimizer!r}: {stray[:3]}…"))
        else:
            params = list(opt_params.get(s.optimizer, []))
        if not params and not problems:
            problems.append(Problem(source, f"{key}.steps.{s.name}", "updates no trainable parameter"))
        steps.append(StepPlan(s.name, dict(s.losses), s.optimizer, params, s.clip_grad_value, s.clip_grad_norm, s.when))
    available = model.aux_loss_names(phase.bypass)
    for s in steps:
        for loss in s.losses:
            if loss not in available:
                problems.append(Problem(source, f"{key}.steps.{s.name}.losses.{loss}", "this model never emits it",
                                        allowed=sorted(available)))
    if problems:
        raise RecipeError(problems)
    need = {n for s in steps for n in s.losses}
    schedulers = {
        oname: build_scheduler(optimizers[oname], ocfg.scheduler, f"{key}.optimizers.{oname}.scheduler", source,
                               select_mode)
        for oname, ocfg in phase.optimizers.items() if getattr(ocfg, "scheduler", None)
    }
    return PhasePlan(optimizers, steps, list(phase.freeze), need, schedulers)


def phase_epochs(phase: Any, n_train: int, batch_size: int, shard: tuple[int, int] = (0, 1)) -> tuple[int, int]:
    """``(epoch cap, epochs before early stopping may end the phase)`` of a phase on ``n_train`` training samples:
    ``epochs`` and 0, or with ``min_steps`` both raised to the epochs that make at least that many optimiser steps
    (batches per epoch as the loader makes them on this rank)."""
    if not getattr(phase, "min_steps", None):
        return phase.epochs, 0
    per_rank = n_train // shard[1] if shard[1] > 1 else n_train
    batches = max(1, math.ceil(per_rank / batch_size))
    need = math.ceil(phase.min_steps / batches)
    return max(phase.epochs, need), need


def release_freed_memory() -> None:
    """Return heap memory the allocator keeps after frees to the operating system (glibc ``malloc_trim``;
    nothing elsewhere). glibc keeps freed blocks for reuse: after a training epoch that is about one batch's
    activations (hundreds of MB for RoHyDR at MOSI shapes), which the next evaluation, with larger batches that
    fit none of those blocks, would add to the process's peak."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, looked up once; None where the C library has none."""
    import ctypes
    import ctypes.util

    try:
        name = ctypes.util.find_library("c")
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


# ------------------------------------------------------------------------------------------------ evaluation
@dataclass
class EvalResult:
    metrics: dict[str, float]
    predictions: np.ndarray
    labels: np.ndarray
    ids: list[str]


def eval_seed(seed: int, condition: str) -> int:
    """A seed for evaluation noise (e.g. diffusion sampling) fixed by (run seed, condition)."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"{seed}|{condition}".encode(), digest_size=8).digest(), "little") >> 1


@torch.no_grad()
def evaluate(
    model: IMModel,
    split: Split,
    condition: Condition,
    seed: int,
    batch_size: int,
    metrics: Sequence[Callable[[np.ndarray, np.ndarray], dict[str, float]]],
    device: torch.device,
    recovery: bool = False,
    bypass: Sequence[str] = (),
) -> EvalResult:
    """Score ``model`` on ``split`` under ``condition`` (evaluation masks: seed + sample ids only).

    Runs under a forked RNG seeded by (seed, condition): evaluation is reproducible, identical across
    methods, and leaves the training RNG untouched (so a resumed run equals an uninterrupted one).
    """
    was_training = model.training
    model.eval()
    names = model.names
    masked = condition_masks(condition, split, names, seed, epoch=None)
    preds, labels, ids = [], [], []
    loss_sum, n_total = 0.0, 0
    rec_sq = {n: [0.0, 0] for n in names}
    rec_cos = {n: [0.0, 0] for n in names}
    rec_zero = 0.0  # the error of all-zero tokens (zero filling, no recovery) on the same entries: the scale
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(eval_seed(seed, condition.name))
        for full, mask, frames in iterate(masked, batch_size):
            full = full.to(device)
            mask = mask.to(device)
            frames = {k: v.to(device) for k, v in frames.items()} if frames else None
            inp = apply_mask(full, mask, frames)
            res = model(inp, bypass=bypass)
            loss_sum += float(model.head.loss(res.prediction, inp.labels)) * full.size
            n_total += full.size
            preds.append(res.prediction.float().cpu())
            labels.append(full.labels.cpu())
            ids.extend(full.ids)
            if recovery and res.recovered is not None and not bool(mask.all()):
                truth = model.encoder(full.modalities, full.lengths).value
                for k, name in enumerate(names):
                    miss = ~mask[:, k]
                    if not bool(miss.any()):
                        continue
                    r = res.recovered[name][miss].flatten(1).float()
                    t = truth[name][miss].flatten(1).float()
                    rec_sq[name][0] += float(((r - t) ** 2).mean(dim=1).sum())
                    rec_zero += float((t ** 2).mean(dim=1).sum())
                    rec_sq[name][1] += int(miss.sum())
                    rec_cos[name][0] += float(nn.functional.cosine_similarity(r, t, dim=1, eps=1e-8).sum())
                    rec_cos[name][1] += int(miss.sum())
    model.train(was_training)
    p = torch.cat(preds).numpy()
    y = torch.cat(labels).numpy()
    out: dict[str, float] = {"loss": loss_sum / max(n_total, 1)}
    for metric in metrics:
        out.update({k: float(v) for k, v in metric(p, y).items()})
    if recovery:
        tot_sq, tot_cos, tot_n = 0.0, 0.0, 0
        for name in names:
            s, n = rec_sq[name]
            if n:
                out[f"recovery_mse/{name}"] = s / n
                out[f"recovery_cos/{name}"] = rec_cos[name][0] / n
                tot_sq, tot_cos, tot_n = tot_sq + s, tot_cos + rec_cos[name][0], tot_n + n
        if tot_n:
            out["recovery_mse"] = tot_sq / tot_n
            out["recovery_mse_zero"] = rec_zero / tot_n
            out["recovery_cos"] = tot_cos / tot_n
    return EvalResult(out, p, y, ids)


# ------------------------------------------------------------------------------------------------ RNG state
def rng_state() -> dict[str, Any]:
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------ training
@dataclass
class EpochLog:
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
            from .errors import CheckpointError

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
        phases = self.recipe.train.phases
        start_phase, start_epoch, resumed = 0, 0, None
        rank, world = self.shard
        if world > 1 and rank > 0:
            # Each rank draws its own dropout masks and diffusion noise (rank 0 keeps the single-process stream);
            # the model itself is already identical on every rank.
            seed_everything(int(eval_seed(self.seed, f"rank {rank}")))
        if self.state_path.exists():
            resumed = safe_torch_load(self.state_path, map_location=self.device, required=_STATE_KEYS,
                                      fix=self._restart_fix())
            start_phase, start_epoch = resumed["next_phase"], resumed["next_epoch"]
            counters = (start_phase, start_epoch, resumed["metric_lines"])
            if not all(isinstance(v, int) and v >= 0 for v in counters) or start_phase > len(phases):
                from .errors import CheckpointError

                raise CheckpointError(f"{self.state_path}: holds no valid position (phase {start_phase!r}, epoch "
                                      f"{start_epoch!r} of {len(phases)} phases); {self._restart_fix()}")
            self._load_weights(resumed["model"], self.state_path, self._restart_fix())
            # Lines written after the state was saved belong to the epoch that was lost: drop them.
            if self.is_main:
                from .runs import atomic_write_text

                lines = self._metric_lines()[: resumed["metric_lines"]]
                atomic_write_text(self.metrics_path, "".join(l + "\n" for l in lines))
        elif self.is_main and self.metrics_path.exists():
            # Killed during the first epoch, after its line but before any state: that epoch is run again.
            self.metrics_path.unlink()
        for p_idx in range(start_phase, len(phases)):
            phase = phases[p_idx]
            # A state saved mid-phase carries the optimisers; one saved at a phase boundary starts the phase afresh.
            if p_idx == start_phase and resumed is not None and resumed.get("optimizers"):
                best, bad, stopped = resumed["best"], resumed["bad_epochs"], resumed["stopped"]
            else:
                best, bad, stopped = None, 0, False
                start_epoch = 0
                if phase.init_from:
                    self._init_from(phase)
            metric_name = phase.select.metric
            mode = phase.select.mode or ("max" if self.higher_is_better.get(metric_name, False) else "min")
            plan = plan_phase(self.model, phase, self.source, select_mode=mode)
            if p_idx == start_phase and resumed is not None:
                try:
                    for name, sd in (resumed.get("optimizers") or {}).items():
                        plan.optimizers[name].load_state_dict(sd)
                    for name, sd in (resumed.get("schedulers") or {}).items():
                        plan.schedulers[name].load_state_dict(sd)
                    ranks = resumed.get("rng_ranks")
                    set_rng_state(ranks[self.shard[0]] if ranks and len(ranks) == self.shard[1] else resumed["rng"])
                except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
                    from .errors import CheckpointError

                    raise CheckpointError(f"{self.state_path}: its optimiser or random-number state does not fit "
                                          f"this run ({type(exc).__name__}: {str(exc)[:200]}); "
                                          f"{self._restart_fix()}") from None
                resumed = None
            epoch = start_epoch
            epochs, hold = phase_epochs(phase, len(self.splits["train"]), self.batch_size, self.shard)
            if not stopped and epoch < epochs:
                self.reporter.phase_start(phase.name, epochs, self._phase_note(p_idx, epochs))
            while not stopped and epoch < epochs:
                log = self._train_epoch(p_idx, phase, plan, epoch)
                release_freed_memory()
                valid = evaluate(self.model, self.splits["valid"], self.select_conditions[p_idx], self.seed,
                                 self.recipe.train.eval_batch_size, self.metrics, self.device, bypass=phase.bypass)
                value = valid.metrics.get(metric_name, float("nan"))
                improved = math.isfinite(value) and (
                    best is None or (value < best["metric"] if mode == "min" else value > best["metric"])
                )
                if improved:
                    best = {"metric": value, "epoch": epoch}
                    bad = 0
                    self._save(self.dir / "best.pt", self._checkpoint(phase.name, epoch, value))
                else:
                    bad += 1
                record = {"phase": phase.name, "epoch": epoch, "train": log.losses, "batches": log.batches,
                          "seconds": round(log.seconds, 3), "valid": valid.metrics, "selected": improved}
                if plan.schedulers:  # the learning rate this epoch trained with, then the schedule's step
                    record["lr"] = {n: plan.optimizers[n].param_groups[0]["lr"] for n in plan.schedulers}
                    for sched in plan.schedulers.values():
                        step_scheduler(sched, value)
                self._log(record)
                self.reporter.epoch_end(phase.name, epoch, epochs, log.losses, metric_name, value, improved)
                stopped = phase.early_stop is not None and bad >= phase.early_stop and epoch + 1 >= hold
                epoch += 1
                self._save_state(p_idx, epoch, plan, best, bad, stopped)
                if self.on_epoch is not None:
                    self.on_epoch({"phase": phase.name, "phase_index": p_idx, "epoch": epoch - 1,
                                   "metric": metric_name, "mode": mode, "value": value, "improved": improved,
                                   "best": best["metric"] if best else None, "stopped": stopped})
            self._finish_phase(p_idx, phase, best)
            self._save_state(p_idx + 1, 0, None, None, 0, False)

    def _phase_note(self, p_idx: int, epochs: int) -> str:
        """What the user needs to read this phase's VALID numbers: under which condition they are measured, and
        that they are not comparable with the previous phase's when that condition changed (e.g. RoHyDR's recover
        phase scores VALID under missingness, after a pre-training phase scored it on complete data)."""
        from .display import show_condition

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
    def _train_epoch(self, p_idx: int, phase: Any, plan: PhasePlan, epoch: int) -> EpochLog:
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
            values = self._train_batch(phase, plan, inp, full, epoch)
            if self.allreduce is not None:
                self.dist.sync_buffers(model)  # e.g. running statistics: identical models on every rank
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
                counts[k] = counts.get(k, 0) + 1
            self.reporter.batch_end(b + 1, values)
        losses = {k: sums[k] / counts[k] for k in sums}
        return EpochLog(losses, n_batches, time.perf_counter() - t0)

    def _train_batch(self, phase: Any, plan: PhasePlan, inp, full, epoch: int) -> dict[str, float]:
        complete = bool(inp.mask.all())
        distributed = self.allreduce is not None
        if distributed:
            # Every rank must take the same steps (their gradients are all-reduced): a step runs when any
            # rank's batch has something missing; a rank without the step's losses contributes zeros.
            complete = self.all_true(complete)
        active = [s for s in plan.steps if not (s.when == "missing" and complete)]
        logged: dict[str, float] = {}
        reuse = getattr(phase, "reuse_forward", True)
        bypass = phase.bypass
        res = self.model(inp, full=full, need=plan.need, bypass=bypass) if reuse else None
        pending: list[tuple[StepPlan, list[nn.Parameter], list[torch.Tensor | None]]] = []
        for i, step in enumerate(active):
            if not reuse:
                res = self.model(inp, full=full, need=set(step.losses), bypass=bypass)
            terms = {n: res.losses[n] for n in step.losses if n in res.losses}
            params = [p for p in step.params if p.requires_grad]
            if not terms:
                if distributed and params:
                    self._apply(plan, step, params, [None] * len(params), pending if reuse else None)
                continue  # e.g. recovery losses on a batch with nothing missing
            for n, v in terms.items():
                if not torch.isfinite(v.detach()).all():
                    raise TrainingError(
                        f"non-finite loss in phase {phase.name!r}, step {step.name!r}, epoch {epoch}: loss term "
                        f"{n!r} = {float(v.detach())}; lower the learning rate, add clipping, or check the data "
                        f"for NaN/inf (`imrec data info`)"
                    )
                logged[n] = float(v.detach())
            total = sum(step.losses[n] * v for n, v in terms.items())
            logged[f"step.{step.name}"] = float(total.detach())
            if not params:
                continue
            if total.requires_grad:
                grads = list(torch.autograd.grad(total, params, retain_graph=reuse, allow_unused=True))
            elif distributed:
                grads = [None] * len(params)
            else:
                continue
            self._apply(plan, step, params, grads, pending if reuse else None)
        for step, params, grads in pending:
            self._apply(plan, step, params, grads)
        return logged

    def _apply(self, plan: PhasePlan, step: StepPlan, params: list[nn.Parameter], grads,
               defer: list | None = None) -> None:
        """Set the step's gradients and step its optimiser; with ``defer`` given, queue it instead (shared
        forward: every step's gradient is taken before any parameter changes)."""
        if defer is not None:
            defer.append((step, params, grads))
            return
        opt = plan.optimizers[step.optimizer]
        opt.zero_grad(set_to_none=True)
        if self.allreduce is not None:
            # Average gradients across ranks, in one collective together with flags saying which ranks had one:
            # a parameter no rank reached keeps grad None and is skipped by the optimiser, as in one process.
            flags = torch.tensor([0.0 if g is None else 1.0 for g in grads], device=params[0].device)
            full = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            self.allreduce([flags, *full])
            grads = [g if f > 0 else None for g, f in zip(full, flags.tolist())]
        with_grad = []
        for p, g in zip(params, grads):
            if g is not None:
                p.grad = g
                with_grad.append(p)
        if not with_grad:
            return
        if step.clip_grad_value is not None:
            torch.nn.utils.clip_grad_value_(with_grad, step.clip_grad_value)
        if step.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(with_grad, step.clip_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
