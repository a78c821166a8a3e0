"""The residual MLP trunk shared by RoHyDR's heads (MulT's output block)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from imrec.interfaces import TaskSpec

from .errors import ComponentConfigError
from .layers import dropout


class ResidualMLP(nn.Module):
    """``h = x + Linear(Dropout(ReLU(Linear(x))))`` (width ``in_dim`` throughout), then ``Linear(in_dim → out)``.

    MulT's ``proj1 → ReLU → dropout → proj2 (+ residual) → out_layer``.
    """

    def __init__(self, in_dim: int, out: int, dropout: float) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ComponentConfigError(f"head: dropout must be in [0, 1), got {dropout}")
        self.proj1 = nn.Linear(in_dim, in_dim)
        self.proj2 = nn.Linear(in_dim, in_dim)
        self.out = nn.Linear(in_dim, out)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        h = self.proj2(dropout(F.relu(self.proj1(x)), self.dropout, self.training))
        return self.out(h + x)


def check_task(task: TaskSpec, expected: str, head: str, other: str) -> None:
    """Raise a clear error when a head is used on the other task kind."""
    if task.kind != expected:
        raise ComponentConfigError(
            f"head {head} predicts a {expected} target but the dataset's task is {task.kind}"
            + (f" with {task.num_classes} classes" if task.num_classes else "")
            + f"; use head: {{name: {other}}}"
        )
