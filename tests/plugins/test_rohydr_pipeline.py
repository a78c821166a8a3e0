"""RoHyDR components end to end: registration, shapes for K = 2, 3, 6 with sequence and vector modalities,
training losses present, evaluation loss-free, CPU/CUDA device handling."""

from __future__ import annotations

import pytest
import torch

from imrec.interfaces import ModalitySpec, TaskSpec
from imrec.plugins import get_registry
from imrec_rohydr import (
    ClassificationHead,
    Conv1dEncoder,
    GANAligner,
    HDDM,
    MRAligner,
    MulTFuser,
    RegressionHead,
)

SMALL_HDDM = dict(width=16, blocks=1, num_heads=2, num_train_steps=50, sample_steps=3, train_sample_steps=2,
                  grad_steps=1, ur_channels=8, ur_blocks=1)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls when the CPU is shared (10× faster under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def specs(k: int, vector: tuple[int, ...] = ()) -> tuple[ModalitySpec, ...]:
    return tuple(
        ModalitySpec(f"m{i}", 3 + 2 * i, None if i in vector else 4 + i) for i in range(k)
    )


def batch(mods, b: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = {
        m.name: torch.randn(b, m.length, m.dim, generator=g) if m.length else torch.randn(b, m.dim, generator=g)
        for m in mods
    }
    mask = torch.rand(b, len(mods), generator=g) > 0.5
    mask[:, 0] |= ~mask.any(dim=1)
    mask[0] = True  # one complete sample
    lengths = {m.name: torch.randint(1, m.length + 1, (b,), generator=g) for m in mods if m.length}
    return feats, mask, lengths


def build(mods, task=TaskSpec("regression", label_range=(-3.0, 3.0)), d_model: int = 8):
    enc = Conv1dEncoder(mods, d_model=d_model)
    rec = HDDM(mods, enc.out_dim, **SMALL_HDDM)
    fus = MulTFuser(mods, enc.out_dim, num_heads=2, layers=1)
    ali = GANAligner(fus.out_dim, hidden=[12, 12], disc_hidden=[8])
    head = RegressionHead(fus.out_dim, task) if task.kind == "regression" else ClassificationHead(fus.out_dim, task)
    return enc, rec, fus, ali, head


def test_registered_names():
    reg = get_registry()
    assert reg.resolve("encoder", "rohydr.conv1d").factory is Conv1dEncoder
    assert reg.resolve("recoverer", "rohydr.hddm").factory is HDDM
    assert reg.resolve("fuser", "rohydr.mult").factory is MulTFuser
    assert reg.resolve("aligner", "rohydr.gan").factory is GANAligner
    assert reg.resolve("aligner", "rohydr.mr").factory is MRAligner
    assert reg.resolve("head", "rohydr.regression").factory is RegressionHead
    assert reg.resolve("head", "rohydr.classification").factory is ClassificationHead
    for entry in reg:
        if entry.name.startswith("rohydr."):
            assert entry.summary, f"{entry.name} has no one-line docstring"
            assert isinstance(entry.factory.aux_losses, tuple)


@pytest.mark.parametrize(
    "k,vector", [(2, ()), (3, ()), (3, (1,)), (6, ()), (6, (0, 3)), (2, (0, 1))], ids=str
)
def test_shapes_through_the_pipeline(k, vector):
    torch.manual_seed(0)
    mods = specs(k, vector)
    names = tuple(m.name for m in mods)
    enc, rec, fus, ali, head = build(mods)
    feats, mask, lengths = batch(mods, 5)
    tokens = enc(feats, lengths).value
    for m in mods:
        assert tokens[m.name].shape == (5, m.length or 1, 8)
    truth = {n: t.clone() for n, t in tokens.items()}
    zeroed = {n: torch.where(mask[:, i, None, None], t, 0.0) for i, (n, t) in enumerate(tokens.items())}
    out = rec(zeroed, mask, names, lengths, targets=truth)
    assert set(out.losses) <= set(HDDM.aux_losses) and set(out.losses) == {"diffusion", "reconstruction"}
    for n in names:
        assert out.value[n].shape == tokens[n].shape
    fused = fus(out.value, mask, names, lengths).value
    assert fus.out_dim == k * (k - 1) * 8 and fused.shape == (5, fus.out_dim)
    f_gt = fus(truth, torch.ones_like(mask), names, lengths).value
    aligned = ali(fused, reference=f_gt)
    assert aligned.value.shape == (5, fus.out_dim)
    assert set(aligned.losses) == set(GANAligner.aux_losses)
    pred = head(aligned.value).value
    assert pred.shape == (5,)
    loss = head.loss(pred, torch.zeros(5))
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_evaluation_returns_no_losses():
    torch.manual_seed(0)
    mods = specs(3, (2,))
    names = tuple(m.name for m in mods)
    enc, rec, fus, ali, head = build(mods, TaskSpec("classification", num_classes=4))
    for m in (enc, rec, fus, ali, head):
        m.eval()
    feats, mask, lengths = batch(mods, 6)
    with torch.no_grad():
        outs = [enc(feats, lengths)]
        outs.append(rec(outs[0].value, mask, names, lengths))
        outs.append(fus(outs[1].value, mask, names, lengths))
        outs.append(ali(outs[2].value))
        outs.append(head(outs[3].value))
    assert all(o.losses == {} for o in outs)
    assert outs[-1].value.shape == (6, 4)
    assert MRAligner(fus.out_dim).eval()(outs[2].value).losses == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    torch.manual_seed(0)
    mods = specs(3, (1,))
    names = tuple(m.name for m in mods)
    parts = [p.cuda() for p in build(mods)]
    enc, rec, fus, ali, head = parts
    feats, mask, lengths = batch(mods, 4)
    feats = {n: x.cuda() for n, x in feats.items()}
    mask = mask.cuda()
    lengths = {n: x.cuda() for n, x in lengths.items()}
    tokens = enc(feats, lengths).value
    out = rec(tokens, mask, names, lengths, targets=tokens)
    f = fus(out.value, mask, names, lengths).value
    a = ali(f, reference=f.detach())
    total = sum(out.losses.values()) + sum(a.losses.values()) + head.loss(head(a.value).value, torch.zeros(4).cuda())
    total.backward()
    rec.eval()
    with torch.no_grad():
        assert rec(tokens, mask, names, lengths).value["m0"].device.type == "cuda"
