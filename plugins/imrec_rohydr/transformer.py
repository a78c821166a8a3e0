"""The transformer backbone of HDDM's networks: a target sequence conditioned by a vector and by cross-attention.

Used by the denoiser (the vector is timestep + target-modality embedding) and by the diffusion-free readout of
the "without diffusion" ablation (the vector is the target-modality embedding). Each block is a DiT block with
adaLN-Zero modulation (Peebles & Xie 2023, §3.2) plus a cross-attention sub-layer to the condition tokens, which is
how the paper conditions every denoising step on the available modalities.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .layers import Attention, FeedForward, check_heads, sinusoidal_positions


@dataclass
class Context:
    """Condition tokens projected once into every block's cross-attention keys/values, plus their key mask.

    A sampler queries the network many times against the same condition; projecting it once saves that work.
    """

    keys_values: list[tuple[Tensor, Tensor]]
    mask: Tensor  # (N, L) True = a key that may be attended

    def take(self, rows: Tensor) -> "Context":
        """The context of a subset of the samples (rows of the batch)."""
        return Context([(k[rows], v[rows]) for k, v in self.keys_values], self.mask[rows])


def _compact(context: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop masked keys: each row's valid tokens first (stable order), cut to the largest valid count.

    Attention is invariant to the order of its keys and gives masked keys weight 0, so this changes no output;
    it removes the cost of keys nobody attends to. With K = 3 at MR 2/3 every sample has one source available,
    so the condition shrinks from 1 + 2T to 1 + T keys (half the cross-attention work of every denoiser call).
    """
    keep = int(mask.sum(dim=1).max())
    if keep == mask.shape[1]:
        return context, mask
    order = torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices[:, :keep]
    return context.gather(1, order[:, :, None].expand(-1, -1, context.shape[2])), mask.gather(1, order)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1.0 + scale[:, None]) + shift[:, None]


class ConditionedBlock(nn.Module):
    """Self-attention, cross-attention and MLP sub-layers, each pre-normed, modulated and gated by a vector."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False)
        self.self_attn = Attention(width, num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False)
        self.cross_attn = Attention(width, num_heads, dropout=dropout)
        self.norm3 = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = FeedForward(width, mlp_ratio * width, nn.GELU, dropout)
        # adaLN-Zero: shift, scale, gate for each of the 3 sub-layers; zero-initialised so each block starts as
        # the identity (DiT §3.2), which keeps a freshly built network's ε̂ at exactly 0.
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 9 * width))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: Tensor, cond: Tensor, kv: tuple[Tensor, Tensor], key_mask: Tensor) -> Tensor:
        s1, c1, g1, s2, c2, g2, s3, c3, g3 = self.modulation(cond).chunk(9, dim=-1)
        x = x + g1[:, None] * self.self_attn(_modulate(self.norm1(x), s1, c1))
        x = x + g2[:, None] * self.cross_attn.attend(_modulate(self.norm2(x), s2, c2), kv[0], kv[1], key_mask)
        return x + g3[:, None] * self.mlp(_modulate(self.norm3(x), s3, c3))


class ConditionedTransformer(nn.Module):
    """Blocks of :class:`ConditionedBlock` and the encoder of the condition (available modalities' tokens).

    The condition of a sample is the concatenation over source modalities ``j`` of
    ``Linear(tokens_j) + source_embedding[j] + position`` plus one learned always-valid "null" token: a sample with
    no usable source (or a source with every step padded) still has a key to attend to, and the network can
    learn to ignore the condition through it.
    """

    def __init__(
        self, d_model: int, width: int, blocks: int, num_heads: int, num_sources: int, mlp_ratio: int, dropout: float
    ) -> None:
        super().__init__()
        check_heads(width, num_heads, "HDDM network")
        self.width = width
        self.context_proj = nn.Linear(d_model, width)
        self.source_embedding = nn.Embedding(num_sources, width)
        self.null = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.context_norm = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(ConditionedBlock(width, num_heads, mlp_ratio, dropout) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        nn.init.zeros_(self.final_modulation[1].weight)
        nn.init.zeros_(self.final_modulation[1].bias)

    def encode_context(self, sources: list[tuple[int, Tensor, Tensor]], batch: int) -> Context:
        """Condition of ``batch`` samples from ``sources`` (possibly none): ``(source index, tokens (N, T_j,
        d_model), valid (N, T_j) bool)`` per source modality."""
        parts = [self.null.expand(batch, 1, self.width)]
        masks = [torch.ones(batch, 1, dtype=torch.bool, device=self.null.device)]
        for index, tokens, valid in sources:
            steps = tokens.shape[1]
            pos = sinusoidal_positions(steps, self.width, tokens.device, tokens.dtype)
            parts.append(self.context_proj(tokens) + self.source_embedding.weight[index] + pos)
            masks.append(valid)
        context, mask = _compact(torch.cat(parts, dim=1), torch.cat(masks, dim=1))
        context = self.context_norm(context)
        return Context([b.cross_attn.keys_values(context) for b in self.blocks], mask)

    def forward(self, x: Tensor, cond: Tensor, context: Context) -> Tensor:
        """``x`` ``(N, T, width)``, ``cond`` ``(N, width)`` → ``(N, T, width)``, final-normed and modulated."""
        for block, kv in zip(self.blocks, context.keys_values):
            x = block(x, cond, kv, context.mask)
        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)
        return _modulate(self.final_norm(x), shift, scale)
