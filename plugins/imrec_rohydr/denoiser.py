"""HDDM's ε-prediction network: a small DiT with cross-attention to the available modalities."""

from __future__ import annotations

from torch import Tensor, nn

from .layers import sinusoidal_embedding, sinusoidal_positions
from .transformer import ConditionedTransformer, Context


class Denoiser(nn.Module):
    """ε̂(x_t, t, target, condition): predicts the noise in a noisy token sequence of one target modality.

    ``x_t`` ``(N, T, d_model)`` is embedded (Linear + sinusoidal positions); the timestep ``t`` (sinusoidal →
    MLP) plus a learned target-modality embedding modulate every block (adaLN-Zero); every block cross-attends to
    the condition (:meth:`encode_context`). The output layer is zero-initialised (ε̂ = 0 at the start).
    ``num_targets`` = 1 gives a per-modality network (the target embedding is then a learned constant).
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
        self.embed = nn.Linear(d_model, width)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.target_embedding = nn.Embedding(num_targets, width)
        self.backbone = ConditionedTransformer(d_model, width, blocks, num_heads, num_sources, mlp_ratio, dropout)
        self.out = nn.Linear(width, d_model)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def encode_context(self, sources: list[tuple[int, Tensor, Tensor]], batch: int) -> Context:
        """See :meth:`ConditionedTransformer.encode_context`."""
        return self.backbone.encode_context(sources, batch)

    def forward(self, x_t: Tensor, t: Tensor, target: int, context: Context) -> Tensor:
        steps = x_t.shape[1]
        h = self.embed(x_t) + sinusoidal_positions(steps, self.width, x_t.device, x_t.dtype)
        cond = self.time_mlp(sinusoidal_embedding(t, self.width).to(h.dtype)) + self.target_embedding.weight[target]
        return self.out(self.backbone(h, cond, context))
