"""RoHyDR's feature encoder (paper θ_fe): one temporal Conv1d per modality."""

from __future__ import annotations

from typing import ClassVar, Mapping

from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .errors import ComponentConfigError
from .layers import dropout


class Conv1dEncoder(nn.Module):
    """Per-modality Conv1d projection to d_model tokens (MulT/RoHyDR encoder; vectors become T = 1).

    Each modality ``m`` gets ``Conv1d(D_m → d_model, kernel_size, padding="same", bias=False)`` over time, as in
    the reference (MulT's ``proj_l/a/v``). Without a bias a missing modality (zeros in) stays exactly zero out.
    A vector input ``(B, D)`` is treated as a length-1 sequence, where the zero-padded kernel reduces to a 1×1
    projection (only its centre tap sees data). ``dropout`` is applied to the input features (MulT's
    ``embed_dropout``); with ``dropout > 0`` the tokens that serve as recovery targets are noisy in training,
    so keep it at 0 when the encoder produces targets.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()
    # A modality's tokens depend on that modality alone (one Conv1d each): the core may encode a training batch
    # once, complete, and zero the missing tokens (the flag and its default: imrec.interfaces.Encoder).
    independent_modalities: ClassVar[bool] = True

    def __init__(
        self,
        modalities: tuple[ModalitySpec, ...],
        d_model: int = 32,
        kernel_size: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model < 1:
            raise ComponentConfigError(f"rohydr.conv1d: d_model must be >= 1, got {d_model}")
        if kernel_size < 1:
            raise ComponentConfigError(f"rohydr.conv1d: kernel_size must be >= 1, got {kernel_size}")
        if not 0.0 <= dropout < 1.0:
            raise ComponentConfigError(f"rohydr.conv1d: dropout must be in [0, 1), got {dropout}")
        self.out_dim = d_model
        self.dropout = dropout
        self.names = tuple(m.name for m in modalities)
        self.proj = nn.ModuleDict(
            {m.name: nn.Conv1d(m.dim, d_model, kernel_size, padding="same", bias=False) for m in modalities}
        )

    def forward(self, features: Mapping[str, Tensor], lengths: Mapping[str, Tensor]) -> Output:
        tokens: dict[str, Tensor] = {}
        for name, x in features.items():
            seq = x.unsqueeze(1) if x.dim() == 2 else x  # (B, D) → (B, 1, D)
            seq = dropout(seq, self.dropout, self.training)
            # Contiguous (B, T, d): every later element-wise op keeps its input's layout, so a transposed view
            # here would make each layer norm downstream copy its input (forward and backward) instead.
            tokens[name] = self.proj[name](seq.transpose(1, 2)).transpose(1, 2).contiguous()
        return Output(value=tokens)
