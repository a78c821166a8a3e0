"""Building blocks shared by RoHyDR's components: positional/timestep encodings, masks, attention.

Attention goes through :func:`torch.nn.functional.scaled_dot_product_attention` (SDPA): on a 2-core CPU it is
about 10× faster than :class:`torch.nn.MultiheadAttention` at this project's sizes, and it uses the fused
kernels on CUDA. Dropout on CPU draws its mask from 16-bit random integers (:func:`dropout`): torch's CPU
Bernoulli sampler costs ~8 ns per element, which made dropout the largest single cost of a MulT training pass.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ComponentConfigError


def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(length, dim)`` sine/cosine position encodings (Vaswani et al. 2017, §3.5).

    Cached per (length, dim, device, dtype): a training batch of RoHyDR asks for them ~50 times. The tensor is
    shared: do not modify it in place.
    """
    return _positions(int(length), int(dim), torch.device(device), dtype)


@functools.lru_cache(maxsize=64)
def _positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor, whatever mode the first caller is in
        return sinusoidal_embedding(torch.arange(length, device=device), dim).to(dtype)


def sinusoidal_embedding(values: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``(N, dim)`` sine/cosine embedding of ``N`` (integer or real) values: positions or diffusion timesteps."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device, dtype=torch.float32) / half)
    args = values.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def step_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """``(batch, steps)`` bool, True on valid time steps (all True when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    return torch.arange(steps, device=device)[None, :] < lengths.to(device).view(-1, 1)


def _keep_mask(x: Tensor, p: float) -> Tensor:
    """Bool keep-mask of ``x``'s shape, True with probability 1 − ``p`` (resolved to 1/65536): full-range random
    int64 words viewed as four int16 lanes each, ~5× cheaper on CPU than per-element Bernoulli draws."""
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    return words.view(torch.int16)[:n].view(x.shape) >= int(round(p * 65536)) - 32768


class _ReLUMaskedScale(torch.autograd.Function):
    """``relu(x) · keep / (1 − p)``, keeping only its output for backward: the output is positive exactly where
    the gradient passes (ReLU open and kept), and the next layer keeps the same tensor anyway, so the pair costs
    no memory of its own (ReLU then dropout would keep the ReLU output and a float mask: 8 bytes/element)."""

    @staticmethod
    def forward(ctx: object, x: Tensor, keep: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        out = (x.clamp_min(0.0) * keep).mul_(scale)
        ctx.save_for_backward(out)  # type: ignore[attr-defined]
        ctx.scale = scale  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        (out,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.ops.aten.threshold_backward(grad, out, 0.0).mul_(ctx.scale), None, None  # type: ignore[attr-defined]


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout (zero with probability ``p``, scale the rest by 1/(1−p)).

    On CUDA (and elsewhere) this is :func:`torch.nn.functional.dropout`. On CPU the keep-mask comes from full-range
    random int64 words viewed as four int16 lanes each (``p`` resolved to 1/65536): ~5× cheaper than
    ``F.dropout``'s per-element Bernoulli draws, and equally driven by the global (seeded) CPU generator.
    (A bool mask kept by a custom autograd function would save 3 bytes per element of activation memory but
    costs ~4 % of a RoHyDR training batch; only the ReLU + dropout pair is fused, :func:`relu_dropout`.)
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training=True)
    # (bool → float, then scale in place: measured faster on CPU than ``torch.where(keep, scale, 0.0)``.)
    return x * _keep_mask(x, p).to(x.dtype).mul_(1.0 / (1.0 - p))


def relu_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``dropout(relu(x), p, training)`` — the same values, the same random draws — with half the activation
    memory in training on CPU (:class:`_ReLUMaskedScale`)."""
    if not training or p == 0.0 or x.device.type != "cpu" or p >= 1.0:
        return dropout(F.relu(x), p, training)
    return _ReLUMaskedScale.apply(x, _keep_mask(x, p), 1.0 / (1.0 - p))


class Dropout(nn.Module):
    """Module form of :func:`dropout`."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_heads(width: int, num_heads: int, what: str) -> None:
    """Raise a clear error when ``width`` cannot be split into ``num_heads`` heads."""
    if num_heads < 1 or width % num_heads:
        raise ComponentConfigError(
            f"{what}: width {width} is not divisible by num_heads={num_heads}; choose num_heads dividing {width}"
        )


class Attention(nn.Module):
    """Multi-head (self- or cross-) attention with a key padding mask, through SDPA.

    A query row whose keys are all masked attends to nothing: its attention read-out is zero (instead of SDPA's
    NaN), so a sample with no valid key (e.g. a zero-length sequence) cannot poison a batch.
    """

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        check_heads(dim, num_heads, "attention")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def keys_values(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Project ``context`` ``(N, L, kv_dim)`` into per-head keys and values ``(N, H, L, dim/H)``.

        Split out so a caller attending repeatedly to the same context (the diffusion sampler) projects it once.
        """
        n, length, _ = context.shape
        # Two products on the halves of ``kv``'s weight (the same parameters as one ``2·dim`` projection): each
        # of k and v is then a transposed view of a dense tensor, so SDPA's backward returns their gradients in
        # that layout and no strided copy is needed to get back to the projection (one product split in two
        # halves was such a copy, ~6 % of a MOSI training batch).
        dim = self.kv.out_features // 2
        weight, bias = self.kv.weight, self.kv.bias
        k = F.linear(context, weight[:dim], bias[:dim]).view(n, length, self.num_heads, -1).transpose(1, 2)
        v = F.linear(context, weight[dim:], bias[dim:]).view(n, length, self.num_heads, -1).transpose(1, 2)
        return k, v

    def attend(self, x: Tensor, k: Tensor, v: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Attend from ``x`` ``(N, T, dim)`` to precomputed keys/values; ``key_mask`` ``(N, L)`` True = valid."""
        n, steps, dim = x.shape
        q = self.q(x).view(n, steps, self.num_heads, -1).transpose(1, 2)
        attn_mask = None
        empty = None
        if key_mask is not None:
            # Without a host sync (no `if empty.any()`): rows with no valid key attend everywhere, then are zeroed.
            empty = ~key_mask.any(dim=-1)
            attn_mask = (key_mask | empty[:, None])[:, None, None, :]
        if self.training and self.dropout > 0.0 and x.device.type == "cpu":
            # SDPA's CPU dropout falls back to its math kernel with Bernoulli draws; the explicit form with the
            # fast CPU dropout on the attention weights is ~2× cheaper.
            scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            out = dropout(scores.softmax(dim=-1), self.dropout, True) @ v
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
            )
        out = out.transpose(1, 2).reshape(n, steps, dim)
        if empty is not None:
            out = torch.where(empty[:, None, None], 0.0, out)
        return self.out(out)

    def forward(self, x: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        k, v = self.keys_values(x if context is None else context)
        return self.attend(x, k, v, key_mask)


class FeedForward(nn.Module):
    """Position-wise MLP ``dim → hidden → dim``."""

    def __init__(self, dim: int, hidden: int, activation: type[nn.Module] = nn.GELU, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), activation(), Dropout(dropout), nn.Linear(hidden, dim))
        self._relu = activation is nn.ReLU

    def forward(self, x: Tensor) -> Tensor:
        if self._relu:  # ReLU + dropout fused: the same values, less activation memory (relu_dropout)
            first, _, drop, last = self.net
            return last(relu_dropout(first(x), drop.p, drop.training))
        return self.net(x)
