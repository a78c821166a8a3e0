"""Regression imputation: one small learned regressor per modality predicts its tokens from the others."""

from __future__ import annotations

import math
from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .pooling import check_tokens, masked_mean, token_steps, valid_steps


class _Regressor(nn.Module):
    """Predicts one target modality's ``(T, d)`` tokens from a context vector of the other modalities.

    ``tokens[t] = template[t] + Σ_r temporal[t, r] · coef_r(context)``: a free per-step template (what mean
    filling would learn) plus a rank-``rank`` temporal basis whose ``d``-dimensional coefficients an MLP reads
    off the context. Cost is ``O(T · rank)`` parameters per target instead of ``O(T · d · hidden)`` for a
    dense output layer, so long sequences (500 steps) stay cheap.
    """

    def __init__(self, context_dim: int, steps: int, d_model: int, hidden: int, rank: int, dropout: float) -> None:
        super().__init__()
        self.rank = max(1, min(rank, steps))
        self.d_model = d_model
        self.mlp = nn.Sequential(
            nn.Linear(context_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, self.rank * d_model),
        )
        self.template = nn.Parameter(torch.zeros(steps, d_model))
        self.temporal = nn.Parameter(torch.randn(steps, self.rank) / math.sqrt(self.rank))

    def forward(self, context: Tensor) -> Tensor:
        coef = self.mlp(context).view(-1, self.rank, self.d_model)
        return self.template + torch.einsum("tr,brd->btd", self.temporal, coef)


class RegressionImputer(nn.Module):
    """Regression imputation: per target modality, an MLP predicts its tokens from the pooled available ones.

    For target modality ``k`` the context is, for every *other* modality ``j``, its tokens mean-pooled over
    valid time steps (zeros when ``j`` is missing) plus a presence indicator, i.e. ``(K − 1) · (d_model + 1)``
    numbers; a per-target regressor (:class:`_Regressor`: 2-layer MLP with width ``hidden`` and a learned
    rank-``rank`` temporal basis) maps it to ``(T_k, d_model)`` tokens. Because the context never contains the
    target itself, the same forward pass serves missing targets and, with ``train_on_available``, available
    ones (whose prediction is then a "leave this modality out" regression).

    Loss ``reconstruction`` (training only, i.e. when ``targets`` are given): mean squared error to the true
    tokens, averaged per (sample, modality) pair over valid time steps and ``d_model``, then over the pairs
    used: the missing ones, plus the available ones when ``train_on_available`` is true (more signal from
    the same batch at no extra forward cost). Default ``true``, measured on synthetic tokens generated from a
    shared latent (K = 3, 6 steps × 8 dims, 512 training samples, batch 64, Adam lr 3e-3, 3 seeds; held-out
    MSE on missing entries, mean filling's being 1.11): after 150 steps, training missingness 0.1 / 0.3 / 0.6
    gave 0.21 / 0.14 / 0.15 with it against 0.34 / 0.18 / 0.16 without; after 600 steps 0.053 / 0.044 / 0.046
    against 0.091 / 0.057 / 0.046. It helps most when few entries are missing and never hurt.

    Output: available entries unchanged, missing ones replaced by the prediction. The prediction depends only
    on time-pooled context, so per-step structure of the target is captured only through the learned
    template and temporal basis (a cheap baseline by design, not a sequence-to-sequence model).
    """

    aux_losses: ClassVar[tuple[str, ...]] = ("reconstruction",)

    def __init__(
        self,
        modalities: Sequence[ModalitySpec],
        d_model: int,
        hidden: int = 128,
        rank: int = 4,
        dropout: float = 0.0,
        train_on_available: bool = True,
    ) -> None:
        super().__init__()
        if hidden < 1 or rank < 1:
            raise ValueError(f"baselines.regression: hidden and rank must be ≥ 1, got hidden={hidden}, rank={rank}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"baselines.regression: dropout must be in [0, 1), got {dropout}")
        self.names = tuple(m.name for m in modalities)
        self.train_on_available = bool(train_on_available)
        context_dim = (len(modalities) - 1) * (int(d_model) + 1)
        self.regressors = nn.ModuleList(
            _Regressor(context_dim, token_steps(m), int(d_model), int(hidden), int(rank), float(dropout))
            for m in modalities
        )

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output:
        check_tokens("baselines.regression", tokens, names, self.names)
        mask = mask.to(torch.bool)
        if set(names) != set(self.names):
            raise ValueError(
                f"baselines.regression: the batch has modalities {tuple(names)} but the regressors were built for "
                f"{self.names}; each reads all the other modalities"
            )
        pooled = {name: masked_mean(tokens[name], valid_steps(lengths, name, tokens[name])) for name in names}
        column = {name: k for k, name in enumerate(names)}

        out: dict[str, Tensor] = {}
        sq_err_sum: Tensor | None = None
        pairs: Tensor | None = None
        for k, name in enumerate(names):
            x = tokens[name]
            # Context in the module's modality order, whatever order the batch lists them in.
            others = [n for n in self.names if n != name]
            present = mask[:, [column[n] for n in others]].to(x.dtype)
            context = torch.cat([pooled[n] for n in others] + [present], dim=-1)
            regressor = self.regressors[self.names.index(name)]
            if x.shape[1] != regressor.template.shape[0]:
                raise ValueError(
                    f"baselines.regression: tokens of {name!r} have {x.shape[1]} time steps but the regressor was "
                    f"built for {regressor.template.shape[0]} (the modality's length); regression imputation needs "
                    f"an encoder that keeps each modality's sequence length"
                )
            pred = regressor(context).to(x.dtype)
            out[name] = torch.where(mask[:, k].view(-1, 1, 1), x, pred)

            if targets is not None:
                # Which (sample, modality k) pairs the loss uses: missing ones, or all when training on available.
                use = torch.ones_like(mask[:, k]) if self.train_on_available else ~mask[:, k]
                valid = valid_steps(lengths, name, x)
                err = (pred - targets[name]).pow(2).mean(dim=-1)  # (B, T)
                if valid is None:
                    per_pair = err.mean(dim=1)
                else:
                    per_pair = torch.where(valid, err, torch.zeros_like(err)).sum(1) / valid.sum(1).clamp(min=1)
                term = torch.where(use, per_pair, torch.zeros_like(per_pair)).sum()
                sq_err_sum = term if sq_err_sum is None else sq_err_sum + term
                pairs = use.sum() if pairs is None else pairs + use.sum()

        losses: dict[str, Tensor] = {}
        if targets is not None and sq_err_sum is not None and pairs is not None:
            # Always emitted in training (0 with a live graph when no pair is used), so a step never fails for
            # a batch without missing entries.
            losses["reconstruction"] = sq_err_sum / pairs.clamp(min=1).to(sq_err_sum.dtype)
        return Output(value=out, losses=losses)
