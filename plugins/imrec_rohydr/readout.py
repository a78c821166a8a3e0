"""The diffusion-free generator of HDDM's "without diffusion" ablation: a cross-attention readout."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import sinusoidal_positions
from .transformer import ConditionedTransformer, Context


class ConditionReadout(nn.Module):
    """Tokens of a missing modality read straight out of the available ones by cross-attention, in one pass.

    The queries are a learned vector plus sinusoidal positions (one per target time step); a learned
    target-modality embedding modulates every block; every block cross-attends to the condition. Same backbone
    as :class:`~imrec_rohydr.denoiser.Denoiser`, without noise input or timestep.
    """

    def __init__(
        self,
        d_model: int,
        num_targets: int,
        num_sources: int,
        width: int = 64,
        blocks: int = 1,
        num_heads: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.width = width
        self.query = nn.Parameter(torch.randn(width) * 0.02)
        self.target_embedding = nn.Embedding(num_targets, width)
        self.backbone = ConditionedTransformer(d_model, width, blocks, num_heads, num_sources, mlp_ratio, dropout)
        self.out = nn.Linear(width, d_model)

    def encode_context(self, sources: list[tuple[int, Tensor, Tensor]], batch: int) -> Context:
        """See :meth:`ConditionedTransformer.encode_context`."""
        return self.backbone.encode_context(sources, batch)

    def forward(self, target: int, steps: int, context: Context) -> Tensor:
        batch = context.mask.shape[0]
        pos = sinusoidal_positions(steps, self.width, self.query.device, self.query.dtype)
        h = (self.query + pos).expand(batch, steps, self.width)
        cond = self.target_embedding.weight[target].expand(batch, self.width)
        return self.out(self.backbone(h, cond, context))
