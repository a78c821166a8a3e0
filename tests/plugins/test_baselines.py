"""Baseline components (plugins/imrec_baselines): contracts, statistics, learning and gradient checks.

Everything runs on small stand-in tokens built here; no encoder, fuser or dataset of another plugin is needed.
"""

from __future__ import annotations

import inspect
import math

import pluggy
import pytest
import torch

import imrec_baselines
from imrec import Output, hookspecs
from imrec.interfaces import ModalitySpec
from imrec_baselines import MMIN, LateFusion, MeanFill, RegressionImputer, ZeroFill

D = 8
RECOVERERS = {
    "zero_fill": lambda specs: ZeroFill(),
    "mean_fill": lambda specs: MeanFill(specs, D),
    "regression": lambda specs: RegressionImputer(specs, D, hidden=16),
    "mmin": lambda specs: MMIN(specs, D, layers=(16, 8), n_blocks=2),
}
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: intra-op threads only add contention (10× slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------------ helpers
def make_specs(k: int, layout: str, steps: int = 5) -> tuple[ModalitySpec, ...]:
    """``k`` modalities: all sequences, all vectors, or alternating (``mixed``)."""
    specs = []
    for i in range(k):
        seq = layout == "sequence" or (layout == "mixed" and i % 2 == 0)
        specs.append(ModalitySpec(f"m{i}", 3 + i, steps + i if seq else None))
    return tuple(specs)


def steps_of(spec: ModalitySpec) -> int:
    return spec.length if spec.is_sequence else 1


def fixed_mask(batch: int, k: int) -> torch.Tensor:
    """Entry (b, k) missing when (b + k) % 3 == 0: every row keeps ≥ 1 modality (K ≥ 2) and, for batch ≥ 3,
    every modality is missing in some rows and available in others."""
    b = torch.arange(batch).unsqueeze(1)
    j = torch.arange(k).unsqueeze(0)
    return (b + j) % 3 != 0


def make_batch(specs, batch: int = 7, seed: int = 0, device: str = "cpu"):
    """Random true tokens, the fixed mask, input tokens with missing entries zeroed, random valid lengths."""
    g = torch.Generator().manual_seed(seed)
    names = tuple(s.name for s in specs)
    truth = {s.name: torch.randn(batch, steps_of(s), D, generator=g).to(device) for s in specs}
    mask = fixed_mask(batch, len(specs)).to(device)
    tokens = {n: torch.where(mask[:, k, None, None], truth[n], torch.zeros(())) for k, n in enumerate(names)}
    lengths = {
        s.name: torch.randint(1, s.length + 1, (batch,), generator=g).to(device) for s in specs if s.is_sequence
    }
    return tokens, mask, names, lengths, truth


def random_mask(batch: int, k: int, rate: float, g: torch.Generator) -> torch.Tensor:
    """Each entry missing with probability ``rate``; a row left empty gets one random modality back."""
    mask = torch.rand(batch, k, generator=g) >= rate
    empty = ~mask.any(1)
    mask[empty, torch.randint(0, k, (int(empty.sum()),), generator=g)] = True
    return mask


class SharedLatent:
    """Structured synthetic tokens: every modality is a (nonlinear) function of one per-sample latent ``z``,
    with a per-step mean profile and a rank-2 temporal structure, plus small noise. Any one modality carries
    most of the information about the others, so a learned recovery must beat the per-step training mean."""

    def __init__(self, k: int, steps: int, rank: int = 3, noise: float = 0.1):
        g = torch.Generator().manual_seed(1234)
        self.k, self.steps, self.rank, self.noise = k, steps, rank, noise
        self.mu = [torch.randn(steps, D, generator=g) for _ in range(k)]
        self.w = [torch.randn(rank, D, generator=g) for _ in range(k)]
        self.v = [torch.randn(rank, D, generator=g) / math.sqrt(rank) for _ in range(k)]
        self.a = [1 + 0.5 * torch.randn(steps, 1, generator=g) for _ in range(k)]
        self.c = [0.5 * torch.randn(steps, 1, generator=g) for _ in range(k)]
        self.names = tuple(f"m{i}" for i in range(k))
        self.specs = tuple(ModalitySpec(n, 4, steps if steps > 1 else None) for n in self.names)

    def sample(self, n: int, seed: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.rank, generator=g)
        out = {}
        for i, name in enumerate(self.names):
            u, v = torch.tanh(z @ self.w[i]), z @ self.v[i]
            eps = self.noise * torch.randn(n, self.steps, D, generator=g)
            out[name] = self.mu[i] + self.a[i] * u[:, None] + self.c[i] * v[:, None] + eps
        return out


def zeroed(full: dict[str, torch.Tensor], mask: torch.Tensor, names) -> dict[str, torch.Tensor]:
    return {n: torch.where(mask[:, k, None, None], full[n], torch.zeros(())) for k, n in enumerate(names)}


def train(module, data: SharedLatent, train_set, steps: int = 150, rate: float = 0.3, lr: float = 3e-3):
    """Adam on the sum of the module's losses under random missingness; returns the loss history."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    n = next(iter(train_set.values())).shape[0]
    history = []
    module.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (64,), generator=g)
        mask = random_mask(64, data.k, rate, g)
        full = {name: x[idx] for name, x in train_set.items()}
        out = module(zeroed(full, mask, data.names), mask, data.names, {}, targets=full)
        loss = sum(out.losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(loss.item())
    module.eval()
    return history


def missing_mse(recovered, truth, mask, names, pooled: bool = False) -> float:
    """Mean over missing (sample, modality) pairs of the per-pair MSE (token level, or of time-pooled vectors)."""
    total, pairs = 0.0, 0
    for k, name in enumerate(names):
        miss = ~mask[:, k]
        r, t = recovered[name][miss], truth[name][miss]
        if pooled:
            r, t = r.mean(1), t.mean(1)
        total += float((r - t).pow(2).flatten(1).mean(1).sum())
        pairs += int(miss.sum())
    return total / pairs


def mean_fill_baseline(data: SharedLatent, train_set, test_set, mask):
    """Mean filling with the exact training mean (one pass over the whole training set)."""
    mf = MeanFill(data.specs, D, window=None).train()
    complete = torch.ones(train_set["m0"].shape[0], data.k, dtype=torch.bool)
    mf(train_set, complete, data.names, {}, targets=train_set)
    mf.eval()
    with torch.no_grad():
        return mf(zeroed(test_set, mask, data.names), mask, data.names, {}).value


# ------------------------------------------------------------------------------------------------- registration
def test_plugin_registers_every_component_with_bindable_factories():
    pm = pluggy.PluginManager("imrec")
    pm.add_hookspecs(hookspecs)
    pm.register(imrec_baselines, name="baselines")
    pm.check_pending()
    found: dict[str, dict[str, object]] = {"recoverer": {}, "fuser": {}}
    pm.hook.register_recoverers(register=lambda name, f: found["recoverer"].__setitem__(name, f))
    pm.hook.register_fusers(register=lambda name, f: found["fuser"].__setitem__(name, f))
    # Registered by name ("module:Class", imported on first use): what the registry's entries resolve to.
    from imrec.registry import Entry

    found = {kind: {n: Entry(kind, n, f, "baselines").factory for n, f in d.items()} for kind, d in found.items()}
    assert found == {
        "recoverer": {
            "baselines.zero_fill": ZeroFill,
            "baselines.mean_fill": MeanFill,
            "baselines.regression": RegressionImputer,
            "baselines.mmin": MMIN,
        },
        "fuser": {"baselines.late_fusion": LateFusion},
    }
    for factories in found.values():
        for factory in factories.values():
            assert inspect.getdoc(factory).splitlines()[0].strip()
            assert isinstance(factory.aux_losses, tuple)
            sig = inspect.signature(factory)
            # Everything but the injected context has a default, and nothing is **kwargs.
            for p in sig.parameters.values():
                assert p.kind is not inspect.Parameter.VAR_KEYWORD
                assert p.name in {"modalities", "d_model"} or p.default is not inspect.Parameter.empty
            context = {k: v for k, v in {"modalities": (), "d_model": 4}.items() if k in sig.parameters}
            sig.bind(**context)


# ------------------------------------------------------------------------------------------- recoverer contract
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["sequence", "vector", "mixed"])
@pytest.mark.parametrize("k", [2, 3, 6])
@pytest.mark.parametrize("kind", list(RECOVERERS))
def test_recoverer_contract(kind, k, layout, device):
    torch.manual_seed(0)
    specs = make_specs(k, layout)
    module = RECOVERERS[kind](specs).to(device)
    tokens, mask, names, lengths, truth = make_batch(specs, device=device)

    module.train()
    out = module(tokens, mask, names, lengths, targets=truth)
    assert isinstance(out, Output)
    assert set(out.value) == set(names)
    for j, name in enumerate(names):
        rec = out.value[name]
        assert rec.shape == tokens[name].shape and rec.device == tokens[name].device
        assert torch.isfinite(rec).all()
        avail = mask[:, j]
        assert torch.equal(rec[avail], tokens[name][avail])  # available entries pass through unchanged
    assert set(out.losses) == set(type(module).aux_losses)
    for value in out.losses.values():
        assert value.dim() == 0 and torch.isfinite(value)

    module.eval()
    with torch.no_grad():
        out = module(tokens, mask, names, lengths)
    assert out.losses == {}
    for j, name in enumerate(names):
        assert torch.equal(out.value[name][mask[:, j]], tokens[name][mask[:, j]])


@pytest.mark.parametrize("kind", list(RECOVERERS))
def test_recoverers_accept_batches_listing_modalities_in_another_order(kind):
    specs = make_specs(3, "mixed")
    module = RECOVERERS[kind](specs).eval()
    tokens, mask, names, lengths, _ = make_batch(specs)
    out = module(tokens, mask, names, lengths).value
    order = (2, 0, 1)
    out2 = module(tokens, mask[:, list(order)], tuple(names[i] for i in order), lengths).value
    for name in names:
        torch.testing.assert_close(out2[name], out[name])


def test_zero_fill_keeps_missing_entries_zero_and_has_no_parameters():
    specs = make_specs(3, "sequence")
    module = ZeroFill()
    tokens, mask, names, lengths, truth = make_batch(specs)
    out = module(tokens, mask, names, lengths, targets=truth)
    assert out.losses == {} and list(module.parameters()) == []
    for j, name in enumerate(names):
        assert torch.equal(out.value[name], tokens[name])
        assert (out.value[name][~mask[:, j]] == 0).all()


# ---------------------------------------------------------------------------------------------------- mean fill
@pytest.mark.parametrize("window", [None, 2048])
def test_mean_fill_buffer_is_the_training_mean_and_is_used_at_evaluation(window):
    specs = make_specs(3, "mixed")
    names = tuple(s.name for s in specs)
    module = MeanFill(specs, D, window=window).train()
    g = torch.Generator().manual_seed(3)
    data = {s.name: 2.0 + torch.randn(100, steps_of(s), D, generator=g) for s in specs}
    start = 0
    for size in (32, 32, 30, 6):  # unequal batches: the mean must weight samples, not batches
        batch = {n: x[start : start + size] for n, x in data.items()}
        mask = random_mask(size, 3, 0.4, g)
        module(zeroed(batch, mask, names), mask, names, {}, targets=batch)
        start += size
    for s in specs:
        torch.testing.assert_close(module.mean(s.name), data[s.name].mean(0), rtol=1e-5, atol=1e-5)
        assert module.count(s.name) == 100

    # Evaluation: missing entries are the training mean, available ones untouched, and nothing is updated.
    module.eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    tokens, mask, _, lengths, _ = make_batch(specs, seed=5)
    out = module(tokens, mask, names, lengths).value
    for j, name in enumerate(names):
        miss = ~mask[:, j]
        assert torch.equal(out[name][miss], module.mean(name).expand(int(miss.sum()), -1, -1))
        assert torch.equal(out[name][~miss], tokens[name][~miss])
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    # The statistics travel in the state_dict.
    assert {f"mean_{i}" for i in range(3)} | {f"count_{i}" for i in range(3)} == set(after)
    fresh = MeanFill(specs, D, window=window)
    fresh.load_state_dict(after)
    torch.testing.assert_close(fresh.eval()(tokens, mask, names, lengths).value["m0"], out["m0"])


def test_mean_fill_fills_with_the_mean_before_this_batch_updates_it():
    specs = make_specs(2, "vector")
    names = ("m0", "m1")
    module = MeanFill(specs, D).train()
    first = {n: torch.full((4, 1, D), 3.0) for n in names}
    mask = torch.tensor([[True, False]] * 4)
    out = module(zeroed(first, mask, names), mask, names, {}, targets=first).value
    assert (out["m1"] == 0).all()  # nothing seen yet: the batch's own truth must not fill its own gaps
    out = module(zeroed(first, mask, names), mask, names, {}, targets=first).value
    assert torch.allclose(out["m1"], torch.full_like(out["m1"], 3.0))


def test_mean_fill_becomes_a_per_sample_ema_beyond_its_window():
    specs = make_specs(2, "vector")
    names = ("m0", "m1")
    module = MeanFill(specs, D, window=10).train()
    mask = torch.ones(5, 2, dtype=torch.bool)
    values = [1.0, 2.0, 5.0]
    for v in values:
        batch = {n: torch.full((5, 1, D), v) for n in names}
        module(batch, mask, names, {}, targets=batch)
    # Two batches of 5: exact mean 1.5; the third (beyond 10 samples) moves it by 5 / 10 toward 5.
    expected = 1.5 + 0.5 * (5.0 - 1.5)
    torch.testing.assert_close(module.mean("m0"), torch.full((1, D), expected))


def test_mean_fill_without_targets_learns_from_available_entries_only():
    specs = make_specs(2, "sequence")
    names = ("m0", "m1")
    module = MeanFill(specs, D).train()
    truth = {n: torch.randn(6, 5 + i, D) for i, n in enumerate(names)}
    mask = torch.tensor([[True, True], [True, False], [False, True], [True, True], [True, False], [True, True]])
    module(zeroed(truth, mask, names), mask, names, {})
    for j, name in enumerate(names):
        torch.testing.assert_close(module.mean(name), truth[name][mask[:, j]].mean(0))
        assert module.count(name) == int(mask[:, j].sum())


def test_mean_fill_rejects_tokens_whose_length_differs_from_the_spec():
    specs = make_specs(2, "sequence")
    module = MeanFill(specs, D)
    tokens = {"m0": torch.zeros(2, 9, D), "m1": torch.zeros(2, 6, D)}
    with pytest.raises(ValueError, match="sequence length"):
        module(tokens, torch.ones(2, 2, dtype=torch.bool), ("m0", "m1"), {})


# ----------------------------------------------------------------------------------- learned recovery quality
def test_regression_imputation_learns_and_beats_mean_fill():
    data = SharedLatent(k=3, steps=6)
    train_set, test_set = data.sample(512, seed=1), data.sample(256, seed=2)
    module = RegressionImputer(data.specs, D, hidden=64)
    history = train(module, data, train_set, steps=150)
    assert sum(history[-10:]) / 10 < 0.3 * sum(history[:10]) / 10

    mask = random_mask(256, 3, 0.5, torch.Generator().manual_seed(11))
    with torch.no_grad():
        recovered = module(zeroed(test_set, mask, data.names), mask, data.names, {}).value
    mse = missing_mse(recovered, test_set, mask, data.names)
    mean_mse = missing_mse(mean_fill_baseline(data, train_set, test_set, mask), test_set, mask, data.names)
    assert mse < 0.3 * mean_mse, (mse, mean_mse)


@pytest.mark.parametrize("steps", [1, 6])
def test_mmin_learns_and_beats_mean_fill(steps):
    data = SharedLatent(k=3, steps=steps)
    train_set, test_set = data.sample(512, seed=1), data.sample(256, seed=2)
    module = MMIN(data.specs, D)
    history = train(module, data, train_set, steps=150)
    assert sum(history[-10:]) / 10 < 0.3 * sum(history[:10]) / 10

    mask = random_mask(256, 3, 0.5, torch.Generator().manual_seed(11))
    with torch.no_grad():
        recovered = module(zeroed(test_set, mask, data.names), mask, data.names, {}).value
    filled = mean_fill_baseline(data, train_set, test_set, mask)
    # MMIN imagines utterance-level vectors (broadcast over time): compare tokens for vector modalities and
    # time-pooled vectors for sequences, where per-step structure is outside what MMIN models.
    pooled = steps > 1
    mse = missing_mse(recovered, test_set, mask, data.names, pooled=pooled)
    mean_mse = missing_mse(filled, test_set, mask, data.names, pooled=pooled)
    assert mse < 0.5 * mean_mse, (mse, mean_mse)


# ------------------------------------------------------------------------------------------------- gradients
def test_regression_gradients_reach_the_regressors_of_the_modalities_in_the_loss():
    specs = make_specs(3, "mixed")
    tokens, _, names, lengths, truth = make_batch(specs)
    mask = torch.ones(7, 3, dtype=torch.bool)
    mask[:4, 1] = False  # only m1 is ever missing
    tokens = zeroed(truth, mask, names)
    tokens = {n: t.clone().requires_grad_(True) for n, t in tokens.items()}

    module = RegressionImputer(specs, D, hidden=16, train_on_available=False)
    module(tokens, mask, names, lengths, targets=truth).losses["reconstruction"].backward()
    grads = {i: [p.grad for p in module.regressors[i].parameters()] for i in range(3)}
    assert all(g is not None and g.abs().sum() > 0 for g in grads[1])
    assert all(g is None or (g == 0).all() for i in (0, 2) for g in grads[i])
    # The loss flows into the available tokens it was computed from (no detaching in the component).
    assert tokens["m0"].grad is not None and tokens["m0"].grad[:4].abs().sum() > 0

    module.zero_grad()
    module.train_on_available = True
    module(tokens, mask, names, lengths, targets=truth).losses["reconstruction"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_mmin_gradients():
    specs = make_specs(3, "sequence")
    tokens, mask, names, lengths, truth = make_batch(specs)
    module = MMIN(specs, D, layers=(16, 8), n_blocks=2)
    fwd, bwd = module.forward_imagination, module.backward_imagination

    out = module(tokens, mask, names, lengths, targets=truth)
    out.losses["imagination"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fwd.parameters())
    assert all(p.grad is None for p in bwd.parameters())

    module.zero_grad(set_to_none=True)
    out = module(tokens, mask, names, lengths, targets=truth)
    out.losses["cycle"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in bwd.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in fwd.parameters())  # cycle trains both

    # Downstream losses on the recovered tokens train the forward imagination through the missing entries.
    module.zero_grad(set_to_none=True)
    out = module(tokens, mask, names, lengths)
    sum(v.pow(2).sum() for v in out.value.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fwd.parameters())


# ------------------------------------------------------------------------------------------------ late fusion
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", ["sequence", "vector", "mixed"])
@pytest.mark.parametrize("k", [2, 3, 6])
def test_late_fusion_shapes(k, layout, device):
    torch.manual_seed(0)
    specs = make_specs(k, layout)
    module = LateFusion(specs, D, hidden=12).to(device)
    tokens, mask, names, lengths, _ = make_batch(specs, device=device)
    out = module(tokens, mask, names, lengths)
    assert isinstance(out, Output) and out.losses == {} and LateFusion.aux_losses == ()
    assert module.out_dim == 12 and out.value.shape == (7, 12) and out.value.device.type == device
    assert torch.isfinite(out.value).all()


def test_late_fusion_ignores_missing_modalities():
    torch.manual_seed(0)
    specs = make_specs(3, "mixed")
    module = LateFusion(specs, D, hidden=12)
    tokens, mask, names, lengths, truth = make_batch(specs)
    reference = module(tokens, mask, names, lengths).value

    nan = torch.full((), float("nan"))
    poisoned = {n: torch.where(mask[:, k, None, None], tokens[n], nan) for k, n in enumerate(names)}
    poisoned = {n: t.requires_grad_(True) for n, t in poisoned.items()}
    out = module(poisoned, mask, names, lengths).value
    assert torch.isfinite(out).all()
    assert torch.equal(out, reference)
    # What a recoverer put in a missing slot does not matter either.
    assert torch.equal(module(truth, mask, names, lengths).value, reference)

    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters())
    for k, name in enumerate(names):
        assert torch.isfinite(poisoned[name].grad).all()
        assert (poisoned[name].grad[~mask[:, k]] == 0).all()

    # The fused vector is the mean of the per-modality representations of the available modalities; a
    # representation alone is what the fuser returns when only that modality is available.
    with torch.no_grad():
        alone = []
        for k in range(3):
            only_k = torch.zeros_like(mask)
            only_k[:, k] = True
            alone.append(module(tokens, only_k, names, lengths).value)
        expected = sum(torch.where(mask[:, k, None], alone[k], 0.0) for k in range(3)) / mask.sum(1, keepdim=True)
    torch.testing.assert_close(reference, expected)


def test_late_fusion_gradients_reach_only_encoders_of_available_modalities():
    specs = make_specs(3, "vector")
    module = LateFusion(specs, D, hidden=12)
    tokens, _, names, lengths, truth = make_batch(specs)
    mask = torch.ones(7, 3, dtype=torch.bool)
    mask[:, 2] = False  # m2 missing everywhere
    module(zeroed(truth, mask, names), mask, names, lengths).value.pow(2).sum().backward()
    for k in (0, 1):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.encoders[k].parameters())
    assert all(p.grad is None or (p.grad == 0).all() for p in module.encoders[2].parameters())


# ------------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("kind", ["mean_fill", "regression", "mmin"])
def test_unknown_modality_is_a_clear_error(kind):
    module = RECOVERERS[kind](make_specs(2, "vector"))
    tokens = {"m0": torch.zeros(2, 1, D), "other": torch.zeros(2, 1, D)}
    with pytest.raises(ValueError, match="'other'"):
        module(tokens, torch.ones(2, 2, dtype=torch.bool), ("m0", "other"), {})
