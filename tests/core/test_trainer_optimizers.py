"""imrec.trainer.optimizers: each optimiser in its fastest implementation, with the same update rule."""

import pytest
import torch
from torch import nn

from imrec.trainer import build_optimizer, fast_implementation


def test_fast_implementation_picks_fused_adam_and_foreach_sgd():
    params = [nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2, 2))]
    assert fast_implementation("adam", params) == {"fused": True}
    assert fast_implementation("adamw", params) == {"fused": True}
    assert fast_implementation("sgd", params) == {"foreach": True}
    assert fast_implementation("rmsprop", params) == {}  # not one imrec names: torch's default
    assert fast_implementation("adam", [nn.Parameter(torch.zeros(3, device="meta"))]) == {}  # no such kernel there


@pytest.mark.parametrize("name, extra", [("adam", {"betas": [0.5, 0.9], "momentum": None}),
                                         ("adamw", {"betas": None, "momentum": None}),
                                         ("sgd", {"betas": None, "momentum": 0.9})])
def test_the_fast_implementation_makes_the_same_updates(name, extra):
    """The recipe's optimiser, built as a phase builds it, moves parameters as torch's default loop does."""
    cfg = type("Cfg", (), {"name": name, "lr": 0.1, "weight_decay": 0.01, **extra})
    torch.manual_seed(0)
    start = [torch.randn(4, 3), torch.randn(5)]
    fast_params = [nn.Parameter(t.clone()) for t in start]
    plain_params = [nn.Parameter(t.clone()) for t in start]
    fast = build_optimizer(cfg, fast_params)
    assert any(fast.defaults.get(k) for k in ("fused", "foreach"))
    kwargs = {k: v for k, v in fast.defaults.items() if k in ("lr", "weight_decay", "betas", "momentum")}
    plain = type(fast)(plain_params, **kwargs)
    for _ in range(3):
        grads = [torch.randn_like(t) for t in start]
        for params, opt in ((fast_params, fast), (plain_params, plain)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(fast_params, plain_params):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
