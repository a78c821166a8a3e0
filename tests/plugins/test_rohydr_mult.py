"""rohydr.mult: output size formula, key padding, pooling, vectors, K = 2…6, dropout helper."""

from __future__ import annotations

import pytest
import torch

from imrec.interfaces import ModalitySpec
from imrec_rohydr import MulTFuser
from imrec_rohydr.errors import ComponentConfigError
from imrec_rohydr.layers import dropout


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mods(k: int, length: int | None = 5):
    return tuple(ModalitySpec(f"m{i}", 3, length) for i in range(k))


def tokens(spec, b: int = 4, d: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {m.name: torch.randn(b, m.length or 1, d, generator=g) for m in spec}


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_out_dim_is_k_times_k_minus_one_times_d(k):
    spec = mods(k)
    fuser = MulTFuser(spec, 8, num_heads=2, layers=1).eval()
    names = tuple(m.name for m in spec)
    out = fuser(tokens(spec), torch.ones(4, k, dtype=torch.bool), names, {})
    assert fuser.out_dim == k * (k - 1) * 8 and out.value.shape == (4, fuser.out_dim)
    assert out.losses == {} and MulTFuser.aux_losses == ()
    assert len(fuser.cross) == k * (k - 1) and len(fuser.memory) == k


def test_memory_layers_default_to_mult_rule():
    spec = mods(3)
    assert len(MulTFuser(spec, 8, num_heads=2, layers=1).memory["m0"].layers) == 3
    assert len(MulTFuser(spec, 8, num_heads=2, layers=4).memory["m0"].layers) == 4
    assert len(MulTFuser(spec, 8, num_heads=2, layers=1, memory_layers=2).memory["m0"].layers) == 2


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_padded_steps_do_not_change_the_fused_vector(pool):
    torch.manual_seed(0)
    spec = mods(3, length=6)
    names = tuple(m.name for m in spec)
    fuser = MulTFuser(spec, 8, num_heads=2, layers=2, pool=pool).eval()
    x = tokens(spec, b=3)
    lengths = {"m0": torch.tensor([6, 4, 2]), "m1": torch.tensor([3, 6, 1]), "m2": torch.tensor([6, 6, 5])}
    mask = torch.ones(3, 3, dtype=torch.bool)
    with torch.no_grad():
        ref = fuser(x, mask, names, lengths).value
        noisy = {n: t.clone() for n, t in x.items()}
        for n, t in noisy.items():
            for b in range(3):
                t[b, lengths[n][b]:] = 1e3 * torch.randn_like(t[b, lengths[n][b]:])
        out = fuser(noisy, mask, names, lengths).value
        assert torch.allclose(out, ref, atol=1e-5)
        # ... while a valid step does matter.
        changed = {n: t.clone() for n, t in x.items()}
        changed["m1"][0, 0] += torch.randn(8)  # (not a constant shift: LayerNorm removes those)
        assert not torch.allclose(fuser(changed, mask, names, lengths).value[0], ref[0])


def test_last_pooling_takes_the_last_valid_step():
    fuser = MulTFuser(mods(2), 8, num_heads=2, layers=1, pool="last")
    h = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)
    valid = torch.tensor([[True, True, False, False], [True, True, True, True]])
    assert fuser._pool(h, valid).flatten().tolist() == [1.0, 7.0]
    fuser.pool = "mean"
    assert fuser._pool(h, valid).flatten().tolist() == [0.5, 5.5]


def test_vectors_and_zero_length_sequences_stay_finite():
    spec = (ModalitySpec("v", 3, None), ModalitySpec("s", 3, 4), ModalitySpec("w", 3, None))
    names = tuple(m.name for m in spec)
    fuser = MulTFuser(spec, 8, num_heads=2, layers=1).eval()
    x = tokens(spec, b=2)
    with torch.no_grad():
        out = fuser(x, torch.ones(2, 3, dtype=torch.bool), names, {"s": torch.tensor([0, 4])}).value
    assert out.shape == (2, 48) and torch.isfinite(out).all()


def test_gradients_reach_every_cross_modal_transformer():
    spec = mods(3)
    names = tuple(m.name for m in spec)
    fuser = MulTFuser(spec, 8, num_heads=2, layers=1)
    # Squared, not a plain sum: the sum of a unit-weight LayerNorm's outputs is constant, so its gradient is
    # round-off noise (~1e-7) that may come out exactly zero.
    fuser(tokens(spec), torch.ones(4, 3, dtype=torch.bool), names, {}).value.pow(2).sum().backward()
    for key, module in fuser.cross.items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), key


def test_invalid_settings():
    with pytest.raises(ComponentConfigError, match="at least 2"):
        MulTFuser(mods(1), 8)
    with pytest.raises(ComponentConfigError, match="num_heads"):
        MulTFuser(mods(3), 30, num_heads=8)
    with pytest.raises(ComponentConfigError, match="pool"):
        MulTFuser(mods(3), 8, num_heads=2, pool="max")


def test_fast_cpu_dropout_is_inverted_dropout():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.3, training=True)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.7) < 0.01
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert dropout(x, 0.3, training=False) is x
    torch.manual_seed(1)
    a = dropout(x, 0.5, training=True)
    torch.manual_seed(1)
    assert torch.equal(a, dropout(x, 0.5, training=True))
