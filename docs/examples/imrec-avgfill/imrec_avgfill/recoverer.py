"""Fill each missing modality with the time-averaged tokens of the modalities that are present."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output


class AverageFill(nn.Module):
    """Missing modality ← mean of the available modalities' time-averaged tokens, times a learned scale."""

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, d_model: int, scale: float = 1.0):
        super().__init__()
        # A learned per-channel scale, so the plugin also shows parameters being trained by a recipe step.
        self.scale = nn.Parameter(torch.full((d_model,), float(scale)))

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output:
        pooled = torch.stack([tokens[n].mean(dim=1) for n in names], dim=1)  # (B, K, d); missing ones are zero
        weights = mask.to(pooled.dtype).unsqueeze(-1)
        average = (pooled * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, d)
        out = {}
        for k, name in enumerate(names):
            fill = (average * self.scale).unsqueeze(1).expand_as(tokens[name])
            keep = mask[:, k].view(-1, 1, 1)
            out[name] = torch.where(keep, tokens[name], fill)
        return Output(out)
