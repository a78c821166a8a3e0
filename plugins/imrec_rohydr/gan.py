"""RoHyDR's aligner: multimodal reconstructor (MR) + discriminator (multimodal feature and semantic levels)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from imrec import Output

from .discriminator import Discriminator
from .reconstructor import MultimodalReconstructor


class GANAligner(nn.Module):
    """RoHyDR aligner: an MLP (MR) maps the fused vector f_rec toward f_gt, trained by L1 and a discriminator.

    ``value = MR(fused)``. With ``reference`` (training; the fused vector of complete input, f_gt) it emits

    * ``discriminator`` = BCE(D(f_gt.detach()), 1) + BCE(D(value.detach()), 0) — the discriminator judges the
      same post-MR vector the generator is scored on (the reference trained it on pre-MR vectors); its inputs
      are detached, so this loss never reaches MR, fuser or recoverer;
    * ``adversarial`` = BCE(D(value), 1) — reaches MR (and D's parameters, which a recipe must not update with
      it: list only ``aligner.reconstructor`` in that step);
    * ``l1`` = mean |value − f_gt| (not detached: whether it also moves the fuser is the recipe's choice).

    Sub-modules: ``aligner.reconstructor`` (MR), ``aligner.discriminator``. At evaluation no loss is computed.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ("discriminator", "adversarial", "l1")

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (80, 96),
        dropout: float = 0.4,
        norm: str = "layer",
        residual: bool = False,
        incomplete_only: bool = True,
        disc_hidden: Sequence[int] = (128, 64),
        disc_dropout: float = 0.0,
        disc_norm: str = "layer",
    ) -> None:
        super().__init__()
        # The reference runs MR only where something is missing; complete samples go from f_rec to the head.
        # ``incomplete_only: false`` applies it to every sample (the ablation "MR on all samples").
        self.incomplete_only = bool(incomplete_only)
        self.reconstructor = MultimodalReconstructor(dim, tuple(hidden), dropout, norm, residual)
        self.discriminator = Discriminator(dim, tuple(disc_hidden), disc_dropout, disc_norm)

    def forward(self, fused: Tensor, reference: Tensor | None = None) -> Output:
        value = self.reconstructor(fused)
        if reference is None:
            return Output(value=value)
        real = self.discriminator(reference.detach())
        fake = self.discriminator(value.detach())
        judged = self.discriminator(value)
        losses = {
            "discriminator": F.binary_cross_entropy_with_logits(real, real.new_ones(real.shape))
            + F.binary_cross_entropy_with_logits(fake, fake.new_zeros(fake.shape)),
            "adversarial": F.binary_cross_entropy_with_logits(judged, judged.new_ones(judged.shape)),
            "l1": F.l1_loss(value, reference),
        }
        return Output(value=value, losses=losses)
