"""RoHyDR's head for classification tasks: residual MLP → class logits, cross-entropy task loss."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from imrec import Output
from imrec.interfaces import TaskSpec

from .trunk import ResidualMLP, check_task


class ClassificationHead(nn.Module):
    """Residual MLP (in_dim → in_dim → in_dim + skip) → num_classes logits; cross-entropy task loss."""

    aux_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_dim: int, task: TaskSpec, dropout: float = 0.1) -> None:
        super().__init__()
        check_task(task, "classification", "rohydr.classification", "rohydr.regression")
        self.num_classes = int(task.num_classes)
        self.trunk = ResidualMLP(in_dim, self.num_classes, dropout)

    def forward(self, fused: Tensor) -> Output:
        return Output(value=self.trunk(fused))

    def loss(self, prediction: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(prediction, labels.long().view(-1))
