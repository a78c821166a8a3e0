"""rohydr.regression / rohydr.classification heads and the rohydr.conv1d encoder."""

from __future__ import annotations

import pytest
import torch

from imrec.interfaces import ModalitySpec, TaskSpec
from imrec_rohydr import ClassificationHead, Conv1dEncoder, RegressionHead
from imrec_rohydr.errors import ComponentConfigError

REGRESSION = TaskSpec("regression", label_range=(-3.0, 3.0))
CLASSES = TaskSpec("classification", num_classes=5)


def test_regression_head_shape_losses_and_no_clamp():
    torch.manual_seed(0)
    head = RegressionHead(6, REGRESSION).eval()
    pred = head(torch.randn(4, 6)).value
    labels = torch.tensor([0.5, -1.0, 2.0, 0.0])
    assert pred.shape == (4,) and head(torch.randn(4, 6)).losses == {}
    assert torch.allclose(head.loss(pred, labels), (pred - labels).abs().mean())
    mse = RegressionHead(6, REGRESSION, loss="mse")
    assert torch.allclose(mse.loss(pred, labels), ((pred - labels) ** 2).mean())
    with torch.no_grad():
        head.trunk.out.bias.fill_(100.0)
    assert head(torch.zeros(2, 6)).value.min() > 3.0  # no clamp to label_range


def test_classification_head_logits_and_cross_entropy():
    torch.manual_seed(0)
    head = ClassificationHead(6, CLASSES)
    logits = head(torch.randn(3, 6)).value
    labels = torch.tensor([0, 4, 2])
    assert logits.shape == (3, 5)
    assert torch.allclose(head.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))


def test_heads_reject_the_other_task_kind():
    with pytest.raises(ComponentConfigError, match="rohydr.classification"):
        RegressionHead(6, CLASSES)
    with pytest.raises(ComponentConfigError, match="rohydr.regression"):
        ClassificationHead(6, REGRESSION)
    with pytest.raises(ComponentConfigError, match="loss"):
        RegressionHead(6, REGRESSION, loss="huber")


def test_trunk_is_residual():
    head = RegressionHead(4, REGRESSION, dropout=0.0)
    with torch.no_grad():
        head.trunk.proj2.weight.zero_()
        head.trunk.proj2.bias.zero_()
    x = torch.randn(3, 4)
    assert torch.allclose(head(x).value, head.trunk.out(x).squeeze(-1))


def test_encoder_shapes_zero_in_zero_out_and_vector_centre_tap():
    torch.manual_seed(0)
    spec = (ModalitySpec("seq", 7, 9), ModalitySpec("vec", 4, None))
    enc = Conv1dEncoder(spec, d_model=6, kernel_size=3)
    assert enc.out_dim == 6 and Conv1dEncoder.independent_modalities and Conv1dEncoder.aux_losses == ()
    assert all(conv.bias is None for conv in enc.proj.values())
    feats = {"seq": torch.randn(2, 9, 7), "vec": torch.randn(2, 4)}
    out = enc(feats, {}).value
    assert out["seq"].shape == (2, 9, 6) and out["vec"].shape == (2, 1, 6)
    # A vector is a length-1 sequence: the kernel reduces to its centre tap (a 1×1 projection).
    centre = enc.proj["vec"].weight[:, :, 1]
    assert torch.allclose(out["vec"][:, 0], feats["vec"] @ centre.T, atol=1e-6)
    zeros = enc({"seq": torch.zeros(2, 9, 7), "vec": torch.zeros(2, 4)}, {}).value
    assert all(not z.any() for z in zeros.values())
    # Each modality's tokens depend on that modality only.
    other = enc({"seq": feats["seq"], "vec": torch.randn(2, 4)}, {}).value
    assert torch.equal(other["seq"], out["seq"])


@pytest.mark.parametrize("kernel", [1, 2, 5])
def test_encoder_keeps_the_length_for_any_kernel(kernel):
    enc = Conv1dEncoder((ModalitySpec("s", 3, 8),), d_model=4, kernel_size=kernel)
    assert enc({"s": torch.randn(2, 8, 3)}, {}).value["s"].shape == (2, 8, 4)


def test_encoder_rejects_bad_settings():
    with pytest.raises(ComponentConfigError):
        Conv1dEncoder((ModalitySpec("s", 3, 8),), d_model=0)
    with pytest.raises(ComponentConfigError):
        Conv1dEncoder((ModalitySpec("s", 3, 8),), dropout=1.0)
