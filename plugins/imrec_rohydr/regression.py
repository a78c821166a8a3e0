"""RoHyDR's regression head (paper θ_c): residual MLP → one value, L1 or MSE task loss."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import TaskSpec

from .errors import ComponentConfigError
from .trunk import ResidualMLP, check_task

LOSSES = ("l1", "mse")


class RegressionHead(nn.Module):
    """Residual MLP (in_dim → in_dim → in_dim + skip) → one value per sample; task loss L1 (default) or MSE.

    The prediction is not clamped to the task's ``label_range``, neither in training nor at evaluation: MAE and
    correlation are computed on raw predictions (MMSA), and the binned metrics clip on their own.
    """

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_dim: int, task: TaskSpec, dropout: float = 0.1, loss: str = "l1") -> None:
        super().__init__()
        check_task(task, "regression", "rohydr.regression", "rohydr.classification")
        if loss not in LOSSES:
            raise ComponentConfigError(f"rohydr.regression: loss must be one of {LOSSES}, got {loss!r}")
        self.trunk = ResidualMLP(in_dim, 1, dropout)
        self.loss_kind = loss

    def forward(self, fused: Tensor) -> Output:
        return Output(value=self.trunk(fused).squeeze(-1))

    def loss(self, prediction: Tensor, labels: Tensor) -> Tensor:
        labels = labels.to(prediction.dtype).view_as(prediction)
        if self.loss_kind == "l1":
            return F.l1_loss(prediction, labels)
        return F.mse_loss(prediction, labels)
