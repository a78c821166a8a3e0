"""Compose the named components of a recipe into one model, and run a batch through it.

The path of a batch (training, simulated missingness):

    features ──mask──► encoder ─► tokens (missing zeroed) ─► recoverer ─► fuser ─► f_rec ─► aligner ─► f̃ ─► head
    features ────────► encoder ─► true tokens (targets)  ──────────────► fuser ─► f_gt ─────────────────► head

At evaluation only the first line runs, on features whose missing modalities were zeroed *before* any component
is called (see :func:`apply_mask`); no ground truth of a missing modality reaches the model.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .errors import RecipeError, Problem
from .interfaces import Aligner, Batch, DatasetSpec, Encoder, Fuser, Output, declared
from .slots import BYPASSABLE_SLOTS, COMPONENT_SLOTS, SLOTS


def apply_mask(batch: Batch, mask: Tensor, frame_keep: Mapping[str, Tensor] | None = None) -> Batch:
    """A copy of ``batch`` whose unavailable modalities (``mask[:, k] == False``) are exactly zero.

    ``torch.where`` rather than multiplication so that NaN/inf in missing data cannot leak (NaN·0 = NaN).
    ``frame_keep[name]`` (B, T) additionally zeroes dropped time steps of available sequence modalities.
    """
    mask = mask.to(torch.bool)
    out: dict[str, Tensor] = {}
    for k, name in enumerate(batch.names):
        x = batch.modalities[name]
        keep = mask[:, k].view(-1, *([1] * (x.dim() - 1)))
        if frame_keep is not None and name in frame_keep and x.dim() == 3:
            keep = keep & frame_keep[name].to(torch.bool).unsqueeze(-1)
        out[name] = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return Batch(batch.names, out, mask, batch.labels, batch.ids, dict(batch.lengths))


def _zero_missing(tokens: Mapping[str, Tensor], mask: Tensor, names: Iterable[str]) -> dict[str, Tensor]:
    out = {}
    for k, name in enumerate(names):
        t = tokens[name]
        keep = mask[:, k].view(-1, *([1] * (t.dim() - 1)))
        out[name] = torch.where(keep, t, torch.zeros((), dtype=t.dtype, device=t.device))
    return out


@dataclass
class ForwardResult:
    """Everything one forward pass produced: predictions, named losses (already prefixed), representations."""

    prediction: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    recovered: dict[str, Tensor] | None = None
    truth: dict[str, Tensor] | None = None
    prediction_gt: Tensor | None = None


class IMModel(nn.Module):
    """The recipe's components in their slots. Sub-modules are addressable by dotted paths
    (``"aligner.discriminator"``) for optimisers, freezing and checkpoint surgery."""

    def __init__(self, spec: DatasetSpec, components: Mapping[str, nn.Module | None]):
        super().__init__()
        self.spec = spec
        self.names = spec.names
        for slot in SLOTS:
            comp = components.get(slot.name)
            if comp is None and slot.required:
                raise ValueError(f"the model needs a {slot.name}")
            if comp is not None and not isinstance(comp, nn.Module):
                raise TypeError(f"{slot.name} must be a torch.nn.Module, got {type(comp).__name__}")
            setattr(self, slot.name, comp)

    # ---------------------------------------------------------------------------------------------- addressing
    def slots(self) -> list[str]:
        return [s for s in COMPONENT_SLOTS if getattr(self, s) is not None]

    def part(self, path: str) -> nn.Module:
        """The sub-module at ``path`` (``"fuser"``, ``"aligner.discriminator"``)."""
        try:
            mod = self.get_submodule(path)
        except AttributeError as exc:
            raise KeyError(path) from exc
        if mod is None:
            raise KeyError(path)
        return mod

    def aux_loss_names(self, bypass: Iterable[str] = ()) -> set[str]:
        names = {"task_gt", "task_rec"}
        for slot in self.slots():
            if slot in bypass:
                continue
            names |= {f"{slot}.{n}" for n in getattr(getattr(self, slot), "aux_losses", ())}
        return names

    # ---------------------------------------------------------------------------------------------- forward
    def forward(  # type: ignore[override]
        self,
        batch: Batch,
        full: Batch | None = None,
        need: set[str] | None = None,
        bypass: Iterable[str] = (),
    ) -> ForwardResult:
        """Run ``batch`` (missing modalities already zero, see :func:`apply_mask`).

        ``full`` is the same batch with every modality present: given only in training with simulated
        missingness, it provides the recovery targets and the complete-data branch (``f_gt``). ``need`` is the
        set of loss names the caller will use (``None`` = all that can be computed), so unneeded branches are
        skipped. ``bypass`` names optional components (recoverer, aligner) to run without in this phase.
        """
        bypass = set(bypass)
        if not bypass <= set(BYPASSABLE_SLOTS):
            raise ValueError(f"cannot bypass {', '.join(sorted(bypass - set(BYPASSABLE_SLOTS)))}; bypassable "
                             f"slots: {', '.join(BYPASSABLE_SLOTS)}")
        names, mask = batch.names, batch.mask
        training = full is not None
        recoverer = None if "recoverer" in bypass else self.recoverer
        aligner = None if "aligner" in bypass else self.aligner
        want = (lambda n: True) if need is None else (lambda n: n in need)
        losses: dict[str, Tensor] = {}

        def collect(slot: str, out: Output) -> Any:
            for k, v in out.losses.items():
                losses[f"{slot}.{k}"] = v
            return out.value

        tokens, truth = self._encode(batch, full, collect)
        complete = bool(mask.all())
        if recoverer is not None and not complete:
            recovered = collect("recoverer", recoverer(tokens, mask, names, batch.lengths, targets=truth))
        else:
            recovered = tokens

        f_rec = collect("fuser", self.fuser(recovered, mask, names, batch.lengths))
        f_gt = None
        if training and (want("task_gt") or aligner is not None):
            # A complete batch has the same input, hence (same function) the same f_gt: no second fuser pass.
            f_gt = f_rec if complete else self._fuse_truth(truth, mask, names, full.lengths, f_rec, collect)

        fused = f_rec if aligner is None else self._align(aligner, f_rec, f_gt, mask, collect)

        prediction = collect("head", self.head(fused))
        if want("task_rec"):
            losses["task_rec"] = self.head.loss(prediction, batch.labels)
        prediction_gt = None
        if training and f_gt is not None and want("task_gt"):
            prediction_gt = self.head(f_gt).value
            losses["task_gt"] = self.head.loss(prediction_gt, batch.labels)
        return ForwardResult(prediction, losses, recovered, truth, prediction_gt)

    def _encode(self, batch: Batch, full: Batch | None, collect: Any) -> tuple[dict[str, Tensor], Any]:
        """The batch's tokens (missing modalities zeroed) and, in training, the true tokens of ``full``.

        An encoder that declares ``independent_modalities`` encodes the complete batch only: the tokens of an
        available modality depend on that modality alone, so the masked batch would give the same ones."""
        enc, truth_out = self.encoder, None
        if full is None:
            out = enc(batch.modalities, batch.lengths)
        else:
            truth_out = enc(full.modalities, full.lengths)
            reuse = declared(enc, Encoder, "independent_modalities")
            out = truth_out if reuse else enc(batch.modalities, batch.lengths)
        tokens = _zero_missing(collect("encoder", out), batch.mask, batch.names)
        return tokens, None if truth_out is None else truth_out.value

    @staticmethod
    def _align(aligner: nn.Module, f_rec: Tensor, f_gt: Tensor | None, mask: Tensor, collect: Any) -> Tensor:
        """The aligner's output for the batch. An aligner that declares ``incomplete_only`` sees only the rows
        with something missing (its losses too); complete rows keep ``f_rec``, so a complete sample is predicted
        exactly as without the aligner (the reference skips MR for complete samples, in training and at test)."""
        if not declared(aligner, Aligner, "incomplete_only"):
            return collect("aligner", aligner(f_rec, reference=f_gt))
        rows = (~mask.all(dim=1)).nonzero().squeeze(1)
        if rows.numel() == 0:
            return f_rec
        if rows.numel() == mask.shape[0]:
            return collect("aligner", aligner(f_rec, reference=f_gt))
        part = collect("aligner", aligner(f_rec[rows], reference=None if f_gt is None else f_gt[rows]))
        return f_rec.index_put((rows,), part)

    def _fuse_truth(self, truth: dict[str, Tensor], mask: Tensor, names: Sequence[str], lengths: Mapping[str, Tensor],
                    f_rec: Tensor, collect: Any) -> Tensor:
        """f_gt, the fused vector of the complete tokens. A sample with nothing missing was fused from exactly
        these tokens already (its row of ``f_rec``); when the fuser declares ``independent_samples`` (no batch
        statistics: a row's output depends on that row alone) only the other rows go through it again."""
        ones = torch.ones_like(mask)
        if not declared(self.fuser, Fuser, "independent_samples"):
            return collect("fuser", self.fuser(truth, ones, names, lengths))
        incomplete = (~mask.all(dim=1)).nonzero().squeeze(1)
        if incomplete.numel() == mask.shape[0]:
            return collect("fuser", self.fuser(truth, ones, names, lengths))
        part = collect("fuser", self.fuser({n: t[incomplete] for n, t in truth.items()}, ones[incomplete], names,
                                           {n: l[incomplete] for n, l in lengths.items()}))
        return f_rec.index_put((incomplete,), part)


def data_context(spec: DatasetSpec) -> dict[str, Any]:
    """The context known before any component is built (``imrec.slots.DATA_CONTEXT``), from the dataset."""
    return {"modalities": spec.modalities, "task": spec.task}


def build_model(spec: DatasetSpec, model_cfg: Mapping[str, Any], source: str = "<recipe>") -> IMModel:
    """Build every configured component, in the slots' order, with the context arguments its slot declares
    (imrec/slots.py): the dataset's ``modalities`` and ``task``, and what earlier components provide (the
    encoder's ``out_dim`` as ``d_model``, the fuser's as ``dim`` and ``in_dim``)."""
    from .config import build_component

    context: dict[str, Any] = data_context(spec)
    built: dict[str, nn.Module | None] = {}
    for slot in SLOTS:
        cfg = model_cfg.get(slot.name)
        if cfg is None:
            if slot.required:
                raise ValueError(f"the model needs a {slot.name}")
            built[slot.name] = None
            continue
        comp = build_component(slot.name, cfg, **{k: context[k] for k in slot.context})
        for key, attr in slot.provides.items():
            value = getattr(comp, attr, None)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise RecipeError([Problem(source, f"model.{slot.name}",
                                           f"the {slot.name} does not expose an integer `{attr}`")])
            context[key] = int(value)
        built[slot.name] = comp
    return IMModel(spec, built)
