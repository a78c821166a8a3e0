"""MMIN (Zhao, Li & Jin, ACL 2021): missing-modality imagination with cascade residual autoencoders."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .pooling import check_tokens, masked_mean, valid_steps


class CascadeResidualAE(nn.Module):
    """MMIN's cascade residual autoencoder (CRA) on vectors of width ``dim``.

    Block ``i`` is an MLP autoencoder ``dim → layers[0] → … → layers[-1] → … → layers[0] → dim``; its input is
    the running sum of the input and the previous block's output (``x_in ← x_in + x_out``, ``x_out`` starting at
    zero), so every block models the residual the cascade has not explained yet. The output is a 2-layer
    transition MLP applied to ``x_in + x_out`` of the last block. This follows MMIN's ``ResidualAE`` (encoder:
    Linear + LeakyReLU, no activation after the bottleneck; decoder: Linear + ReLU, linear output).
    """

    def __init__(self, dim: int, layers: Sequence[int], n_blocks: int, dropout: float) -> None:
        super().__init__()
        widths = [dim, *layers]
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for _ in range(n_blocks):
            enc: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
                enc.append(nn.Linear(a, b))
                if i < len(layers) - 1:  # no activation after the bottleneck
                    enc += [nn.LeakyReLU(), nn.Dropout(dropout)]
            back = widths[::-1]
            dec: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(back[:-1], back[1:])):
                dec.append(nn.Linear(a, b))
                if i < len(layers) - 1:
                    dec += [nn.ReLU(), nn.Dropout(dropout)]
            self.encoders.append(nn.Sequential(*enc))
            self.decoders.append(nn.Sequential(*dec))
        self.transition = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        x_in, x_out = x, torch.zeros_like(x)
        for encoder, decoder in zip(self.encoders, self.decoders):
            x_in = x_in + x_out
            x_out = decoder(encoder(x_in))
        return self.transition(x_in + x_out)


class MMIN(nn.Module):
    """MMIN-style imagination: cascade residual autoencoders predict missing modalities' pooled vectors.

    MMIN works at the utterance level, so this recoverer does too. Each modality's tokens are mean-pooled
    over valid time steps into one ``d_model`` vector (zeros when missing) and concatenated in modality order
    into the *available view* ``s`` (``K · d_model``). The forward imagination network (a
    :class:`CascadeResidualAE`) maps ``s`` to ``h'``, the imagined *missing view*: the concatenation whose
    chunks of missing modalities are their pooled vectors and whose chunks of available modalities are zero,
    the complement of ``s``. The backward imagination network maps ``h'`` back to ``s`` (cycle consistency).

    Losses (training only, i.e. when ``targets`` are given), as in MMIN's code (``loss_mse``, ``loss_cycle``):

    * ``imagination`` = MSE(h', h) over the full ``K · d_model`` vector, where ``h`` is the true missing view
      built from ``targets`` (MMIN: the frozen teacher's embeddings of the "reverse" input, in which the
      available modalities are zeroed);
    * ``cycle`` = MSE(backward(h'), s) over the full vector, with ``s`` as a constant target: MMIN detaches
      the input view in this loss (``feat_fusion_miss.detach()``), so cycle consistency trains the
      imagination networks and never pulls the input features toward the cycle's output.

    Why the missing view and not the complete vector as the forward target: MMIN's target is the missing view,
    and only with it is the backward (cycle) mapping well posed: from an imagined *complete* vector nothing
    tells the backward network which chunks to zero.

    Output: available entries unchanged; a missing modality's tokens are its imagined chunk of ``h'``
    broadcast over all its time steps (utterance-level recovery: no per-step structure is imagined).
    Defaults ``layers = (128, 64, 32)``, ``n_blocks = 3``, ``dropout = 0`` are the CRA defaults of MMIN's
    code. The MMIN classifier reads the CRA's latents; here the imagined vectors feed the recipe's fuser
    instead, so that MMIN shares the encoder, fuser and head of the other methods.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ("imagination", "cycle")

    def __init__(
        self,
        modalities: Sequence[ModalitySpec],
        d_model: int,
        layers: Sequence[int] = (128, 64, 32),
        n_blocks: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers = [int(w) for w in layers]
        if not layers or min(layers) < 1 or n_blocks < 1:
            raise ValueError(
                f"baselines.mmin: layers must be a non-empty list of positive widths and n_blocks ≥ 1, "
                f"got layers={layers}, n_blocks={n_blocks}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"baselines.mmin: dropout must be in [0, 1), got {dropout}")
        self.names = tuple(m.name for m in modalities)
        self.d_model = int(d_model)
        dim = len(modalities) * self.d_model
        self.forward_imagination = CascadeResidualAE(dim, layers, int(n_blocks), float(dropout))
        self.backward_imagination = CascadeResidualAE(dim, layers, int(n_blocks), float(dropout))

    def _view(self, tokens: Mapping[str, Tensor], names: Sequence[str], lengths: Mapping[str, Tensor]) -> Tensor:
        """Concatenated pooled vectors in the module's modality order (a batch may list them differently)."""
        pooled = {name: masked_mean(tokens[name], valid_steps(lengths, name, tokens[name])) for name in names}
        return torch.cat([pooled[name] for name in self.names], dim=-1)

    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
    ) -> Output:
        check_tokens("baselines.mmin", tokens, names, self.names)
        if set(names) != set(self.names):
            raise ValueError(
                f"baselines.mmin: the batch has modalities {tuple(names)} but MMIN was built for {self.names}; "
                f"its imagination works on the concatenation of all of them"
            )
        mask = mask.to(torch.bool)
        view = self._view(tokens, names, lengths)  # s: missing chunks are zero (pooled zero tokens)
        imagined = self.forward_imagination(view)  # h'

        d = self.d_model
        out: dict[str, Tensor] = {}
        for k, name in enumerate(names):
            x = tokens[name]
            i = self.names.index(name)
            chunk = imagined[:, i * d : (i + 1) * d].to(x.dtype).unsqueeze(1).expand_as(x)
            out[name] = torch.where(mask[:, k].view(-1, 1, 1), x, chunk)

        losses: dict[str, Tensor] = {}
        if targets is not None:
            # The true missing view h: pooled true tokens of missing modalities, zero chunks for available ones.
            missing_targets = {
                name: torch.where(
                    mask[:, k].view(-1, 1, 1), torch.zeros((), dtype=targets[name].dtype, device=view.device),
                    targets[name],
                )
                for k, name in enumerate(names)
            }
            truth = self._view(missing_targets, names, lengths)
            losses["imagination"] = F.mse_loss(imagined, truth)
            losses["cycle"] = F.mse_loss(self.backward_imagination(imagined), view.detach())
        return Output(value=out, losses=losses)
