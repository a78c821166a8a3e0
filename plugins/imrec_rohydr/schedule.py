"""The diffusion schedule of RoHyDR's HDDM: DDPM training (Ho et al. 2020) and DDIM sampling (Song et al. 2021)
on the SAME schedule.

The reference code trained on a 1000-step schedule but sampled with a DDIM scheduler built for 50 training steps,
so the network was only ever queried at t = 0…49 (nearly clean inputs) while starting from pure noise. Here the
sampler's timesteps are a subsequence of the training timesteps 0…``num_train_steps``−1 and use the training
schedule's ᾱ_t.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .errors import ComponentConfigError

EpsilonFn = Callable[[Tensor, Tensor], Tensor]
"""``eps_fn(x_t, t)`` → predicted noise ε̂(x_t, t), ``t`` a ``(N,)`` long tensor of training timesteps."""


class DDPMSchedule(nn.Module):
    """Linear β schedule ``β_t = linspace(beta_start, beta_end, num_train_steps)`` and its ᾱ_t = Π_{s≤t}(1 − β_s).

    ᾱ is kept in float64 and handed out in the caller's dtype. It is a non-persistent buffer: it follows the
    module's device and is rebuilt from the constructor arguments, not stored in checkpoints.
    """

    def __init__(self, num_train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        super().__init__()
        if num_train_steps < 1:
            raise ComponentConfigError(f"diffusion schedule: num_train_steps must be >= 1, got {num_train_steps}")
        if not 0.0 < beta_start <= beta_end < 1.0:
            raise ComponentConfigError(
                f"diffusion schedule: need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}"
            )
        self.num_train_steps = num_train_steps
        betas = torch.linspace(beta_start, beta_end, num_train_steps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        # Host copy for the sampler's per-step scalars: no device→host sync inside the sampling loop.
        self._alpha_bar_host = alphas_cumprod.tolist()

    def alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """ᾱ_t for timesteps ``t`` ``(N,)``, shaped to broadcast against ``like`` ``(N, …)``."""
        a = self.alphas_cumprod.to(t.device)[t].to(like.dtype)
        return a.view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Forward process q(x_t | x_0): x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε (DDPM eq. 4)."""
        a = self.alpha_bar(t, x0)
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise

    def sample_timesteps(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        """``n`` training timesteps drawn uniformly from 0…num_train_steps−1."""
        return torch.randint(0, self.num_train_steps, (n,), device=device, generator=generator)

    def ddim_timesteps(self, num_steps: int) -> list[int]:
        """The ``num_steps`` sampling timesteps, descending, with "trailing" spacing.

        ``t_i = round(T − i·T/S) − 1``: the first step is always t = T−1 (the most noisy training timestep, matching
        the pure-noise start; "leading" spacing would start at a less noisy t and mismatch it — Lin et al. 2024,
        "Common diffusion noise schedules and sample steps are flawed", §3.3).
        """
        if not 1 <= num_steps <= self.num_train_steps:
            raise ComponentConfigError(
                f"DDIM: the number of sampling steps must be in 1…{self.num_train_steps} (num_train_steps), "
                f"got {num_steps}"
            )
        ratio = self.num_train_steps / num_steps
        steps = [int(round(self.num_train_steps - i * ratio)) - 1 for i in range(num_steps)]
        return steps

    def ddim_step(self, x_t: Tensor, eps: Tensor, t: int, t_prev: int | None, clip_x0: float | None) -> Tensor:
        """One deterministic DDIM update (η = 0, DDIM eq. 12) from timestep ``t`` to ``t_prev`` (None = to x_0).

        x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t;  x_{t_prev} = √ᾱ_{t_prev} x̂_0 + √(1 − ᾱ_{t_prev}) ε̂.
        """
        a_t = self._alpha_bar_host[t]
        x0 = (x_t - (1.0 - a_t) ** 0.5 * eps) / a_t**0.5
        if clip_x0 is not None:
            x0 = x0.clamp(-clip_x0, clip_x0)
        if t_prev is None:
            return x0
        a_prev = self._alpha_bar_host[t_prev]
        return a_prev**0.5 * x0 + (1.0 - a_prev) ** 0.5 * eps

    def ddim_sample(
        self,
        eps_fn: EpsilonFn,
        noise: Tensor,
        num_steps: int,
        grad_steps: int | None = None,
        clip_x0: float | None = None,
    ) -> Tensor:
        """Run DDIM from ``noise`` (x_T) for ``num_steps`` steps and return x̂_0.

        ``grad_steps`` = how many of the LAST steps keep the autograd graph (truncated backpropagation through
        the sampler); the earlier ones run under ``torch.no_grad()``. ``None`` keeps the ambient grad mode for
        every step. With ``grad_steps=0`` the sample is detached from the network.
        """
        timesteps = self.ddim_timesteps(num_steps)
        first_grad = 0 if grad_steps is None else num_steps - min(max(grad_steps, 0), num_steps)
        x = noise
        for i, t in enumerate(timesteps):
            t_prev = timesteps[i + 1] if i + 1 < num_steps else None
            t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= first_grad):
                x = self.ddim_step(x, eps_fn(x, t_batch), t, t_prev, clip_x0)
        return x
