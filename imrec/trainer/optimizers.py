"""The optimisers and learning-rate schedulers a phase's ``optimizers`` section names."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import Problem, RecipeError, suggest

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def fast_implementation(name: str, params: Sequence[nn.Parameter]) -> dict[str, bool]:
    """Keyword arguments that select the fastest implementation of optimiser ``name`` for ``params``.

    torch picks the one-tensor-at-a-time loop by default on CPU (~8 small ops per parameter tensor: 24 ms per
    step of RoHyDR's 785 tensors on one core). Adam/AdamW's fused kernel (CPU and CUDA) does the same update in
    one pass (5 ms); SGD gets the multi-tensor ``foreach`` loop. Same update rule, same state dict. Empty (torch's
    default) for any other optimiser or device.
    """
    devices = {p.device.type for p in params}
    floating = all(p.is_floating_point() for p in params)
    if name in ("adam", "adamw") and floating and devices <= {"cpu", "cuda"}:
        return {"fused": True}
    if name == "sgd" and devices <= {"cpu", "cuda"}:
        return {"foreach": True}
    return {}


def build_optimizer(cfg: Any, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser an ``optimizers.<name>`` entry describes, over ``params``, in its fastest implementation."""
    kwargs: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if cfg.name in ("adam", "adamw") and cfg.betas is not None:
        kwargs["betas"] = tuple(cfg.betas)
    if cfg.name == "sgd":
        kwargs["momentum"] = cfg.momentum
    kwargs.update(fast_implementation(cfg.name, params))
    return OPTIMIZERS[cfg.name](params, **kwargs)


# Base classes and schedulers that take other schedulers or callables: not nameable by a recipe.
_NOT_NAMEABLE = ("LRScheduler", "_LRScheduler", "ChainedScheduler", "SequentialLR", "LambdaLR", "MultiplicativeLR")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], where: str, source: str,
                    select_mode: str = "min") -> Any:
    """The ``torch.optim.lr_scheduler`` class named by ``cfg["name"]`` on ``optimizer`` with ``cfg``'s other
    entries as arguments. ReduceLROnPlateau's ``mode`` defaults to the phase's selection direction, since it is
    stepped on the VALID selection metric."""
    sched = torch.optim.lr_scheduler
    known = sorted(n for n in dir(sched) if isinstance(getattr(sched, n), type)
                   and (issubclass(getattr(sched, n), sched.LRScheduler) or n == "ReduceLROnPlateau")
                   and n not in _NOT_NAMEABLE)
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
