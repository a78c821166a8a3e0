"""Single-process and ``torchrun`` (torch.distributed) execution, behind one small interface.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the run keeps the single-process semantics and splits the work:

* **Batches.** ``train.batch_size`` is the *global* batch. Every epoch's order is the single-process permutation;
  rank ``r`` of ``W`` takes elements ``r, r + W, r + 2W, …`` and batches of ``batch_size / W``, so step ``b``
  of all ranks together covers exactly the single-process batch ``b`` (the last ``N mod W`` samples of an
  epoch's order are left out so that every rank takes the same number of steps).
* **Gradients.** Each optimisation step's gradients are averaged across ranks before clipping and the
  optimiser (what DistributedDataParallel does, done per step because the trainer takes per-step gradients
  with ``torch.autograd.grad``). A parameter no rank has a gradient for is skipped, as in one process.
* **Buffers** (e.g. HDDM's running token statistics) are made identical after every batch: floating-point
  buffers are averaged, others (counters) are taken from rank 0.
* **Randomness.** Missing masks are computed from (seed, epoch, sample id) alone, so they do not depend on the
  rank; dropout and diffusion noise are drawn from a per-rank stream, saved per rank in ``state.pt`` (resume).
* **Evaluation** runs on every rank over the full split (identical models, identical results); only rank 0
  writes the run directory and checkpoints.

Backends: gloo on CPU, nccl on GPU (one GPU per process, ``LOCAL_RANK``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

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

    def sync_buffers(self, module: nn.Module) -> None:
        return None

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

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
        """Average ``tensors`` (same shapes and dtype on every rank) in place, in one collective."""
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

    def sync_buffers(self, module: nn.Module) -> None:
        """Average floating-point buffers across ranks; take the others (counters) from rank 0."""
        floating = [b for b in module.buffers() if b.is_floating_point()]
        if floating:
            self.allreduce_mean([b.data for b in floating])
        for b in module.buffers():
            if not b.is_floating_point():
                self.dist.broadcast(b.data, src=0)

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        out: list[Any] = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.dist.is_initialized():
            self.dist.destroy_process_group()


def from_environment() -> Single:
    """``TorchDistributed`` when launched by torchrun with more than one process, else ``Single``."""
    return TorchDistributed() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else Single()
