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

One concern per module:

* :mod:`~imrec.trainer.plan` — a phase's plan: frozen parts, each parameter's optimiser, each step's parameters;
* :mod:`~imrec.trainer.optimizers` — the optimisers (fastest implementation) and learning-rate schedulers;
* :mod:`~imrec.trainer.updates` — one batch's steps in the two update modes, ``when: missing``, distributed
  gradients;
* :mod:`~imrec.trainer.evaluation` — scoring a split under one condition (VALID selection, TEST);
* :mod:`~imrec.trainer.rng` — seeding and the random-number state saved for resume;
* :mod:`~imrec.trainer.memory` — freed heap memory given back between training and evaluation;
* :mod:`~imrec.trainer.loop` — :class:`Trainer`: phases, epochs, selection, checkpoints, resume.

The names below are the trainer's public API, importable from ``imrec.trainer`` itself.
"""

from .evaluation import EvalResult, eval_seed, evaluate
from .loop import EpochLog, Trainer
from .memory import release_freed_memory
from .optimizers import OPTIMIZERS, build_optimizer, build_scheduler, fast_implementation, step_scheduler
from .plan import PhasePlan, StepPlan, phase_epochs, plan_phase
from .rng import rng_state, seed_everything, set_rng_state
from .updates import (
    active_steps,
    allreduce_gradients,
    apply_gradients,
    sequential_update,
    simultaneous_update,
    step_gradients,
    train_batch,
)

__all__ = [
    "OPTIMIZERS", "EpochLog", "EvalResult", "PhasePlan", "StepPlan", "Trainer", "active_steps", "allreduce_gradients",
    "apply_gradients", "build_optimizer", "build_scheduler", "eval_seed", "evaluate", "fast_implementation",
    "phase_epochs", "plan_phase", "release_freed_memory", "rng_state", "seed_everything", "sequential_update",
    "set_rng_state", "simultaneous_update", "step_gradients", "step_scheduler", "train_batch",
]
