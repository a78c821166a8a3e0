"""Single-process and ``torchrun`` (torch.distributed) execution, behind one small interface.

Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank trains on its shard of every epoch's order; gradients of each
optimisation step are averaged across ranks (gloo on CPU, nccl on GPU), which is what DistributedDataParallel
does, done per step because the trainer takes per-step gradients with ``torch.autograd.grad``. Missing masks
are computed from (seed, epoch, sample id) alone, so they do not depend on the rank. Evaluation runs on every
rank over the full split (identical results); only rank 0 writes the run directory and checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn


class Single:
    """One process: every collective is the identity."""

    rank, world, is_main = 0, 1, True
    allreduce_mean = None

    def device(self, default: torch.device) -> torch.device:
        return default

    def barrier(self) -> None:
        return None

    def all_true(self, flag: bool) -> bool:
        return flag

    def broadcast_path(self, path: Path | None) -> Path:
        assert path is not None
        return path

    def broadcast_module(self, module: nn.Module) -> None:
        return None

    def close(self) -> None:
        return None


class TorchDistributed(Single):
    """torch.distributed process group set up from torchrun's environment variables."""

    def __init__(self, backend: str | None = None):
        import torch.distributed as dist

        self.dist = dist
        self.rank = int(os.environ["RANK"])
        self.world = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        self.is_main = self.rank == 0
        use_cuda = torch.cuda.is_available()
        backend = backend or ("nccl" if use_cuda else "gloo")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        self.backend = backend
        self._cuda = use_cuda and backend == "nccl"

    def device(self, default: torch.device) -> torch.device:
        if self._cuda:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu") if default.type == "cuda" and not torch.cuda.is_available() else default

    def _dev(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self._cuda else torch.device("cpu")

    def barrier(self) -> None:
        self.dist.barrier()

    def all_true(self, flag: bool) -> bool:
        t = torch.tensor([1 if flag else 0], device=self._dev())
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MIN)
        return bool(t.item())

    def allreduce_mean(self, tensors: Sequence[torch.Tensor]) -> None:
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        self.dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n

    def broadcast_path(self, path: Path | None) -> Path:
        obj = [str(path) if path is not None else None]
        self.dist.broadcast_object_list(obj, src=0)
        return Path(obj[0])

    def broadcast_module(self, module: nn.Module) -> None:
        for t in list(module.parameters()) + list(module.buffers()):
            self.dist.broadcast(t.data, src=0)

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def from_environment() -> Single:
    """``TorchDistributed`` when launched by torchrun with more than one process, else ``Single``."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return TorchDistributed()
    return Single()
