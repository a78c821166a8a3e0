"""RoHyDR's fusion network (paper θ_f): the Multimodal Transformer (MulT, Tsai et al. 2019) for K modalities."""

from __future__ import annotations

import math
from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .errors import ComponentConfigError
from .layers import Attention, Dropout, FeedForward, check_heads, dropout, sinusoidal_positions, step_mask

POOLS = ("last", "mean")


class CrossModalLayer(nn.Module):
    """One pre-LN MulT layer: (cross- or self-) attention then a ReLU MLP, each with a residual.

    With a ``source`` the layer is MulT's crossmodal attention (eq. 2–3): queries from the target stream, keys and
    values from the (separately layer-normed) source stream.
    """

    def __init__(self, dim: int, num_heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, dropout=attn_dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, 4 * dim, nn.ReLU, relu_dropout)
        self.res_dropout = Dropout(res_dropout)

    def forward(
        self, x: Tensor, source: Tensor | None, key_mask: Tensor | None, query: Tensor | None = None
    ) -> Tensor:
        """``query`` ``(B,)`` (optional): compute the output at that one step per sample only, ``(B, 1, dim)``;
        keys and values still come from every step (the outputs at that step are the same as without it)."""
        h = self.norm_q(x)
        context = h if source is None else self.norm_kv(source)
        if query is not None:
            rows = torch.arange(x.shape[0], device=x.device)
            x, h = x[rows, query].unsqueeze(1), h[rows, query].unsqueeze(1)
        x = x + self.res_dropout(self.attn(h, context, key_mask))
        return x + self.res_dropout(self.ff(self.norm_ff(x)))


class CrossModalTransformer(nn.Module):
    """MulT's TransformerEncoder: scale by √dim, add sinusoidal positions, dropout, ``layers`` layers, final LN.

    Cross-modal when called with a source (target → source attention in every layer), else self-attention.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        layers: int,
        attn_dropout: float,
        relu_dropout: float,
        res_dropout: float,
        embed_dropout: float,
    ) -> None:
        super().__init__()
        self.scale = math.sqrt(dim)
        self.embed_dropout = embed_dropout
        self.layers = nn.ModuleList(
            CrossModalLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def _embed(self, x: Tensor) -> Tensor:
        pos = sinusoidal_positions(x.shape[1], x.shape[2], x.device, x.dtype)
        return dropout(self.scale * x + pos, self.embed_dropout, self.training)

    def forward(
        self, x: Tensor, source: Tensor | None = None, key_mask: Tensor | None = None, query: Tensor | None = None
    ) -> Tensor:
        """``(B, T, dim)`` → ``(B, T, dim)``; with ``query`` ``(B,)`` step indices, only the output at those steps,
        ``(B, dim)``: the last layer then computes one query per sample instead of T (what ``pool: last`` reads)."""
        x = self._embed(x)
        if source is not None:
            source = self._embed(source)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, source, key_mask, query if i == last else None)
        out = self.norm(x)
        return out.squeeze(1) if query is not None else out


class MulTFuser(nn.Module):
    """MulT fusion for K ≥ 2 modalities: a cross-modal transformer per source→target pair, memory per target.

    For each target modality i and each other source j: ``CM_{j→i}`` (``layers`` layers, width ``d_model``,
    target tokens attend to source tokens). The K−1 streams of target i are concatenated on channels into
    ``(B, T_i, (K−1)·d_model)`` and passed through a self-attention memory transformer (``memory_layers`` layers;
    default ``max(layers, 3)`` as in MulT). Each target's stream is pooled to one vector — ``pool: last`` takes
    the last valid step (MulT/RoHyDR; every step has attended the whole sequence), ``pool: mean`` the mean over
    valid steps (robust when the last frames are dropped) — and the K vectors are concatenated:

        out_dim = K · (K − 1) · d_model          (K = 3, d_model = 32: 192, as in the reference)

    Padded steps (from ``lengths``) are masked out of every key set. ``mask`` is not used: recovered and
    available tokens are fused alike.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()
    # Each sample's fused vector depends on that sample alone (layer norms, no batch statistics): the core may
    # fuse a subset of rows, e.g. only the incomplete samples for f_gt (imrec.model.IMModel._fuse_truth; the flag
    # and its default: imrec.interfaces.Fuser).
    independent_samples: ClassVar[bool] = True

    def __init__(
        self,
        modalities: tuple[ModalitySpec, ...],
        d_model: int,
        num_heads: int = 8,
        layers: int = 4,
        memory_layers: int | None = None,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.1,
        res_dropout: float = 0.1,
        embed_dropout: float = 0.2,
        pool: str = "last",
    ) -> None:
        super().__init__()
        self.names = tuple(m.name for m in modalities)
        k = len(self.names)
        if k < 2:
            raise ComponentConfigError(f"rohydr.mult fuses at least 2 modalities; the dataset has {k}")
        if pool not in POOLS:
            raise ComponentConfigError(f"rohydr.mult: pool must be one of {POOLS}, got {pool!r}")
        if layers < 1:
            raise ComponentConfigError(f"rohydr.mult: layers must be >= 1, got {layers}")
        check_heads(d_model, num_heads, "rohydr.mult")
        memory_layers = max(layers, 3) if memory_layers is None else memory_layers
        drops = dict(
            attn_dropout=attn_dropout, relu_dropout=relu_dropout, res_dropout=res_dropout, embed_dropout=embed_dropout
        )
        self.pool = pool
        self.out_dim = k * (k - 1) * d_model
        self.cross = nn.ModuleDict(
            {
                f"{src}_to_{tgt}": CrossModalTransformer(d_model, num_heads, layers, **drops)
                for tgt in self.names
                for src in self.names
                if src != tgt
            }
        )
        self.memory = nn.ModuleDict(
            {tgt: CrossModalTransformer((k - 1) * d_model, num_heads, memory_layers, **drops) for tgt in self.names}
        )

    @staticmethod
    def _last(h: Tensor, valid: Tensor | None) -> Tensor:
        """``(B,)`` index of each sample's last valid step (the last step when there is no padding)."""
        if valid is None:
            return torch.full((h.shape[0],), h.shape[1] - 1, dtype=torch.long, device=h.device)
        return (valid.sum(dim=1) - 1).clamp_min(0)

    def _pool(self, h: Tensor, valid: Tensor | None) -> Tensor:
        if self.pool == "last":
            return h[torch.arange(h.shape[0], device=h.device), self._last(h, valid)]
        if valid is None:
            return h.mean(dim=1)
        w = valid.to(h.dtype)[:, :, None]
        return (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)

    def forward(
        self, tokens: Mapping[str, Tensor], mask: Tensor, names: Sequence[str], lengths: Mapping[str, Tensor]
    ) -> Output:
        valid: dict[str, Tensor | None] = {}
        for name in self.names:
            x = tokens[name]
            valid[name] = step_mask(lengths[name], x.shape[0], x.shape[1], x.device) if name in lengths else None
        fused = []
        for tgt in self.names:
            streams = [
                self.cross[f"{src}_to_{tgt}"](tokens[tgt], tokens[src], valid[src])
                for src in self.names
                if src != tgt
            ]
            memory = torch.cat(streams, dim=-1)
            if self.pool == "last":
                # Only the last valid step is read: the memory's last layer computes that one query per sample.
                fused.append(self.memory[tgt](memory, key_mask=valid[tgt], query=self._last(memory, valid[tgt])))
            else:
                fused.append(self._pool(self.memory[tgt](memory, key_mask=valid[tgt]), valid[tgt]))
        return Output(value=torch.cat(fused, dim=-1))
