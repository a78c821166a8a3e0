"""rohydr.gan and rohydr.mr: where each loss's gradient goes, and what is computed when."""

from __future__ import annotations

import pytest
import torch

from imrec_rohydr import GANAligner, MRAligner
from imrec_rohydr.errors import ComponentConfigError

DIM = 12


def grads(loss: torch.Tensor, module: torch.nn.Module) -> float:
    gs = torch.autograd.grad(loss, list(module.parameters()), retain_graph=True, allow_unused=True)
    return sum(float(g.abs().sum()) for g in gs if g is not None)


def setup(**kw):
    torch.manual_seed(0)
    aligner = GANAligner(DIM, hidden=[10, 8], disc_hidden=[8, 4], **kw)
    # fused/reference stand in for the fuser's outputs: they carry gradient to an upstream parameter.
    upstream = torch.nn.Linear(DIM, DIM)
    x = torch.randn(6, DIM)
    fused, reference = upstream(x), upstream(x + 1.0)
    return aligner, upstream, fused, reference


def test_discriminator_loss_reaches_only_the_discriminator():
    aligner, upstream, fused, reference = setup()
    out = aligner(fused, reference=reference)
    loss = out.losses["discriminator"]
    assert grads(loss, aligner.discriminator) > 0
    assert grads(loss, aligner.reconstructor) == 0
    assert grads(loss, upstream) == 0


def test_adversarial_loss_reaches_the_reconstructor_and_l1_compares_to_the_reference():
    aligner, upstream, fused, reference = setup()
    out = aligner(fused, reference=reference)
    assert grads(out.losses["adversarial"], aligner.reconstructor) > 0
    assert grads(out.losses["l1"], aligner.reconstructor) > 0
    assert grads(out.losses["l1"], aligner.discriminator) == 0
    assert torch.allclose(out.losses["l1"], (out.value - reference).abs().mean())


def test_discriminator_judges_the_post_mr_vector():
    aligner, _, fused, reference = setup()
    aligner.eval()  # no dropout: the MR output is a function of its input
    out = aligner(fused, reference=reference)
    with torch.no_grad():
        real = aligner.discriminator(reference)
        fake = aligner.discriminator(aligner.reconstructor(fused))
        expected = torch.nn.functional.softplus(-real).mean() + torch.nn.functional.softplus(fake).mean()
        adversarial = torch.nn.functional.softplus(-aligner.discriminator(out.value)).mean()
    assert torch.allclose(out.losses["discriminator"], expected, atol=1e-6)
    assert torch.allclose(out.losses["adversarial"], adversarial, atol=1e-6)


def test_no_losses_without_reference_and_no_tanh_bound():
    aligner, _, fused, _ = setup()
    aligner.eval()
    out = aligner(fused)
    assert out.losses == {} and out.value.shape == (6, DIM)
    with torch.no_grad():
        aligner.reconstructor.net[-1].bias.fill_(5.0)
        assert aligner(fused).value.min() > 1.0  # the MR can reach unbounded targets (no final Tanh)


def test_gan_steps_train_the_discriminator_and_move_the_mr_toward_the_reference():
    aligner, _, fused, reference = setup()
    fused, reference = fused.detach(), reference.detach()
    d_opt = torch.optim.Adam(aligner.discriminator.parameters(), lr=1e-2)
    g_opt = torch.optim.Adam(aligner.reconstructor.parameters(), lr=1e-2)
    first = aligner(fused, reference=reference).losses
    for _ in range(60):
        losses = aligner(fused, reference=reference).losses
        d_params = list(aligner.discriminator.parameters())
        d_grads = torch.autograd.grad(losses["discriminator"], d_params, retain_graph=True)
        g_loss = 0.5 * losses["adversarial"] + 0.5 * losses["l1"]
        g_grads = torch.autograd.grad(g_loss, list(aligner.reconstructor.parameters()))
        for p, g in zip(aligner.discriminator.parameters(), d_grads):
            p.grad = g
        for p, g in zip(aligner.reconstructor.parameters(), g_grads):
            p.grad = g
        d_opt.step()
        g_opt.step()
    last = aligner(fused, reference=reference).losses
    assert last["l1"] < first["l1"]


def test_mr_only_aligner():
    torch.manual_seed(0)
    aligner = MRAligner(DIM, hidden=[8])
    assert MRAligner.aux_losses == ("l1",)
    assert not hasattr(aligner, "discriminator")
    out = aligner(torch.randn(4, DIM), reference=torch.randn(4, DIM))
    assert set(out.losses) == {"l1"} and grads(out.losses["l1"], aligner.reconstructor) > 0


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_norms_and_residual(norm):
    torch.manual_seed(0)
    aligner = GANAligner(DIM, hidden=[8], norm=norm, disc_norm=norm, residual=True).eval()
    x = torch.randn(4, DIM)
    with torch.no_grad():
        assert torch.equal(aligner(x).value, x)  # starts as the identity: the last Linear is zero
        aligner.reconstructor.net[-1].weight.normal_()
        assert torch.allclose(aligner(x).value, x + aligner.reconstructor.net(x))


def test_residual_mr_learns_from_identity():
    torch.manual_seed(0)
    aligner = MRAligner(DIM, hidden=[8], residual=True)
    x, target = torch.randn(16, DIM), torch.randn(16, DIM)
    out = aligner(x, reference=target)
    out.losses["l1"].backward()
    last = aligner.reconstructor.net[-1]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0


def test_invalid_settings():
    with pytest.raises(ComponentConfigError, match="norm"):
        GANAligner(DIM, norm="group")
    with pytest.raises(ComponentConfigError, match="hidden"):
        MRAligner(DIM, hidden=[0])
