"""Serialisation: the resolved recipe as plain data (``Recipe.resolved``) and as YAML (what ``imrec cat`` prints
and every run directory's ``recipe.yaml`` holds). Keys added after runs were recorded are written only when set,
so older recipes resolve exactly as before (bench cells compare ``recipe.yaml``)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import yaml

from .dialect import Dumper

if TYPE_CHECKING:
    from .recipe import ComponentConfig, OptimizerConfig, PhaseConfig, Recipe, SelectConfig


def to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML (every default written out); loading it back gives an equal ``Recipe``."""
    head = f"# imrec recipe {recipe.name!r}, resolved"
    if recipe.source is not None:
        head += f" from {recipe.source}"
    lines = [head]
    if recipe.overrides:
        lines.append("# overrides: " + " ".join(o.replace("\n", " ") for o in recipe.overrides))
    body = yaml.dump(recipe.resolved, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=120)
    return "\n".join(lines) + "\n" + body


def plain(value: Any) -> Any:
    """YAML-ready copy: tuples become lists, mappings and lists are copied."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def plain_component(cfg: ComponentConfig | None) -> dict[str, Any] | None:
    return None if cfg is None else {"name": cfg.name, **plain(cfg.kwargs)}


def _select(s: SelectConfig) -> dict[str, Any]:
    return {"metric": s.metric, "mode": s.mode}


def _optimizer(o: OptimizerConfig) -> dict[str, Any]:
    out = {"name": o.name, "lr": o.lr, "weight_decay": o.weight_decay,
           "betas": None if o.betas is None else list(o.betas), "momentum": o.momentum, "params": list(o.params)}
    if o.scheduler is not None:  # written only when set, so recipes without one resolve exactly as before
        out["scheduler"] = copy.deepcopy(o.scheduler)
    return out


def _phase(p: PhaseConfig) -> dict[str, Any]:
    return {
        "name": p.name,
        "epochs": p.epochs,
        **({"min_steps": p.min_steps} if p.min_steps is not None else {}),  # written only when set
        "protocol": plain_component(p.protocol),
        "early_stop": p.early_stop,
        "select": _select(p.select),
        "freeze": list(p.freeze),
        "init_from": p.init_from,
        "reuse_forward": p.reuse_forward,
        "bypass": list(p.bypass),
        "optimizers": {
            n: _optimizer(o) for n, o in p.optimizers.items()
        },
        "steps": [
            {"name": s.name, "losses": dict(s.losses), "optimizer": s.optimizer,
             "update": None if s.update is None else list(s.update), "clip_grad_value": s.clip_grad_value,
             "clip_grad_norm": s.clip_grad_norm, "when": s.when}
            for s in p.steps
        ],
    }


def plain_recipe(r: Recipe) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "data": plain_component(r.data),
        "model": {slot: plain_component(cfg) for slot, cfg in r.model.items()},
        "train": {
            "batch_size": r.train.batch_size,
            "eval_batch_size": r.train.eval_batch_size,
            "protocol": plain_component(r.train.protocol),
            "select": _select(r.train.select),
            "early_stop": r.train.early_stop,
            "phases": [_phase(p) for p in r.train.phases],
        },
        "eval": {
            "conditions": [plain_component(c) for c in r.eval.conditions],
            "metrics": None if r.eval.metrics is None else list(r.eval.metrics),
            "recovery_metrics": r.eval.recovery_metrics,
            **({"per_rate": True} if r.eval.per_rate else {}),  # written only when set: older runs resolve as before
        },
        "seeds": list(r.seeds),
        "device": r.device,
        "deterministic": r.deterministic,
        "output_dir": r.output_dir,
        # Only when set: recipes without trackers resolve exactly as before (bench cells compare recipe.yaml).
        **({"log": [plain_component(c) for c in r.log]} if r.log else {}),
        # Written only when set, so recipes (and run directories) that never chose threads read as before.
        **({"threads": r.threads} if r.threads is not None else {}),
    }
