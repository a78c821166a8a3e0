"""Scoring a model on a split under one missing condition: the VALID selection after every epoch and TEST."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..interfaces import Condition, Split
from ..loader import condition_masks, iterate
from ..model import IMModel, apply_mask


@dataclass
class EvalResult:
    """The metrics of one split under one condition (``loss``, every metric's keys, the recovery metrics when asked
    for) and the predictions, labels and sample ids they were computed from, in the split's order."""

    metrics: dict[str, float]
    predictions: np.ndarray
    labels: np.ndarray
    ids: list[str]


def eval_seed(seed: int, condition: str) -> int:
    """A seed for evaluation noise (e.g. diffusion sampling) fixed by (run seed, condition)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}|{condition}".encode(), digest_size=8).digest(), "little") >> 1


class RecoveryErrors:
    """Running sums of how far recovered tokens are from the encoder's tokens of the true features, on the
    missing entries only, per modality; and the error all-zero tokens (zero filling) would have there, the scale."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.sq = {n: [0.0, 0] for n in names}
        self.cos = {n: [0.0, 0] for n in names}
        self.zero = 0.0

    def add(self, recovered: dict[str, torch.Tensor], truth: dict[str, torch.Tensor], mask: torch.Tensor) -> None:
        for k, name in enumerate(self.names):
            miss = ~mask[:, k]
            if not bool(miss.any()):
                continue
            r = recovered[name][miss].flatten(1).float()
            t = truth[name][miss].flatten(1).float()
            self.sq[name][0] += float(((r - t) ** 2).mean(dim=1).sum())
            self.zero += float((t ** 2).mean(dim=1).sum())
            self.sq[name][1] += int(miss.sum())
            self.cos[name][0] += float(nn.functional.cosine_similarity(r, t, dim=1, eps=1e-8).sum())
            self.cos[name][1] += int(miss.sum())

    def metrics(self) -> dict[str, float]:
        """``recovery_mse`` / ``recovery_cos`` per modality and over all, and ``recovery_mse_zero``."""
        out: dict[str, float] = {}
        tot_sq, tot_cos, tot_n = 0.0, 0.0, 0
        for name in self.names:
            s, n = self.sq[name]
            if n:
                out[f"recovery_mse/{name}"] = s / n
                out[f"recovery_cos/{name}"] = self.cos[name][0] / n
                tot_sq, tot_cos, tot_n = tot_sq + s, tot_cos + self.cos[name][0], tot_n + n
        if tot_n:
            out["recovery_mse"] = tot_sq / tot_n
            out["recovery_mse_zero"] = self.zero / tot_n
            out["recovery_cos"] = tot_cos / tot_n
        return out


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
    masked = condition_masks(condition, split, model.names, seed, epoch=None)
    preds, labels, ids = [], [], []
    loss_sum, n_total = 0.0, 0
    errors = RecoveryErrors(model.names)
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
                errors.add(res.recovered, model.encoder(full.modalities, full.lengths).value, mask)
    model.train(was_training)
    p = torch.cat(preds).numpy()
    y = torch.cat(labels).numpy()
    out: dict[str, float] = {"loss": loss_sum / max(n_total, 1)}
    for metric in metrics:
        out.update({k: float(v) for k, v in metric(p, y).items()})
    if recovery:
        out.update(errors.metrics())
    return EvalResult(out, p, y, ids)
