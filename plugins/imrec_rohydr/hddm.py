"""RoHyDR's recoverer: HDDM (conditional diffusion, unimodal feature level) + UR (unimodal semantic level)."""

from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

import torch
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import ModalitySpec

from .denoiser import Denoiser
from .errors import ComponentConfigError
from .layers import step_mask
from .normalizer import TokenNormalizer
from .readout import ConditionReadout
from .schedule import DDPMSchedule
from .transformer import Context
from .ur import UnimodalReconstructor


RECONSTRUCTION_SCALES = ("raw", "normalized")


class HDDM(nn.Module):
    """RoHyDR recoverer: DDIM generates missing modalities by cross-attention to the available ones; a UR refines.

    For each modality that is missing somewhere in the batch, its missing samples are gathered into one batch;
    their condition is the tokens of their available modalities (learned modality embeddings, padding and
    unavailable modalities masked out of the keys). In training (``targets`` given) the denoiser is trained by
    ε-prediction on the DDPM schedule (loss ``diffusion``), a sample is drawn with ``train_sample_steps`` DDIM
    steps (gradient through the last ``grad_steps``), refined by the UR and scored against the true tokens (loss
    ``reconstruction``). At evaluation a sample is drawn with ``sample_steps`` DDIM steps (default: as in training)
    and refined; no loss is computed. Complete samples never enter any of this. Available entries are returned
    unchanged.

    Sub-modules a recipe can address: ``recoverer.denoiser`` (one network, or a ModuleDict per modality when
    ``shared_denoiser`` is false; ``None`` without diffusion), ``recoverer.readout`` (only without diffusion),
    ``recoverer.ur`` (ModuleDict of one UR per modality; ``None`` when ``use_ur`` is false).
    """

    aux_losses: ClassVar[tuple[str, ...]] = ("diffusion", "reconstruction")

    def __init__(
        self,
        modalities: tuple[ModalitySpec, ...],
        d_model: int,
        width: int = 64,
        blocks: int = 1,
        num_heads: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        num_train_steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        sample_steps: int | None = None,
        train_sample_steps: int = 5,
        grad_steps: int = 1,
        clip_x0: float | None = None,
        shared_denoiser: bool = True,
        normalize: bool = True,
        train_on_available: bool = False,
        use_diffusion: bool = True,
        use_ur: bool = True,
        ur_channels: int = 32,
        ur_blocks: int = 4,
        ur_reduction: int = 16,
        reconstruction_scale: str = "raw",
    ) -> None:
        super().__init__()
        self.names = tuple(m.name for m in modalities)
        if len(self.names) < 2:
            raise ComponentConfigError("rohydr.hddm needs at least 2 modalities (one to recover, one to condition on)")
        if not 0 <= grad_steps <= train_sample_steps:
            raise ComponentConfigError(
                f"rohydr.hddm: grad_steps must be in 0…train_sample_steps ({train_sample_steps}), got {grad_steps}"
            )
        if clip_x0 is not None and clip_x0 <= 0:
            raise ComponentConfigError(f"rohydr.hddm: clip_x0 must be positive or null, got {clip_x0}")
        if reconstruction_scale not in RECONSTRUCTION_SCALES:
            raise ComponentConfigError(
                f"rohydr.hddm: reconstruction_scale must be one of {RECONSTRUCTION_SCALES}, got {reconstruction_scale!r}"
            )
        if train_on_available and not use_diffusion:
            raise ComponentConfigError("rohydr.hddm: train_on_available needs use_diffusion: true")
        self.index = {name: k for k, name in enumerate(self.names)}
        self.d_model = d_model
        # Evaluation samples with the training sampler by default: with grad_steps > 0 the denoiser and the UR
        # co-adapt to that trajectory, and other step counts recover worse (docs/rohydr.md, Measurements).
        self.sample_steps = train_sample_steps if sample_steps is None else sample_steps
        self.train_sample_steps = train_sample_steps
        self.grad_steps = grad_steps
        self.clip_x0 = clip_x0
        self.shared_denoiser = shared_denoiser
        self.train_on_available = train_on_available
        self.use_diffusion = use_diffusion
        self.use_ur = use_ur
        num = len(self.names)
        net = dict(width=width, blocks=blocks, num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout)

        self.schedule = DDPMSchedule(num_train_steps, beta_start, beta_end)
        self.schedule.ddim_timesteps(self.sample_steps)  # validates the step counts against the schedule
        self.schedule.ddim_timesteps(train_sample_steps)
        self.reconstruction_scale = reconstruction_scale
        needs_stats = (normalize and use_diffusion) or reconstruction_scale == "normalized"
        self.normalizer = TokenNormalizer(self.names, d_model) if needs_stats else None
        self.diffuse_normalized = normalize and use_diffusion
        self.denoiser: nn.Module | None = None
        self.readout: ConditionReadout | None = None
        if not use_diffusion:
            self.readout = ConditionReadout(d_model, num, num, **net)
        elif shared_denoiser:
            self.denoiser = Denoiser(d_model, num, num, **net)
        else:
            self.denoiser = nn.ModuleDict({n: Denoiser(d_model, 1, num, **net) for n in self.names})
        self.ur = (
            nn.ModuleDict({n: UnimodalReconstructor(d_model, ur_channels, ur_blocks, ur_reduction) for n in self.names})
            if use_ur
            else None
        )

    # ----------------------------------------------------------------------------------------------------------
    def _network(self, name: str) -> tuple[nn.Module, int]:
        """The generator network for target ``name`` and the target index it expects."""
        if self.readout is not None:
            return self.readout, self.index[name]
        if self.shared_denoiser:
            return self.denoiser, self.index[name]
        return self.denoiser[name], 0

    def _context(
        self,
        net: nn.Module,
        target: str,
        rows: Tensor,
        tokens: Mapping[str, Tensor],
        available: Tensor,
        valid: Mapping[str, Tensor],
    ) -> Context:
        """Condition of samples ``rows`` for target ``target``: their available modalities other than the target.

        ``available`` is the ``(len(rows), K)`` availability of those samples (column order = ``self.names``);
        a source modality nobody in ``rows`` has is left out entirely (no compute on all-masked keys).
        """
        sources = []
        for j, name in enumerate(self.names):
            if name == target:
                continue
            has = available[:, j]
            if not bool(has.any()):
                continue
            keep = valid[name][rows] & has[:, None]
            # Zero what is masked: a masked key has weight 0, but 0 · NaN would still poison the attention.
            sources.append((j, torch.where(keep[:, :, None], tokens[name][rows], 0.0), keep))
        return net.encode_context(sources, int(rows.numel()))

    def _epsilon(self, net: nn.Module, x_t: Tensor, t: Tensor, index: int, context: Context) -> Tensor:
        """ε̂(x_t, t) = √(1 − ᾱ_t) · x_t + network output.

        The first term is E[ε | x_t] for zero-mean unit-variance data (what the normaliser makes of the tokens):
        the network, zero-initialised at its output, learns the correction to that Gaussian-prior denoiser (as
        EDM's c_skip, Karras et al. 2022, §5). Without it a fresh network predicts ε̂ = 0, DDIM's first step
        divides by √ᾱ_{T−1} ≈ 0.007 and the first samples the UR sees are ~150× too large.
        """
        return (1.0 - self.schedule.alpha_bar(t, x_t)).sqrt() * x_t + net(x_t, t, index, context)

    def _generate(
        self, net: nn.Module, target: str, index: int, context: Context, like: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """Tokens ``(N, T, d)`` of ``target`` for the samples of ``context``: DDIM sample (or read-out), token scale."""
        n = context.mask.shape[0]
        steps = like.shape[1]
        if self.readout is not None:
            return net(index, steps, context)
        noise = torch.randn((n, steps, like.shape[2]), device=like.device, dtype=like.dtype, generator=generator)
        eps_fn = lambda x, t: self._epsilon(net, x, t, index, context)  # noqa: E731
        if self.training:
            x0 = self.schedule.ddim_sample(eps_fn, noise, self.train_sample_steps, self.grad_steps, self.clip_x0)
        else:
            x0 = self.schedule.ddim_sample(eps_fn, noise, self.sample_steps, None, self.clip_x0)
        return self.normalizer.denormalize(target, x0) if self.diffuse_normalized else x0

    def _diffusion_loss(
        self,
        net: nn.Module,
        target: str,
        index: int,
        context: Context,
        x0: Tensor,
        weight: Tensor,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Per-sample ε-MSE (DDPM's L_simple, eq. 14) at a uniformly drawn timestep, over valid steps."""
        if self.diffuse_normalized:
            x0 = self.normalizer.normalize(target, x0)
        t = self.schedule.sample_timesteps(x0.shape[0], x0.device, generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        eps = self._epsilon(net, self.schedule.add_noise(x0, noise, t), t, index, context)
        return _per_sample_mse(eps, noise, weight)

    # ----------------------------------------------------------------------------------------------------------
    def forward(
        self,
        tokens: Mapping[str, Tensor],
        mask: Tensor,
        names: Sequence[str],
        lengths: Mapping[str, Tensor],
        targets: Mapping[str, Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> Output:
        """Fill the missing entries of ``tokens``; ``generator`` (optional) drives every random draw."""
        names = tuple(names)
        if set(names) != set(self.names):
            raise ComponentConfigError(
                f"rohydr.hddm was built for modalities {self.names} but received {names}"
            )
        # Availability in this component's own modality order.
        avail = mask[:, [names.index(n) for n in self.names]].to(torch.bool)
        batch = avail.shape[0]
        valid = {
            n: step_mask(lengths.get(n), batch, tokens[n].shape[1], tokens[n].device) for n in self.names
        }
        if self.training and self.normalizer is not None:
            self.normalizer.update_from(tokens, avail, self.names, valid)

        recovered = dict(tokens)
        diffusion_terms: list[Tensor] = []
        reconstruction_terms: list[Tensor] = []
        for k, name in enumerate(self.names):
            missing_rows = (~avail[:, k]).nonzero().squeeze(1)
            denoise_all = targets is not None and self.train_on_available
            if missing_rows.numel() == 0 and not denoise_all:
                continue  # nothing to recover for this modality and no extra training signal asked for
            net, index = self._network(name)
            if denoise_all:
                # Denoising loss on every sample, conditioned on its OTHER available modalities; the sampler
                # below still runs only for the missing ones (their rows of this same context).
                all_rows = torch.arange(batch, device=avail.device)
                context_all = self._context(net, name, all_rows, tokens, avail, valid)
                diffusion_terms.append(
                    self._diffusion_loss(net, name, index, context_all, targets[name], valid[name], generator)
                )
                if missing_rows.numel() == 0:
                    continue
                context = context_all.take(missing_rows)
            else:
                context = self._context(net, name, missing_rows, tokens, avail[missing_rows], valid)
                if targets is not None and self.readout is None:
                    diffusion_terms.append(
                        self._diffusion_loss(
                            net, name, index, context, targets[name][missing_rows], valid[name][missing_rows], generator
                        )
                    )
            generated = self._generate(net, name, index, context, tokens[name], generator)
            refined = self.ur[name](generated) if self.ur is not None else generated
            if targets is not None:
                pred, truth = refined, targets[name][missing_rows]
                if self.reconstruction_scale == "normalized":
                    # Every modality's error in units of its own token spread: with raw MSE a modality whose
                    # tokens are 100x larger (MOSI-shaped text vs audio) owns the shared denoiser's gradient.
                    pred, truth = self.normalizer.normalize(name, pred), self.normalizer.normalize(name, truth)
                reconstruction_terms.append(_per_sample_mse(pred, truth, valid[name][missing_rows]))
            recovered[name] = tokens[name].index_put((missing_rows,), refined.to(tokens[name].dtype))

        losses: dict[str, Tensor] = {}
        if diffusion_terms:
            losses["diffusion"] = torch.cat(diffusion_terms).mean()
        if reconstruction_terms:
            losses["reconstruction"] = torch.cat(reconstruction_terms).mean()
        return Output(value=recovered, losses=losses)


def _per_sample_mse(prediction: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """``(N,)`` mean squared error of each sample over its valid time steps and all channels."""
    w = valid.to(prediction.dtype)[:, :, None]
    se = ((prediction - target) ** 2 * w).sum(dim=(1, 2))
    return se / (w.sum(dim=(1, 2)) * prediction.shape[2]).clamp_min(1.0)
