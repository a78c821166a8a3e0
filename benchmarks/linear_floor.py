"""The linear floor of a board: what a linear model on the same features, split, masks and metrics scores.

    python benchmarks/linear_floor.py RECIPE [override ...] [--seed S] [--json out.json]

Before a neural row is published it is compared with this floor (a result below it is a bug report until
explained). The recipe gives the dataset (with its preprocessing, e.g. ``standardize: train``), the evaluation
conditions and the metrics; the masks are exactly those of ``imrec run`` for ``--seed`` (the conditions depend
only on seed, condition and sample id). Three linear predictors, each with its penalty chosen on VALID only
(complete VALID; ridge for regression, L2 multinomial logistic regression for classification):

- ``complete``: one model on every modality, concatenated (vectors, or time means of sequences);
- ``mean_fill``: that model, with each missing modality replaced by its TRAIN mean;
- ``per_pattern``: one model per availability pattern, trained on complete TRAIN data restricted to the
  available modalities (the bar a recovering model should clear: it uses no recovered data at all);
- ``only:<modality>``: one model per single modality, on complete TEST (e.g. the text-only score).

TEST is read once, for the final scores; nothing is tuned on it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Any, Callable, Sequence

import numpy as np
from scipy import optimize

from imrec.config import load_recipe
from imrec.loader import condition_masks
from imrec.runner import prepare

PENALTIES = tuple(10.0**e for e in range(-3, 6))  # 1e-3 … 1e5


def _vectors(split: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """One vector per sample and modality (sequences: the mean over valid steps)."""
    out = {}
    for n in names:
        x = np.asarray(split.modalities[n], dtype=np.float64)
        if x.ndim == 3:
            lens = split.lengths.get(n)
            if lens is None:
                x = x.mean(axis=1)
            else:
                keep = (np.arange(x.shape[1])[None, :] < lens[:, None])[..., None]
                x = (x * keep).sum(axis=1) / np.maximum(lens, 1)[:, None]
        out[n] = x
    return out


class Ridge:
    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Ridge":
        self.mu, self.ym = x.mean(0), y.mean()
        xc = x - self.mu
        a = xc.T @ xc + self.penalty * np.eye(x.shape[1])
        self.w = np.linalg.solve(a, xc.T @ (y - self.ym))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu) @ self.w + self.ym


class Logistic:
    """Multinomial logistic regression with an L2 penalty on the weights, fitted by L-BFGS (scipy)."""

    def __init__(self, penalty: float, classes: int) -> None:
        self.penalty, self.classes = penalty, classes

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Logistic":
        n, d = x.shape
        c = self.classes
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-12
        z = (x - self.mu) / self.sd
        onehot = np.eye(c)[y]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[: d * c].reshape(d, c), theta[d * c:]
            logits = z @ w + b
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            nll = -np.log(np.clip((p * onehot).sum(1), 1e-300, None)).mean()
            g = (p - onehot) / n
            return (nll + 0.5 * self.penalty / n * (w**2).sum(),
                    np.concatenate([(z.T @ g + self.penalty / n * w).ravel(), g.sum(0)]))

        res = optimize.minimize(loss, np.zeros(d * c + c), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        self.w, self.b = res.x[: d * c].reshape(d, c), res.x[d * c:]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        logits = ((x - self.mu) / self.sd) @ self.w + self.b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)


def _select(make: Callable[[float], Any], xtr, ytr, xva, yva, score: Callable[[np.ndarray, np.ndarray], float]):
    """The penalty with the best VALID score (higher is better), refitted model returned."""
    best = None
    for pen in PENALTIES:
        model = make(pen).fit(xtr, ytr)
        s = score(model.predict(xva), yva)
        if best is None or s > best[0]:
            best = (s, pen, model)
    return best[2], best[1]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--seed", type=int, default=None, help="mask seed (default: the recipe's first seed)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    recipe = load_recipe(args.recipe, args.overrides)
    prepared = prepare(recipe)
    spec, names = prepared.spec, list(prepared.spec.names)
    seed = args.seed if args.seed is not None else recipe.seeds[0]
    classification = spec.task.kind == "classification"
    tr, va, te = (prepared.splits[s] for s in ("train", "valid", "test"))
    vtr, vva, vte = (_vectors(s, names) for s in (tr, va, te))
    ytr, yva, yte = tr.labels, va.labels, te.labels
    metric_fns = prepared.metrics

    def metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in metric_fns:
            out.update(m(pred, y))
        return out

    if classification:
        c = int(spec.task.num_classes)
        make = lambda pen: Logistic(pen, c)  # noqa: E731
        valid_score = lambda p, y: float((p.argmax(1) == y).mean())  # noqa: E731
    else:
        make = Ridge
        valid_score = lambda p, y: -float(np.abs(p - y).mean())  # noqa: E731 — VALID MAE, as the recipes select

    def cat(v: dict[str, np.ndarray], subset: Sequence[str]) -> np.ndarray:
        return np.concatenate([v[n] for n in subset], axis=1)

    models: dict[tuple[str, ...], Any] = {}
    chosen: dict[str, float] = {}
    for r in range(1, len(names) + 1):
        for subset in itertools.combinations(names, r):
            model, pen = _select(make, cat(vtr, subset), ytr, cat(vva, subset), yva, valid_score)
            models[subset], chosen["+".join(subset)] = model, pen
    full = tuple(names)
    train_mean = {n: vtr[n].mean(0) for n in names}
    results: dict[str, dict[str, dict[str, float]]] = {"complete": {}, "mean_fill": {}, "per_pattern": {}}
    results["complete"]["complete"] = metrics(models[full].predict(cat(vte, full)), yte)
    for n in names:
        results.setdefault(f"only:{n}", {})["complete"] = metrics(models[(n,)].predict(vte[n]), yte)
    for cond in prepared.eval_conditions:
        mask = condition_masks(cond, te, names, seed, epoch=None).mask
        filled = {n: np.where(mask[:, k:k + 1], vte[n], train_mean[n]) for k, n in enumerate(names)}
        results["mean_fill"][cond.name] = metrics(models[full].predict(cat(filled, full)), yte)
        pred = None
        for pattern in {tuple(row) for row in mask.tolist()}:
            rows = np.flatnonzero((mask == np.array(pattern)).all(1))
            subset = tuple(n for n, keep in zip(names, pattern) if keep)
            p = models[subset].predict(cat(vte, subset)[rows])
            if pred is None:
                pred = np.zeros((len(yte), *p.shape[1:]))
            pred[rows] = p
        results["per_pattern"][cond.name] = metrics(pred, yte)
    report = {"recipe": recipe.name, "seed": seed, "task": spec.task.kind, "penalties": chosen, "results": results}
    shown = ["acc", "f1_macro"] if classification else ["acc2_non0", "f1_non0", "acc7", "mae", "corr"]
    print(f"{recipe.name}: linear floor on TEST (penalties chosen on VALID), mask seed {seed}")
    for method, per in results.items():
        for cond, vals in per.items():
            cells = "  ".join(f"{m}={vals[m] * (100 if m not in ('mae', 'corr') else 1):.2f}" for m in shown if m in vals)
            print(f"  {method:<14} {cond:<28} {cells}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
