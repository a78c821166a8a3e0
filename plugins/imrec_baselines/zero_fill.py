"""Zero filling: the no-recovery baseline."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

from torch import Tensor, nn

from imrec import Output


class ZeroFill(nn.Module):
    """No recovery: a missing modality stays all-zero tokens (train it with modality dropout to be fair).

    The core hands missing modalities over as zeros, so this recoverer only passes every entry through. It
    exists so that a recipe can name the "no recovery" baseline explicitly (omitting the recoverer is
    equivalent). Fairness comes from the recipe's training protocol: trained with the same simulated
    missingness as the other methods, the fuser and head learn to cope with zero tokens.
    No parameters, no losses.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        # Explicit, so that the factory's signature takes no options (nn.Module's would accept any keyword).
        super().__init__()

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output:
        return Output(value={name: tokens[name] for name in names})
