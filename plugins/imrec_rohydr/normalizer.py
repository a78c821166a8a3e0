"""Running per-modality, per-channel statistics of tokens: puts diffusion targets on the unit scale.

The DDPM schedule assumes data of roughly unit variance (its last ᾱ ≈ 4e-5 destroys signal of scale ~1). The
encoder's tokens have no fixed scale, so HDDM diffuses ``(x − μ_m) / σ_m`` and maps samples back. The statistics
are estimated from the AVAILABLE tokens seen in training (never from targets), like BatchNorm's running
statistics, and are stored in checkpoints.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn


class TokenNormalizer(nn.Module):
    """Per-modality running mean/variance of token channels; cumulative average, then an EMA (``momentum``).

    The first ``1 / momentum`` updates average cumulatively (so early batches are not under-weighted); later
    ones follow a moving average, which tracks an encoder that is still being trained.
    """

    def __init__(self, names: Sequence[str], d_model: int, momentum: float = 0.01, eps: float = 1e-5) -> None:
        super().__init__()
        self.index = {name: i for i, name in enumerate(names)}
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("mean", torch.zeros(len(names), d_model))
        self.register_buffer("var", torch.ones(len(names), d_model))
        self.register_buffer("count", torch.zeros(len(names), dtype=torch.long))

    @torch.no_grad()
    def update(self, name: str, tokens: Tensor, valid: Tensor) -> None:
        """Fold in the tokens ``(B, T, d)`` at ``valid`` ``(B, T)`` positions of modality ``name``."""
        x = tokens[valid].float()
        if x.shape[0] < 2:
            return
        k = self.index[name]
        rate = max(1.0 / float(self.count[k].item() + 1), self.momentum)
        self.mean[k].lerp_(x.mean(0).to(self.mean.dtype), rate)
        self.var[k].lerp_(x.var(0).to(self.var.dtype), rate)
        self.count[k] += 1

    def normalize(self, name: str, x: Tensor) -> Tensor:
        k = self.index[name]
        return (x - self.mean[k].to(x.dtype)) / (self.var[k] + self.eps).sqrt().to(x.dtype)

    def denormalize(self, name: str, x: Tensor) -> Tensor:
        k = self.index[name]
        return x * (self.var[k] + self.eps).sqrt().to(x.dtype) + self.mean[k].to(x.dtype)

    def update_from(
        self, tokens: Mapping[str, Tensor], mask: Tensor, names: Sequence[str], valid: Mapping[str, Tensor]
    ) -> None:
        """Update every modality from its available entries (``mask`` column) and valid steps."""
        for k, name in enumerate(names):
            if name in self.index:
                self.update(name, tokens[name], valid[name] & mask[:, k, None])
