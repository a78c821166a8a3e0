"""RoHyDR's multimodal reconstructor (MR, multimodal feature level): an MLP mapping f_rec toward f_gt."""

from __future__ import annotations

from torch import Tensor, nn

from .errors import ComponentConfigError
from .layers import Dropout

NORMS = ("layer", "batch", "none")


def make_norm(kind: str, dim: int) -> nn.Module:
    """LayerNorm, BatchNorm1d or nothing, by name (one of :data:`NORMS`)."""
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    return nn.Identity()


def check_norm(kind: str, what: str) -> None:
    if kind not in NORMS:
        raise ComponentConfigError(f"{what}: norm must be one of {NORMS}, got {kind!r}")


class MultimodalReconstructor(nn.Module):
    """MLP ``dim → hidden… → dim``: Linear → norm → LeakyReLU(0.2) → Dropout per hidden layer, then Linear.

    As the reference's MR (MOSI: 192 → 80 → 96 → 192) without its final Tanh: the target f_gt is an unbounded
    fused vector, which a Tanh could not reach. ``residual`` adds the input to the output and zero-initialises
    the last Linear: MR starts as the identity, so the head keeps reading the fused vector it was pre-trained on
    and the MLP learns a correction of f_rec rather than f_gt from scratch (off by default, as in the reference).
    """

    def __init__(
        self, dim: int, hidden: tuple[int, ...], dropout: float, norm: str, residual: bool = False
    ) -> None:
        super().__init__()
        check_norm(norm, "multimodal reconstructor")
        if any(h < 1 for h in hidden):
            raise ComponentConfigError(f"multimodal reconstructor: hidden sizes must be >= 1, got {list(hidden)}")
        layers: list[nn.Module] = []
        width = dim
        for h in hidden:
            layers += [nn.Linear(width, h), make_norm(norm, h), nn.LeakyReLU(0.2), Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)
        self.residual = residual
        if residual:
            # Identity at the start (as adaLN-zero / ReZero): a random correction would move every fused vector,
            # complete ones included, away from what the pre-trained head reads.
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return x + y if self.residual else y
