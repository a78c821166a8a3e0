"""Late fusion: per-modality representations averaged over the available modalities (a fuser)."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .pooling import check_tokens, masked_mean, valid_steps


class LateFusion(nn.Module):
    """Late fusion of per-modality representations: the mean over AVAILABLE modalities only (no recovery needed).

    Each modality has its own encoder: tokens mean-pooled over valid time steps, then an MLP
    ``d_model → hidden → hidden`` (Linear, GELU, dropout, Linear). The fused vector is the average of these
    representations over the modalities that are available in the input (``mask``), so a missing modality
    contributes nothing: neither its zeros nor whatever a recoverer may have put in its place (its tokens are
    replaced by zeros before they are read, so even non-finite values cannot leak). The recipe's shared head
    makes the prediction from this ``out_dim = hidden`` vector. A sample with no available modality gets the
    zero vector.

    No auxiliary losses: this is late fusion of representations, not of per-modality predictions.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, modalities: Sequence[ModalitySpec], d_model: int, hidden: int = 128, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"baselines.late_fusion: hidden must be ≥ 1, got {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"baselines.late_fusion: dropout must be in [0, 1), got {dropout}")
        self.names = tuple(m.name for m in modalities)
        self.out_dim = int(hidden)
        self.encoders = nn.ModuleList(
            nn.Sequential(
                nn.Linear(int(d_model), self.out_dim),
                nn.GELU(),
                nn.Dropout(float(dropout)),
                nn.Linear(self.out_dim, self.out_dim),
            )
            for _ in modalities
        )

    def forward(
        self, tokens: Mapping[str, Tensor], mask: Tensor, names: Sequence[str], lengths: Mapping[str, Tensor]
    ) -> Output:
        check_tokens("baselines.late_fusion", tokens, names, self.names)
        mask = mask.to(torch.bool)
        total: Tensor | None = None
        for k, name in enumerate(names):
            x = tokens[name]
            keep = mask[:, k]
            # Zero the unavailable entries before anything reads them (where, not multiply: NaN · 0 = NaN).
            x = torch.where(keep.view(-1, 1, 1), x, torch.zeros((), dtype=x.dtype, device=x.device))
            rep = self.encoders[self.names.index(name)](masked_mean(x, valid_steps(lengths, name, x)))
            rep = torch.where(keep.unsqueeze(-1), rep, torch.zeros((), dtype=rep.dtype, device=rep.device))
            total = rep if total is None else total + rep
        if total is None:
            raise ValueError("baselines.late_fusion: a batch needs at least one modality")
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(total.dtype)
        return Output(value=total / count)
