"""RoHyDR's discriminator (multimodal semantic level): judges fused vectors real (complete data) or recovered."""

from __future__ import annotations

from torch import Tensor, nn

from .errors import ComponentConfigError
from .layers import Dropout
from .reconstructor import check_norm, make_norm


class Discriminator(nn.Module):
    """MLP ``dim → hidden… → 1`` logit: optional input norm, then Linear → LeakyReLU(0.2) → Dropout per layer.

    Reference (MOSI): BatchNorm → 192 → 128 → 64 → 1 → sigmoid. Here the sigmoid is folded into the loss
    (BCE with logits, numerically stable) and the input norm is a LayerNorm by default: with BatchNorm the real
    and the fake batch are normalised by different statistics, which gives the discriminator a batch-level cue.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], dropout: float, norm: str) -> None:
        super().__init__()
        check_norm(norm, "discriminator")
        if any(h < 1 for h in hidden):
            raise ComponentConfigError(f"discriminator: hidden sizes must be >= 1, got {list(hidden)}")
        layers: list[nn.Module] = [make_norm(norm, dim)]
        width = dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, dim)`` → ``(B,)`` logits (> 0: judged real)."""
        return self.net(x).squeeze(-1)
