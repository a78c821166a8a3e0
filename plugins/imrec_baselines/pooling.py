"""Small tensor helpers shared by the baseline components (masked time pooling, token checks)."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from imrec.interfaces import ModalitySpec


def token_steps(spec: ModalitySpec) -> int:
    """Number of tokens the encoder produces for ``spec``: its sequence length, or 1 for a vector modality."""
    return int(spec.length) if spec.is_sequence else 1


def valid_steps(lengths: Mapping[str, Tensor], name: str, tokens: Tensor) -> Tensor | None:
    """``(B, T)`` bool, True on the valid time steps of ``tokens`` (``(B, T, d)``); ``None`` when all are valid.

    ``lengths`` are the batch's valid lengths per modality (possibly absent for a modality, or for all);
    they are clamped to ``T`` so that lengths counted on raw features never index past the tokens.
    """
    steps = tokens.shape[1]
    if steps == 1 or name not in lengths:
        return None
    length = lengths[name].to(device=tokens.device).long().clamp(0, steps)
    return torch.arange(steps, device=tokens.device).unsqueeze(0) < length.unsqueeze(1)


def masked_mean(tokens: Tensor, valid: Tensor | None) -> Tensor:
    """Mean of ``tokens`` ``(B, T, d)`` over its valid time steps → ``(B, d)``; all-invalid rows give zeros.

    ``torch.where`` rather than multiplication, so that non-finite values on invalid steps cannot leak.
    """
    if valid is None:
        return tokens.mean(dim=1)
    keep = valid.unsqueeze(-1)
    total = torch.where(keep, tokens, torch.zeros((), dtype=tokens.dtype, device=tokens.device)).sum(dim=1)
    count = keep.sum(dim=1).clamp(min=1).to(tokens.dtype)
    return total / count


def check_tokens(component: str, tokens: Mapping[str, Tensor], names: Sequence[str], known: Sequence[str]) -> None:
    """Fail with a clear message when a batch does not match the modalities a component was built for."""
    for name in names:
        if name not in known:
            raise ValueError(
                f"{component}: modality {name!r} was not among the modalities it was built for ({', '.join(known)})"
            )
        if name not in tokens:
            raise ValueError(f"{component}: no tokens given for modality {name!r}")
        if tokens[name].dim() != 3:
            raise ValueError(
                f"{component}: tokens of {name!r} must be (B, T, d), got shape {tuple(tokens[name].shape)}"
            )
