"""rohydr.hddm: pass-through of available entries, compute only for missing pairs, determinism, conditioning,
losses, the ablation switches, and the DDPM/DDIM schedule."""

from __future__ import annotations

import pytest
import torch

from imrec.interfaces import ModalitySpec
from imrec_rohydr import HDDM
from imrec_rohydr.denoiser import Denoiser
from imrec_rohydr.errors import ComponentConfigError
from imrec_rohydr.schedule import DDPMSchedule

MODS = (ModalitySpec("a", 5, 6), ModalitySpec("b", 3, 6), ModalitySpec("c", 4, None))
NAMES = tuple(m.name for m in MODS)
D = 8
SMALL = dict(width=16, blocks=1, num_heads=2, num_train_steps=100, sample_steps=4, train_sample_steps=3,
             grad_steps=1, ur_channels=8, ur_blocks=1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls when the CPU is shared (10× faster under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(**kw) -> HDDM:
    torch.manual_seed(0)
    return HDDM(MODS, D, **{**SMALL, **kw})


def data(b: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    truth = {m.name: torch.randn(b, m.length or 1, D, generator=g) for m in MODS}
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.bool)[:b]
    tokens = {n: torch.where(mask[:, k, None, None], truth[n], 0.0) for k, n in enumerate(NAMES)}
    return tokens, mask, truth


def count_calls(model: HDDM) -> list[int]:
    calls = [0]

    def hook(*_):
        calls[0] += 1

    nets = model.denoiser.values() if isinstance(model.denoiser, torch.nn.ModuleDict) else [model.denoiser]
    for net in nets:
        net.register_forward_hook(hook)
    return calls


def test_available_entries_pass_through_unchanged_and_missing_are_filled():
    model = make()
    tokens, mask, truth = data()
    for train in (True, False):
        model.train(train)
        out = model(tokens, mask, NAMES, {}, targets=truth if train else None).value
        for k, n in enumerate(NAMES):
            assert torch.equal(out[n][mask[:, k]], tokens[n][mask[:, k]])
            assert out[n].shape == tokens[n].shape
            assert torch.isfinite(out[n]).all()
            assert (out[n][~mask[:, k]].abs().sum(dim=(1, 2)) > 0).all()


def test_no_diffusion_compute_on_complete_batches_and_one_batch_per_missing_modality():
    model = make().eval()
    calls = count_calls(model)
    tokens, mask, truth = data()
    full = torch.ones_like(mask)
    with torch.no_grad():
        out = model(truth, full, NAMES, {})
    assert calls[0] == 0 and all(out.value[n] is truth[n] for n in NAMES)
    model.train()
    assert model(truth, full, NAMES, {}, targets=truth).losses == {} and calls[0] == 0

    # Only modality "b" is missing (rows 1 and 3): one batch of 2, sample_steps calls at evaluation.
    only_b = mask.clone()
    only_b[:, [0, 2]] = True
    model.eval()
    with torch.no_grad():
        model(tokens, only_b, NAMES, {})
    assert calls[0] == SMALL["sample_steps"]
    # All three missing somewhere: one batch per target modality, each sample_steps calls.
    calls[0] = 0
    seen = []
    model.denoiser.register_forward_hook(lambda mod, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        model(tokens, mask, NAMES, {})
    assert calls[0] == 3 * SMALL["sample_steps"]
    assert sorted(set(seen)) == sorted({int((~mask[:, k]).sum()) for k in range(3)})
    # Training: one denoising-loss call + train_sample_steps sampler calls per missing modality.
    calls[0] = 0
    model.train()
    model(tokens, mask, NAMES, {}, targets=truth)
    assert calls[0] == 3 * (1 + SMALL["train_sample_steps"])


def test_per_modality_denoisers_each_run_only_for_their_own_modality():
    model = make(shared_denoiser=False).eval()
    assert set(model.denoiser.keys()) == set(NAMES)
    counts = {}
    for n, net in model.denoiser.items():
        counts[n] = 0
        net.register_forward_hook(lambda *_, n=n: counts.__setitem__(n, counts[n] + 1))
    tokens, mask, _ = data()
    only_a = torch.ones_like(mask)
    only_a[:, 0] = mask[:, 0]
    with torch.no_grad():
        model(tokens, only_a, NAMES, {})
    assert counts == {"a": SMALL["sample_steps"], "b": 0, "c": 0}


def test_sampler_is_deterministic_under_a_seed_and_a_generator():
    model = make().eval()
    tokens, mask, _ = data()
    with torch.no_grad():
        torch.manual_seed(3)
        first = model(tokens, mask, NAMES, {}).value
        torch.manual_seed(3)
        second = model(tokens, mask, NAMES, {}).value
        third = model(tokens, mask, NAMES, {}).value
        g1 = model(tokens, mask, NAMES, {}, generator=torch.Generator().manual_seed(5)).value
        g2 = model(tokens, mask, NAMES, {}, generator=torch.Generator().manual_seed(5)).value
    for n in NAMES:
        assert torch.equal(first[n], second[n]) and torch.equal(g1[n], g2[n])
    assert not torch.equal(first["a"], third["a"])  # fresh noise without re-seeding


def test_conditioning_uses_available_modalities_and_ignores_missing_ones():
    model = make().eval()
    tokens, mask, _ = data()
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        # Give the cross-attention non-trivial weights (fresh adaLN-Zero blocks are the identity).
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        base = model(tokens, mask, NAMES, {}, generator=gen()).value
        # Row 3 has only "a": changing its "a" tokens changes what is generated for "b" and "c".
        changed = {n: t.clone() for n, t in tokens.items()}
        changed["a"][3] += 1.0
        out = model(changed, mask, NAMES, {}, generator=gen()).value
        assert not torch.allclose(out["b"][3], base["b"][3])
        assert not torch.allclose(out["c"][3], base["c"][3])
        # Poison every unavailable entry with NaN: nothing changes, everything stays finite.
        poisoned = {n: torch.where(mask[:, k, None, None], tokens[n], float("nan")) for k, n in enumerate(NAMES)}
        out = model(poisoned, mask, NAMES, {}, generator=gen()).value
        for k, n in enumerate(NAMES):
            assert torch.isfinite(out[n]).all()
            assert torch.allclose(out[n], base[n])
        # Padded steps of an available modality are masked out of the condition, too.
        lengths = {"a": torch.full((6,), 6), "b": torch.tensor([6, 6, 3, 6, 3, 6])}
        ref = model(tokens, mask, NAMES, lengths, generator=gen()).value
        padded = {n: t.clone() for n, t in tokens.items()}
        padded["b"][[2, 4], 3:] = float("nan")
        out = model(padded, mask, NAMES, lengths, generator=gen()).value
        for k, n in enumerate(NAMES):
            miss = ~mask[:, k]
            assert torch.allclose(out[n][miss], ref[n][miss])


def test_losses_only_with_targets_and_over_missing_pairs():
    model = make()
    tokens, mask, truth = data()
    model.train()
    out = model(tokens, mask, NAMES, {}, targets=truth)
    assert set(out.losses) == {"diffusion", "reconstruction"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.losses.values())
    # Changing the target of an AVAILABLE entry does not change the reconstruction loss.
    torch.manual_seed(1)
    rec1 = model(tokens, mask, NAMES, {}, targets=truth).losses["reconstruction"]
    other = {n: t.clone() for n, t in truth.items()}
    other["a"][0] += 10.0  # row 0 is complete
    torch.manual_seed(1)
    rec2 = model(tokens, mask, NAMES, {}, targets=other).losses["reconstruction"]
    assert torch.allclose(rec1, rec2)
    model.eval()
    with torch.no_grad():
        assert model(tokens, mask, NAMES, {}).losses == {}


def test_gradient_through_the_sampler_is_truncated_to_grad_steps():
    tokens, mask, truth = data()

    def denoiser_grad(grad_steps: int) -> float:
        model = make(grad_steps=grad_steps, train_sample_steps=3)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        model.train()
        loss = model(tokens, mask, NAMES, {}, targets=truth).losses["reconstruction"]
        grads = torch.autograd.grad(loss, list(model.denoiser.parameters()), allow_unused=True)
        return sum(float(g.abs().sum()) for g in grads if g is not None)

    assert denoiser_grad(0) == 0.0  # UR still trains on the detached sample
    assert denoiser_grad(1) > 0.0


def test_diffusion_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = make()
    tokens, mask, truth = data()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()

    def expected_diffusion_loss() -> float:
        # Averaged over fixed draws of (t, ε): comparable across steps, and not one lucky timestep.
        with torch.no_grad():
            return sum(
                float(model(tokens, mask, NAMES, {}, targets=truth, generator=torch.Generator().manual_seed(s))
                      .losses["diffusion"])
                for s in range(8)
            ) / 8

    first = expected_diffusion_loss()
    for _ in range(150):
        out = model(tokens, mask, NAMES, {}, targets=truth)
        loss = out.losses["diffusion"] + out.losses["reconstruction"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = expected_diffusion_loss()
    assert last < 0.8 * first, (first, last)


def test_train_on_available_adds_denoising_signal_for_available_modalities():
    model = make(train_on_available=True)
    calls = count_calls(model)
    tokens, mask, truth = data()
    full = torch.ones_like(mask)
    model.train()
    out = model(truth, full, NAMES, {}, targets=truth)
    # Complete batch: a denoising loss per modality (conditioned on the others), no sampling at all.
    assert set(out.losses) == {"diffusion"} and calls[0] == 3
    assert all(out.value[n] is truth[n] for n in NAMES)
    with pytest.raises(ComponentConfigError):
        make(train_on_available=True, use_diffusion=False)


def test_without_diffusion_and_without_ur():
    tokens, mask, truth = data()
    no_diff = make(use_diffusion=False)
    assert no_diff.denoiser is None and no_diff.readout is not None and no_diff.ur is not None
    no_diff.train()
    out = no_diff(tokens, mask, NAMES, {}, targets=truth)
    assert set(out.losses) == {"reconstruction"}
    grads = torch.autograd.grad(out.losses["reconstruction"], list(no_diff.readout.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    no_ur = make(use_ur=False)
    assert no_ur.ur is None
    no_ur.train()
    out = no_ur(tokens, mask, NAMES, {}, targets=truth)
    assert set(out.losses) == {"diffusion", "reconstruction"}
    for k, n in enumerate(NAMES):
        assert torch.equal(out.value[n][mask[:, k]], tokens[n][mask[:, k]])


@pytest.mark.parametrize("use_diffusion", [True, False])
def test_normalized_reconstruction_weighs_every_modality_by_its_own_token_spread(use_diffusion):
    tokens, mask, truth = data()
    big = {n: t * (100.0 if n == "a" else 1.0) for n, t in truth.items()}  # modality a: 100x the scale
    big_tokens = {n: torch.where(mask[:, k, None, None], big[n], 0.0) for k, n in enumerate(NAMES)}
    model = make(reconstruction_scale="normalized", use_diffusion=use_diffusion)
    assert model.normalizer is not None
    model.train()
    for _ in range(3):  # let the running statistics settle on the available tokens
        torch.manual_seed(2)
        out = model(big_tokens, mask, NAMES, {}, targets=big)
    norm = model.normalizer
    terms = []
    for k, n in enumerate(NAMES):
        rows = (~mask[:, k]).nonzero().squeeze(1)
        if rows.numel():
            err = (norm.normalize(n, out.value[n][rows]) - norm.normalize(n, big[n][rows])) ** 2
            terms.append(err.mean(dim=(1, 2)))
    assert torch.allclose(out.losses["reconstruction"], torch.cat(terms).mean(), rtol=1e-4)
    # The raw scale is dominated by modality a; the normalised one is not.
    raw = make(use_diffusion=use_diffusion).train()
    torch.manual_seed(2)
    assert raw(big_tokens, mask, NAMES, {}, targets=big).losses["reconstruction"] > 100 * out.losses["reconstruction"]


def test_clip_x0_bounds_the_sample_in_normalised_units():
    model = make(clip_x0=0.5, use_ur=False, normalize=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        tokens, mask, _ = data()
        out = model(tokens, mask, NAMES, {}).value
    for k, n in enumerate(NAMES):
        assert out[n][~mask[:, k]].abs().max() <= 0.5 + 1e-6


def test_normaliser_tracks_available_tokens_in_training_only():
    model = make()
    tokens, mask, truth = data()
    scaled = {n: 5.0 * t + 2.0 for n, t in tokens.items()}
    scaled = {n: torch.where(mask[:, k, None, None], t, 0.0) for k, (n, t) in enumerate(scaled.items())}
    model.eval()
    with torch.no_grad():
        model(scaled, mask, NAMES, {})
    assert int(model.normalizer.count.sum()) == 0
    model.train()
    for _ in range(3):
        model(scaled, mask, NAMES, {}, targets=truth)
    assert model.normalizer.mean[0].mean() > 1.0 and model.normalizer.var[0].mean() > 5.0


def test_invalid_settings_raise_clear_errors():
    with pytest.raises(ComponentConfigError, match="grad_steps"):
        make(grad_steps=4, train_sample_steps=3)
    with pytest.raises(ComponentConfigError, match="sampling steps"):
        make(sample_steps=101)
    with pytest.raises(ComponentConfigError, match="num_heads"):
        make(width=10, num_heads=4)
    with pytest.raises(ComponentConfigError, match="at least 2"):
        HDDM(MODS[:1], D)
    with pytest.raises(ComponentConfigError, match="reconstruction_scale"):
        make(reconstruction_scale="log")
    model = make()
    tokens, mask, _ = data()
    with pytest.raises(ComponentConfigError, match="modalities"):
        model({"a": tokens["a"], "x": tokens["b"], "c": tokens["c"]}, mask, ("a", "x", "c"), {})


def test_gaussian_prior_skip_keeps_a_fresh_sampler_bounded():
    # A fresh network predicts ε̂ = √(1−ᾱ_t)·x_t, the optimal linear denoiser of unit-variance data: samples
    # shrink toward the mean instead of being divided by √ᾱ_{T−1}.
    model = make(use_ur=False, num_train_steps=1000, sample_steps=10).eval()
    tokens, mask, _ = data()
    with torch.no_grad():
        out = model(tokens, mask, NAMES, {}).value
    for k, n in enumerate(NAMES):
        assert out[n][~mask[:, k]].abs().max() < 3.0


# ---------------------------------------------------------------------------------------------- schedule
def test_ddim_timesteps_are_a_subsequence_of_the_training_schedule():
    s = DDPMSchedule(1000)
    for steps in (1, 5, 10, 50, 1000):
        ts = s.ddim_timesteps(steps)
        assert len(ts) == steps and ts[0] == 999 and all(0 <= t < 1000 for t in ts)
        assert all(a > b for a, b in zip(ts, ts[1:]))
    assert s.ddim_timesteps(5) == [999, 799, 599, 399, 199]
    with pytest.raises(ComponentConfigError):
        s.ddim_timesteps(0)


def test_ddim_with_the_true_noise_inverts_the_forward_process():
    s = DDPMSchedule(1000)
    x0 = torch.randn(4, 7, 3)
    eps = torch.randn_like(x0)
    # With ε̂ the true noise, one DDIM step from any t lands exactly on x_0 (and on x_{t'} in between).
    for t in (999, 500, 10):
        x_t = s.add_noise(x0, eps, torch.full((4,), t))
        assert torch.allclose(s.ddim_step(x_t, eps, t, None, None), x0, atol=1e-3)
        assert torch.allclose(s.ddim_step(x_t, eps, t, 3, None), s.add_noise(x0, eps, torch.full((4,), 3)), atol=1e-3)
    x_t = s.add_noise(x0, eps, torch.full((4,), 999))
    out = s.ddim_sample(lambda x, t: eps, x_t, num_steps=7)
    assert torch.allclose(out, x0, atol=1e-3)


def test_alpha_bar_matches_the_linear_beta_schedule():
    s = DDPMSchedule(1000, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    assert torch.allclose(s.alphas_cumprod, torch.cumprod(1 - betas, 0))
    assert float(s.alphas_cumprod[-1]) < 1e-4
    assert "alphas_cumprod" not in s.state_dict()


def test_denoiser_starts_at_zero_output():
    net = Denoiser(D, num_targets=2, num_sources=3, width=16, blocks=1, num_heads=2)
    ctx = net.encode_context([(1, torch.randn(2, 4, D), torch.ones(2, 4, dtype=torch.bool))], 2)
    assert torch.equal(net(torch.randn(2, 5, D), torch.tensor([3, 9]), 0, ctx), torch.zeros(2, 5, D))
