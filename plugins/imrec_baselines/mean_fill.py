"""Mean filling: a missing modality becomes its training-mean token sequence."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .pooling import check_tokens, token_steps


class MeanFill(nn.Module):
    """Mean imputation: fill a missing modality with its training-mean token sequence (per time step).

    For every modality a buffer ``mean_<k>`` of shape ``(T, d_model)`` holds the mean of its tokens at each time
    step over the training samples seen so far, and ``count_<k>`` how many samples went into it (both saved in
    the ``state_dict``, so a checkpoint carries the means it was evaluated with). A missing entry is replaced by
    the buffer in training and at evaluation alike (so the fuser is trained on what it will see at test time);
    available entries pass through unchanged.

    Update (training mode only, once per call, *after* filling, so that a batch's own ground truth never fills
    its own missing entries): from ``targets`` (the true tokens of every sample) when the core hands them over,
    otherwise from the available samples' tokens. With ``n`` samples seen and a batch of ``b`` samples with
    mean ``x̄``, ``mean ← mean + w · (x̄ − mean)`` with ``w = b / min(n + b, window)``:

    * while ``n + b ≤ window`` this is the exact cumulative mean of every sample seen;
    * afterwards it is an exponential moving average that forgets at a constant rate *per sample*
      (momentum ``1 / window`` per sample, ``b / window`` per batch, independent of the batch size).

    Why this choice: the targets are the encoder's tokens, and in a phase where the encoder is still training
    an exact all-time mean would average token sequences of stale encoders. The component is not told about
    epochs, so a "cumulative mean reset per epoch" cannot be implemented without a trainer hook; an EMA over
    the last ~``window`` samples tracks the encoder just as well. When the encoder is frozen, the only cost of
    the EMA is a noisier estimate: its effective sample size is about ``2 · window`` (4096 by default), which
    adds ~1/4096 of the token variance to the fill error, negligible. ``window: null`` gives the exact
    cumulative mean over all of training.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, modalities: Sequence[ModalitySpec], d_model: int, window: int | None = 2048) -> None:
        super().__init__()
        if window is not None and int(window) < 1:
            raise ValueError(f"baselines.mean_fill: window must be a positive number of samples or null, got {window}")
        self.window = None if window is None else int(window)
        self.names = tuple(m.name for m in modalities)
        for k, spec in enumerate(modalities):
            self.register_buffer(f"mean_{k}", torch.zeros(token_steps(spec), int(d_model)))
            # int64 so that module-wide dtype casts (.half(), .double()) leave the count exact.
            self.register_buffer(f"count_{k}", torch.zeros((), dtype=torch.long))

    def mean(self, name: str) -> Tensor:
        """The current mean token sequence ``(T, d_model)`` of modality ``name``."""
        return getattr(self, f"mean_{self.names.index(name)}")

    def count(self, name: str) -> int:
        """How many training samples went into the mean of modality ``name``."""
        return int(getattr(self, f"count_{self.names.index(name)}"))

    @torch.no_grad()
    def _update(self, k: int, samples: Tensor) -> None:
        batch = samples.shape[0]
        if batch == 0:
            return
        mean, count = getattr(self, f"mean_{k}"), getattr(self, f"count_{k}")
        total = int(count) + batch
        horizon = total if self.window is None else min(total, self.window)
        weight = min(1.0, batch / horizon)
        batch_mean = samples.detach().to(mean.dtype).mean(dim=0)
        mean.add_(weight * (batch_mean - mean))
        count.add_(batch)

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output:
        check_tokens("baselines.mean_fill", tokens, names, self.names)
        out: dict[str, Tensor] = {}
        sources: list[tuple[int, Tensor]] = []
        for col, name in enumerate(names):
            x = tokens[name]
            k = self.names.index(name)
            mean = getattr(self, f"mean_{k}")
            if x.shape[1:] != mean.shape:
                raise ValueError(
                    f"baselines.mean_fill: tokens of {name!r} are {tuple(x.shape[1:])} per sample but the mean was "
                    f"built for {tuple(mean.shape)} (the modality's length × d_model); mean filling needs an encoder "
                    f"that keeps each modality's sequence length"
                )
            keep = mask[:, col].view(-1, 1, 1)
            out[name] = torch.where(keep, x, mean.to(x.dtype).unsqueeze(0))
            if self.training:
                if targets is not None and name in targets:
                    sources.append((k, targets[name]))
                else:
                    sources.append((k, x[mask[:, col]]))
        for k, samples in sources:
            self._update(k, samples)
        return Output(value=out)
