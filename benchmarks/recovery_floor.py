"""How predictable is each modality's representation from the others? A linear floor for recovery.

    python benchmarks/recovery_floor.py RUN_DIR [--seed S] [--window 2] [--ridge 10] [--json out.json]

Takes the frozen encoder of a finished run (its final weights, ``phase-<last phase>.pt``), encodes TRAIN and
VALID, and for every target modality fits a ridge regression on TRAIN from the tokens of the other modalities
(each source step with ``--window`` neighbours on each side, plus each source's time mean), predicting every
step of the target, then scores it on VALID. Reported per target and source set: the MSE of the regression, of
mean-filling (the TRAIN mean token) and their ratio (``rel``: 1 = no better than the mean, 0 = perfect), in the
same units as ``recovery_mse/<modality>`` of ``imrec eval RUN_DIR --rates …``. A recoverer whose recovery error
of a modality is far above this linear floor is leaving cross-modal information unused. Padded steps (from
lengths) are left out of the fit and the scores. TEST is not read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from imrec.errors import ImrecError
from imrec.runner import final_model, prepare, resume_recipe
from imrec.runs import atomic_write_json


def _tokens(model: Any, split: Any, batch: int = 256) -> dict[str, np.ndarray]:
    """Encoder tokens ``{modality: (N, T, d)}`` of every sample of a split (all modalities present)."""
    out: dict[str, list[np.ndarray]] = {}
    n = len(split)
    with torch.no_grad():
        for start in range(0, n, batch):
            sl = slice(start, min(n, start + batch))
            mods = {k: torch.as_tensor(np.asarray(v[sl])) for k, v in split.modalities.items()}
            lens = {k: torch.as_tensor(np.asarray(v[sl])) for k, v in split.lengths.items()}
            for k, v in model.encoder(mods, lens).value.items():
                out.setdefault(k, []).append(v.float().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def _valid_steps(split: Any, name: str, steps: int) -> np.ndarray:
    n = len(split)
    if name in split.lengths:
        return np.arange(steps)[None, :] < np.asarray(split.lengths[name])[:, None]
    return np.ones((n, steps), dtype=bool)


def _design(tokens: dict[str, np.ndarray], sources: Sequence[str], steps: int, window: int) -> np.ndarray:
    """``(N, steps, features)``: each source resampled to the target's steps, shifted copies, and its time mean."""
    parts = []
    for s in sources:
        x = tokens[s]
        idx = np.round(np.linspace(0, x.shape[1] - 1, steps)).astype(np.int64)
        x = x[:, idx]
        for d in range(-window, window + 1):
            parts.append(np.roll(x, d, axis=1) if d and steps > 1 else x)
        parts.append(np.repeat(tokens[s].mean(axis=1, keepdims=True), steps, axis=1))
    return np.concatenate(parts, axis=-1)


def floor(run_dir: Path, seed: int | None = None, window: int = 2, ridge: float = 10.0) -> list[dict[str, Any]]:
    recipe = resume_recipe(run_dir)
    prepared = prepare(recipe)
    model = final_model(run_dir, recipe, prepared, recipe.seeds[0] if seed is None else seed)
    train, valid = prepared.splits["train"], prepared.splits["valid"]
    tr, va = _tokens(model, train), _tokens(model, valid)
    names = list(prepared.spec.names)
    rows = []
    for target in names:
        others = [n for n in names if n != target]
        steps = tr[target].shape[1]
        keep_tr = _valid_steps(train, target, steps)
        keep_va = _valid_steps(valid, target, steps)
        y_tr, y_va = tr[target][keep_tr], va[target][keep_va]
        y_mean = y_tr.mean(axis=0)
        base = float(((y_va - y_mean) ** 2).mean())
        source_sets = [others] + ([[s] for s in others] if len(others) > 1 else [])
        for sources in source_sets:
            x_tr = _design(tr, sources, steps, window)[keep_tr]
            x_va = _design(va, sources, steps, window)[keep_va]
            mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
            x_tr, x_va = (x_tr - mu) / sd, (x_va - mu) / sd
            w = np.linalg.solve(x_tr.T @ x_tr + ridge * np.eye(x_tr.shape[1]), x_tr.T @ (y_tr - y_mean))
            mse = float(((x_va @ w + y_mean - y_va) ** 2).mean())
            rows.append({"target": target, "sources": list(sources), "ridge_mse": mse, "mean_fill_mse": base,
                         "rel": mse / base if base > 0 else float("nan")})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--seed", type=int, help="which seed's encoder (default: the run's first seed)")
    p.add_argument("--window", type=int, default=2, help="neighbouring source steps on each side (default 2)")
    p.add_argument("--ridge", type=float, default=10.0, help="ridge penalty on standardised inputs (default 10)")
    p.add_argument("--json", type=Path, help="also write the rows here (atomically)")
    args = p.parse_args(argv)
    try:
        rows = floor(args.run_dir, args.seed, args.window, args.ridge)
    except ImrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'target':<10} {'from':<24} {'ridge MSE':>10} {'mean-fill MSE':>14} {'rel':>6}   (VALID)")
    for r in rows:
        print(f"{r['target']:<10} {'+'.join(r['sources']):<24} {r['ridge_mse']:>10.4f} {r['mean_fill_mse']:>14.4f} "
              f"{r['rel']:>6.2f}")
    if args.json:
        atomic_write_json(args.json, {"run_dir": str(args.run_dir), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
