"""The "without GAN" ablation of RoHyDR's aligner: the multimodal reconstructor alone, trained with L1."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from imrec import Output

from .reconstructor import MultimodalReconstructor


class MRAligner(nn.Module):
    """RoHyDR aligner without GAN: an MLP (MR) maps the fused vector f_rec toward f_gt, trained by L1 only.

    ``value = MR(fused)``; with ``reference`` (training) it emits ``l1`` = mean |value − reference|. Same MR as
    ``rohydr.gan`` (sub-module ``aligner.reconstructor``), for the ablation without the adversarial level.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ("l1",)

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (80, 96),
        dropout: float = 0.4,
        norm: str = "layer",
        residual: bool = False,
        incomplete_only: bool = True,
    ) -> None:
        super().__init__()
        # The reference runs MR only where something is missing; complete samples go from f_rec to the head.
        # ``incomplete_only: false`` applies it to every sample (the ablation "MR on all samples").
        self.incomplete_only = bool(incomplete_only)
        self.reconstructor = MultimodalReconstructor(dim, tuple(hidden), dropout, norm, residual)

    def forward(self, fused: Tensor, reference: Tensor | None = None) -> Output:
        value = self.reconstructor(fused)
        if reference is None:
            return Output(value=value)
        return Output(value=value, losses={"l1": F.l1_loss(value, reference)})
