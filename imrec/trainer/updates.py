"""How one training batch updates the model: a phase's steps, taken in one of two update modes.

Every step takes the gradient of its weighted loss with respect to exactly the parameters it updates
(``torch.autograd.grad``), so no gradient ever reaches a parameter another step owns; then its optimiser steps.

* :func:`simultaneous_update` (``reuse_forward: true``, the default): one forward pass computes every loss any
  step needs, every step's gradient is taken at the same parameter values, then the optimisers step in order
  (simultaneous updates, as in simultaneous-gradient GAN training).
* :func:`sequential_update` (``reuse_forward: false``): one forward per step, each after the previous step's
  update (the reference code's sequential stages), on the same missing pattern.

:func:`active_steps` leaves out the ``when: missing`` steps on a batch without a missing modality. In a
distributed run (``allreduce`` given) every rank takes the same steps and the same collectives:
:func:`allreduce_gradients` averages each step's gradients across ranks, a rank without a step's losses taking part
with no gradient (:func:`step_gradients`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import TrainingError
from ..interfaces import Batch
from ..model import ForwardResult, IMModel
from .plan import PhasePlan, StepPlan

# (parameters, their gradients; None where the loss does not reach a parameter)
Gradients = tuple[list[nn.Parameter], list[torch.Tensor | None]]
# Averages tensors across ranks in place, in one collective (imrec.distributed): None in one process.
AllReduce = Callable[[Sequence[torch.Tensor]], None]
# The model's forward on the batch, computing the named losses (a set).
Forward = Callable[[set[str]], ForwardResult]


def active_steps(steps: Sequence[StepPlan], complete: bool) -> list[StepPlan]:
    """The steps a batch runs: all of them, less the ``when: missing`` ones when nothing in it is missing."""
    return [s for s in steps if not (s.when == "missing" and complete)]


def check_finite(terms: dict[str, torch.Tensor], phase: str, step: str, epoch: int) -> None:
    """A non-finite loss term stops training with the phase, step, epoch and term that produced it."""
    for n, v in terms.items():
        if not torch.isfinite(v.detach()).all():
            raise TrainingError(
                f"non-finite loss in phase {phase!r}, step {step!r}, epoch {epoch}: loss term "
                f"{n!r} = {float(v.detach())}; lower the learning rate, add clipping, or check the data "
                f"for NaN/inf (`imrec data info`)"
            )


def step_gradients(step: StepPlan, losses: dict[str, torch.Tensor], logged: dict[str, float], phase: str,
                   epoch: int, retain_graph: bool, distributed: bool) -> Gradients | None:
    """The gradients of ``step``'s weighted loss w.r.t. its trainable parameters, each term and the total logged
    into ``logged``; None when the step has nothing to apply (none of its losses on this batch, e.g. recovery
    losses with nothing missing; no trainable parameter; a loss that reaches no parameter). In a distributed run
    the step still takes part in its collective, with no gradient, whenever it has parameters."""
    terms = {n: losses[n] for n in step.losses if n in losses}
    params = [p for p in step.params if p.requires_grad]
    no_gradient = (params, [None] * len(params)) if distributed and params else None
    if not terms:
        return no_gradient
    check_finite(terms, phase, step.name, epoch)
    logged.update({n: float(v.detach()) for n, v in terms.items()})
    total = sum(step.losses[n] * v for n, v in terms.items())
    logged[f"step.{step.name}"] = float(total.detach())
    if not params:
        return None
    if total.requires_grad:
        return params, list(torch.autograd.grad(total, params, retain_graph=retain_graph, allow_unused=True))
    return no_gradient


def allreduce_gradients(params: Sequence[nn.Parameter], grads: Sequence[torch.Tensor | None],
                        allreduce: AllReduce) -> list[torch.Tensor | None]:
    """Gradients averaged across ranks, in one collective together with flags saying which ranks had one (a rank
    without a gradient for a parameter contributes zeros): a parameter no rank reached keeps None and is skipped by
    the optimiser, as in one process."""
    flags = torch.tensor([0.0 if g is None else 1.0 for g in grads], device=params[0].device)
    full = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    allreduce([flags, *full])
    return [g if f > 0 else None for g, f in zip(full, flags.tolist())]


def apply_gradients(optimizer: torch.optim.Optimizer, step: StepPlan, gradients: Gradients,
                    allreduce: AllReduce | None = None) -> None:
    """Set the step's gradients (averaged across ranks with ``allreduce``), clip them as the step says and step its
    optimiser; parameters without a gradient are left alone."""
    params, grads = gradients
    optimizer.zero_grad(set_to_none=True)
    if allreduce is not None:
        grads = allreduce_gradients(params, grads, allreduce)
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
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def simultaneous_update(forward: Forward, plan: PhasePlan, steps: Sequence[StepPlan], phase: str, epoch: int,
                        allreduce: AllReduce | None = None) -> dict[str, float]:
    """One forward for every step; every step's gradient taken at the same parameters before any optimiser steps,
    then the optimisers step in the steps' order. Returns the logged loss terms and step totals."""
    res = forward(plan.need)
    logged: dict[str, float] = {}
    pending: list[tuple[StepPlan, Gradients]] = []
    for step in steps:
        gradients = step_gradients(step, res.losses, logged, phase, epoch, retain_graph=True,
                                   distributed=allreduce is not None)
        if gradients is not None:
            pending.append((step, gradients))
    for step, gradients in pending:
        apply_gradients(plan.optimizers[step.optimizer], step, gradients, allreduce)
    return logged


def sequential_update(forward: Forward, plan: PhasePlan, steps: Sequence[StepPlan], phase: str, epoch: int,
                      allreduce: AllReduce | None = None) -> dict[str, float]:
    """One forward per step, each seeing the parameters the previous step's update left; each step's optimiser
    steps before the next forward. Returns the logged loss terms and step totals."""
    logged: dict[str, float] = {}
    for step in steps:
        res = forward(set(step.losses))
        gradients = step_gradients(step, res.losses, logged, phase, epoch, retain_graph=False,
                                   distributed=allreduce is not None)
        if gradients is not None:
            apply_gradients(plan.optimizers[step.optimizer], step, gradients, allreduce)
    return logged


def train_batch(model: IMModel, phase: Any, plan: PhasePlan, inp: Batch, full: Batch, epoch: int,
                allreduce: AllReduce | None = None, all_true: Callable[[bool], bool] | None = None
                ) -> dict[str, float]:
    """One training batch of ``phase``: ``inp`` (missing modalities zeroed) and ``full`` (the complete features,
    the recovery and ``f_gt`` targets) through the phase's update mode. In a distributed run ``all_true`` tells
    whether every rank's batch is complete: a ``when: missing`` step runs on every rank when any rank's batch has
    something missing. Returns the logged loss terms and step totals."""
    complete = bool(inp.mask.all())
    if allreduce is not None and all_true is not None:
        complete = all_true(complete)
    steps = active_steps(plan.steps, complete)

    def forward(need: set[str]) -> ForwardResult:
        return model(inp, full=full, need=need, bypass=phase.bypass)

    update = simultaneous_update if getattr(phase, "reuse_forward", True) else sequential_update
    return update(forward, plan, steps, phase.name, epoch, allreduce)
