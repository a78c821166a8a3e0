"""RoHyDR's unimodal reconstructor (UR): refines a generated token sequence (unimodal, semantic level).

Architecture of the reference (after RCAN, Zhang et al. 2018): Conv1d(d→c, k1) → N residual channel-attention
blocks (conv3–ReLU–conv3, squeeze-excite) → conv3 + long residual → Conv1d(c→d, k1). The reference uses
c = 64 and 20 blocks; the defaults here (c = 32, 4 blocks) need 20× fewer multiply-adds per time step.
"""

from __future__ import annotations

from torch import Tensor, nn

from .errors import ComponentConfigError


class ChannelAttention(nn.Module):
    """Squeeze-excite over channels: global average over time → c/r → ReLU → c → sigmoid gate."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool1d(1),
            nn.Conv1d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class ResidualChannelAttentionBlock(nn.Module):
    """x + CA(conv3(ReLU(conv3(x))))."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 3, padding=1),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class UnimodalReconstructor(nn.Module):
    """UR: ``(N, T, d_model)`` generated tokens → refined tokens of the same shape."""

    def __init__(self, d_model: int, channels: int = 32, blocks: int = 4, reduction: int = 16) -> None:
        super().__init__()
        if channels < 1 or blocks < 0 or reduction < 1:
            raise ComponentConfigError(
                f"UR: need ur_channels >= 1, ur_blocks >= 0, ur_reduction >= 1; got {channels}, {blocks}, {reduction}"
            )
        self.head = nn.Conv1d(d_model, channels, 1)
        self.body = nn.Sequential(
            *(ResidualChannelAttentionBlock(channels, reduction) for _ in range(blocks)),
            nn.Conv1d(channels, channels, 3, padding=1),
        )
        self.tail = nn.Conv1d(channels, d_model, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x.transpose(1, 2))
        h = h + self.body(h)  # the long residual
        return self.tail(h).transpose(1, 2)
