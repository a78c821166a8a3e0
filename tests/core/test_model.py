"""IMModel reads the capability flags its components declare, falling back to the protocols' defaults for
components that do not subclass a protocol (structural typing); build_model injects each slot's context."""

import pytest
import torch
from torch import nn

from imrec.errors import RecipeError
from imrec.interfaces import Batch, DatasetSpec, ModalitySpec, Output, TaskSpec
from imrec.model import IMModel, apply_mask, build_model

SPEC = DatasetSpec("toy", (ModalitySpec("a", 3), ModalitySpec("b", 3)), TaskSpec("regression"))


class Enc(nn.Module):
    """Per-modality linear tokens (B, 1, 4): a modality's tokens depend on it alone. Declares no flag."""

    aux_losses = ()
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4, bias=False)
        self.calls = 0

    def forward(self, features, lengths):
        self.calls += 1
        return Output({n: self.proj(x).unsqueeze(1) for n, x in features.items()})


class Fuser(nn.Module):
    """Sum of the tokens: each row depends on that row alone. Declares no flag."""

    aux_losses = ()
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.rows = []

    def forward(self, tokens, mask, names, lengths):
        self.rows.append(len(mask))
        return Output(sum(tokens[n][:, 0] for n in names))


class Aligner(nn.Module):
    aux_losses = ("l1",)

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.rows = []

    def forward(self, fused, reference=None):
        self.rows.append(len(fused))
        out = self.lin(fused)
        return Output(out, {"l1": (out - reference).abs().mean()} if reference is not None else {})


class Head(nn.Module):
    aux_losses = ()

    def forward(self, fused):
        return Output(fused.sum(dim=1))

    def loss(self, prediction, labels):
        return ((prediction - labels) ** 2).mean()


def _model(**flags):
    torch.manual_seed(0)
    enc, fuser, aligner = Enc(), Fuser(), Aligner()
    for obj, name in ((enc, "independent_modalities"), (fuser, "independent_samples"), (aligner, "incomplete_only")):
        if name in flags:
            setattr(obj, name, flags[name])
    return IMModel(SPEC, {"encoder": enc, "fuser": fuser, "aligner": aligner, "head": Head()})


def _batches():
    g = torch.Generator().manual_seed(1)
    full = Batch(("a", "b"), {"a": torch.randn(3, 3, generator=g), "b": torch.randn(3, 3, generator=g)},
                 torch.ones(3, 2, dtype=torch.bool), torch.randn(3, generator=g), ["x", "y", "z"])
    mask = torch.tensor([[True, True], [True, False], [False, True]])  # row 0 complete
    return apply_mask(full, mask), full


def test_without_declared_flags_the_protocols_defaults_apply():
    model = _model()
    batch, full = _batches()
    result = model(batch, full)
    assert model.encoder.calls == 2  # independent_modalities = False: the masked batch is encoded too
    assert model.fuser.rows == [3, 3]  # independent_samples = False: f_gt fuses every row again
    assert model.aligner.rows == [3]  # incomplete_only = False: every row is aligned
    assert set(result.losses) == {"aligner.l1", "task_rec", "task_gt"}


def test_declared_flags_skip_work_and_keep_the_result():
    plain = _model()
    batch, full = _batches()
    want = plain(batch, full)
    model = _model(independent_modalities=True, independent_samples=True)
    got = model(batch, full)
    assert model.encoder.calls == 1 and model.fuser.rows == [3, 2]  # only the incomplete rows again
    torch.testing.assert_close(got.prediction, want.prediction)
    torch.testing.assert_close(got.losses["task_gt"], want.losses["task_gt"])
    only = _model(incomplete_only=True)
    out = only(batch, full)
    assert only.aligner.rows == [2]  # the incomplete rows only
    without = only(batch, full, bypass=("aligner",))
    assert torch.equal(out.prediction[0], without.prediction[0])  # the complete row is predicted without it
    assert not torch.equal(out.prediction[1:], without.prediction[1:])


def test_only_optional_slots_can_be_bypassed():
    model = _model()
    batch, full = _batches()
    model(batch, full, bypass=("aligner",))
    assert model.aligner.rows == []
    with pytest.raises(ValueError, match="cannot bypass encoder; bypassable slots: recoverer, aligner"):
        model(batch, full, bypass=("encoder",))


def test_build_model_injects_each_slots_context(monkeypatch):
    seen = {}

    def build_component(kind, cfg, **context):
        seen[kind] = context
        return {"encoder": Enc, "fuser": Fuser, "aligner": Aligner, "head": Head}[kind]()

    monkeypatch.setattr("imrec.config.build_component", build_component)
    cfg = {"encoder": "e", "recoverer": None, "fuser": "f", "aligner": "a", "head": "h"}
    model = build_model(SPEC, cfg)
    assert model.slots() == ["encoder", "fuser", "aligner", "head"]
    assert seen == {"encoder": {"modalities": SPEC.modalities}, "fuser": {"modalities": SPEC.modalities, "d_model": 4},
                    "aligner": {"dim": 4}, "head": {"in_dim": 4, "task": SPEC.task}}
    with pytest.raises(ValueError, match="the model needs a head"):
        build_model(SPEC, {**cfg, "head": None})
    monkeypatch.setattr(Fuser, "out_dim", "4")
    with pytest.raises(RecipeError, match="the fuser does not expose an integer `out_dim`"):
        build_model(SPEC, cfg)
