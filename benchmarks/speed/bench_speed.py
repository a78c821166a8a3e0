"""Speed, scaling and memory of imrec's RoHyDR on synthetic data in CMU-MOSI shapes (docs/performance.md).

    python benchmarks/speed/bench_speed.py [--device cpu|cuda] [--threads N] [--json out.json]
                                           [--markdown out.md] [--quick] [--sections train,eval,…]

What is timed is the public path of a run of ``recipes/rohydr_mosi.yaml`` (its model and its ``recover``
phase: all four optimisation steps, 4-layer MulT, HDDM with UR, MR/GAN) on ``data.synthetic`` with MOSI
aligned shapes (T = 50; text 768, audio 5, vision 20; batch 32) at MR 2/3 (the ``random`` protocol's maximum
for K = 3, the papers' "0.7"):

* **train** — batches as ``Trainer.train_epoch`` runs them: gather rows (``imrec.loader``), apply the mask,
  ``Trainer.train_batch`` (one forward, four steps' gradients, their optimisers);
* **eval** — batches as ``imrec.trainer.evaluate`` runs them (mask, no-grad forward) at the recipe's
  evaluation batch (256) and at 32; at MR 0 the recoverer is never called (counted);
* **flops** — ``torch.utils.flop_counter.FlopCounterMode`` (matmul/conv/attention FLOPs) of one batch, the
  achieved FLOP/s and its fraction of a large-matmul peak measured in the same process;
* **profile** — ``torch.profiler`` key averages of training batches, and the time per component;
* **scaling** — epochs at ×1/×2/×4 dataset size; sampling steps; gradient through the last 1 vs all steps;
  batch size; K modalities; threads; ``reuse_forward``;
* **memory** — peak resident memory (``VmHWM``) of fresh processes: a MOSI-shaped run (data in memory), and a
  MOSEI-shaped run (16 326 × 50 × 768 text) from a memory-mapped ``data.npy`` folder.

Throughput is samples per second of wall time, the median over several timed windows after warm-up, with the
per-batch p50/p95; CPU time per batch is reported too (``time.process_time``: it does not count time the
process waited for a core, so it is the steadier figure when other work shares the machine — the load average
is recorded). Reference figures (docs/performance.md): 27 s per training batch of 32, 2.8 s per evaluation
batch, 14 GB peak, measured on a 2-core CPU with torch 2.13.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "rohydr_mosi.yaml"
MR = 2.0 / 3.0
MOSI = {"names": ["text", "audio", "vision"], "dims": [768, 5, 20], "lengths": [50, 50, 50],
        "sizes": [1284, 229, 686]}
MOSEI = {"names": ["text", "audio", "vision"], "dims": [768, 74, 35], "length": 50, "sizes": [16326, 1871, 4659]}
REFERENCE = {"train_samples_s": 32 / 27.0, "eval_samples_s": 32 / 2.8, "train_batch_s": 27.0, "eval_batch_s": 2.8,
             "peak_gb": 14.0}
TARGETS = {"train_samples_s": 60.0, "eval_samples_s": 220.0, "mosi_peak_gb": 1.5}


# ------------------------------------------------------------------------------------------------ machine
def load_average() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "device": str(device), "load_average_start": load_average()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def status_kb(key: str) -> int | None:
    """A ``/proc/self/status`` field in kB (``VmHWM``: peak resident set; ``RssAnon``; ``RssFile``)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int = 2048, repeat: int = 5) -> float:
    """Best FLOP/s of an ``n × n`` float32 matmul on this device, with the current thread setting."""
    n = n if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = math.inf
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


# ------------------------------------------------------------------------------------------------ building
@dataclass
class Setup:
    """A RoHyDR recipe's model, data and recover-phase plan, ready to run batches through the trainer."""

    recipe: Any
    prepared: Any
    model: Any
    trainer: Any
    phase: Any
    plan: Any
    p_idx: int
    device: torch.device
    workdir: tempfile.TemporaryDirectory


def data_override(sizes: Sequence[int], names=None, dims=None, lengths=None, seed: int = 0) -> str:
    names, dims, lengths = names or MOSI["names"], dims or MOSI["dims"], lengths or MOSI["lengths"]
    return (f"data={{name: synthetic, names: {list(names)}, dims: {list(dims)}, lengths: {list(lengths)}, "
            f"sizes: {list(sizes)}, seed: {seed}}}")


def build(device: torch.device, overrides: Sequence[str] = (), data: str | None = None, rate: float = MR,
          seed: int = 1111, dist: Any = None) -> Setup:
    """``recipes/rohydr_mosi.yaml`` with ``data`` (default: synthetic MOSI shapes, 256/64/256 samples), the
    recover phase at missing rate ``rate`` and ``overrides``; model built as ``imrec run`` builds it."""
    from imrec.config import load_recipe
    from imrec.distributed import Single
    from imrec.model import build_model
    from imrec.progress import Reporter
    from imrec.runner import prepare
    from imrec.trainer import Trainer, plan_phase, seed_everything

    dist = dist or Single()  # a torchrun context (the ``train-ddp`` section's workers): the data-parallel split
    device = dist.device(device)
    recipe = load_recipe(RECIPE, [data or data_override([256, 64, 256]),
                                  f"train.phases.recover.protocol={{name: random, rate: {rate!r}}}",
                                  f"device={device.type}", *overrides])
    prepared = prepare(recipe)
    seed_everything(seed)
    model = build_model(prepared.spec, recipe.model, str(recipe.source)).to(device)
    workdir = tempfile.TemporaryDirectory(prefix="imrec-speed-")
    dist.broadcast_module(model)
    trainer = Trainer(recipe, model, prepared.splits, prepared.train_conditions, prepared.select_conditions,
                      prepared.metrics, prepared.higher_is_better, seed, device, Path(workdir.name),
                      Reporter(enabled=False), dist=dist)
    p_idx = [p.name for p in recipe.train.phases].index("recover")
    phase = recipe.train.phases[p_idx]
    plan = plan_phase(model, phase, str(recipe.source))
    return Setup(recipe, prepared, model, trainer, phase, plan, p_idx, device, workdir)


def train_batches(s: Setup, epoch: int = 0) -> Iterator[tuple[Any, Any, Any]]:
    """The recover phase's training batches of one epoch, exactly as ``Trainer.train_epoch`` makes them."""
    from imrec.loader import condition_masks, epoch_order, iterate

    split = s.prepared.splits["train"]
    masked = condition_masks(s.prepared.train_conditions[s.p_idx], split, s.model.names, s.trainer.seed,
                             epoch=s.p_idx * 1_000_000 + epoch)
    order = epoch_order(len(split), s.trainer.seed, s.p_idx, epoch, s.trainer.shard)
    yield from iterate(masked, s.trainer.batch_size, order)


def train_mode(s: Setup) -> None:
    s.model.train()
    for path in s.plan.frozen:
        s.model.part(path).eval()


def run_train_batch(s: Setup, batch: tuple[Any, Any, Any]) -> int:
    from imrec.model import apply_mask

    full, mask, frames = batch
    full, mask = full.to(s.device), mask.to(s.device)
    frames = {k: v.to(s.device) for k, v in frames.items()} if frames else None
    s.trainer.train_batch(s.phase, s.plan, apply_mask(full, mask, frames), full, 0)
    if s.trainer.allreduce is not None:  # as Trainer.train_epoch: identical buffers on every process
        s.trainer.dist.sync_buffers(s.model)
    return full.size


def eval_batches(s: Setup, rate: float, batch_size: int, split: str = "test") -> list[tuple[Any, Any, Any]]:
    from imrec.loader import condition_masks, iterate
    from imrec_protocols.random_missing import RandomCondition

    masked = condition_masks(RandomCondition(rate), s.prepared.splits[split], s.model.names, s.trainer.seed, None)
    return list(iterate(masked, batch_size))


def run_eval_batch(s: Setup, batch: tuple[Any, Any, Any]) -> int:
    from imrec.model import apply_mask

    full, mask, frames = batch
    full, mask = full.to(s.device), mask.to(s.device)
    with torch.no_grad():
        s.model(apply_mask(full, mask, frames))
    return full.size


# ------------------------------------------------------------------------------------------------ timing
def timed(device: torch.device, fn: Callable[[], int]) -> tuple[float, float, int]:
    """(wall s, CPU s, samples) of one call."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, n


def throughput(device: torch.device, batches: Callable[[], Iterator[Any]], run: Callable[[Any], int],
               warmup: int, windows: int, per_window: int) -> dict[str, Any]:
    """Samples/s: median over ``windows`` windows of ``per_window`` batches, after ``warmup`` batches."""
    stream = batches()

    def next_batch():
        nonlocal stream
        try:
            return next(stream)
        except StopIteration:
            stream = batches()
            return next(stream)

    for _ in range(warmup):
        run(next_batch())
    rates, cpu_rates, per_batch, per_batch_cpu = [], [], [], []
    for _ in range(windows):
        wall = cpu = 0.0
        n = 0
        for _ in range(per_window):
            b = next_batch()
            w, c, k = timed(device, lambda: run(b))
            wall, cpu, n = wall + w, cpu + c, n + k
            per_batch.append(w)
            per_batch_cpu.append(c)
        rates.append(n / wall)
        cpu_rates.append(n / cpu if cpu > 0 else math.nan)
    return {
        "samples_s": statistics.median(rates), "samples_s_windows": [round(r, 2) for r in rates],
        "samples_per_cpu_s": statistics.median(cpu_rates),
        "batch_s_p50": float(np.percentile(per_batch, 50)), "batch_s_p95": float(np.percentile(per_batch, 95)),
        "batch_cpu_s_p50": float(np.percentile(per_batch_cpu, 50)), "batches_timed": len(per_batch),
    }


# ------------------------------------------------------------------------------------------------ FLOPs
def _sdpa_cpu_flops(query, key, value, *args, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def _sdpa_cpu_backward_flops(grad_out, query, key, value, *args, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, query, key, value)


def count_flops(fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """Total FLOPs of ``fn()`` and their split by operator (matmul, conv, attention; CPU attention included)."""
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
               aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        fn()
    by_op = {str(k).split(".")[-1]: int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return int(counter.get_total_flops()), by_op


# ------------------------------------------------------------------------------------------------ sections
def section_train(s: Setup, q: bool) -> dict[str, Any]:
    train_mode(s)
    res = throughput(s.device, lambda: train_batches(s), lambda b: run_train_batch(s, b), warmup=2,
                     windows=3 if q else 5, per_window=2 if q else 4)
    res["batch_size"] = s.recipe.train.batch_size
    res["x_reference"] = res["samples_s"] / REFERENCE["train_samples_s"]
    return res


def section_train_ddp(args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput of ``--procs`` data-parallel processes (torchrun, gloo on CPU, one thread each), as
    ``torchrun -m imrec run`` trains: the global batch of 32 split over the processes, each step's gradients
    averaged across them. Samples/s counts the global batch (all processes' rows)."""
    out_file = Path(tempfile.mkstemp(prefix="imrec-ddp-", suffix=".json")[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.procs}",
           str(Path(__file__).resolve()), "--child", "ddp", "--threads", "1", "--device", args.device,
           "--json", str(out_file)] + (["--quick"] if args.quick else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"torchrun failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    res = json.loads(out_file.read_text())
    out_file.unlink()
    res["processes"] = args.procs
    res["command"] = " ".join(cmd[:6]) + " … --child ddp"
    return res


def child_ddp(args: argparse.Namespace) -> None:
    """One torchrun worker of ``section_train_ddp``; rank 0 writes the figures (global samples/s)."""
    from imrec.distributed import from_environment

    dist = from_environment()
    s = build(torch.device(args.device), dist=dist)
    res = section_train(s, args.quick)
    for key in ("samples_s", "x_reference"):
        res[key] *= dist.world  # every process timed the same lock-step batches; each holds 1/W of the rows
    res["samples_s_windows"] = [round(r * dist.world, 2) for r in res["samples_s_windows"]]
    res["batch_size"] = s.recipe.train.batch_size
    if dist.is_main:
        args.json.write_text(json.dumps(res))
    dist.close()


def count_recoverer_calls(s: Setup, fn: Callable[[], Any]) -> int:
    calls = [0]
    handle = s.model.recoverer.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        fn()
    finally:
        handle.remove()
    return calls[0]


def section_eval(s: Setup, q: bool) -> dict[str, Any]:
    from imrec.trainer import evaluate
    from imrec_protocols.random_missing import RandomCondition

    s.model.eval()
    out: dict[str, Any] = {}
    for bs in (s.recipe.train.eval_batch_size, 32):
        for rate in (MR, 0.0):
            batches = eval_batches(s, rate, bs)
            res = throughput(s.device, lambda: iter(batches), lambda b: run_eval_batch(s, b), warmup=1,
                             windows=3 if q else 5, per_window=max(1, min(len(batches), 256 // bs)))
            res["recoverer_calls"] = count_recoverer_calls(s, lambda: [run_eval_batch(s, b) for b in batches])
            res["x_reference"] = res["samples_s"] / REFERENCE["eval_samples_s"]
            out[f"bs{bs}_mr{rate:.2f}"] = res
    # The public function end to end (masks, forward, metrics, recovery metrics) on the whole TEST split.
    split = s.prepared.splits["test"]
    w, c, _ = timed(s.device, lambda: (evaluate(s.model, split, RandomCondition(MR), s.trainer.seed,
                                                s.recipe.train.eval_batch_size, s.prepared.metrics, s.device,
                                                recovery=True), len(split))[1])
    out["evaluate_test_split"] = {"samples": len(split), "wall_s": w, "cpu_s": c, "samples_s": len(split) / w}
    train_mode(s)
    return out


def section_flops(s: Setup, train_res: dict[str, Any] | None, eval_res: dict[str, Any] | None) -> dict[str, Any]:
    batches = train_batches(s, epoch=1)
    train_mode(s)
    run_train_batch(s, next(batches))
    b = next(batches)
    train_flops, train_ops = count_flops(lambda: run_train_batch(s, b))
    s.model.eval()
    eb = eval_batches(s, MR, 32)[0]
    eval_flops, eval_ops = count_flops(lambda: run_eval_batch(s, eb))
    train_mode(s)
    peak = matmul_peak(s.device)
    out = {"train_flops_per_sample": train_flops / b[0].size, "train_flops_by_op": train_ops,
           "eval_flops_per_sample": eval_flops / eb[0].size, "eval_flops_by_op": eval_ops,
           "matmul_peak_flop_s": peak, "threads": torch.get_num_threads()}
    if train_res:
        out["train_achieved_flop_s"] = out["train_flops_per_sample"] * train_res["samples_s"]
        out["train_achieved_fraction_of_peak"] = out["train_achieved_flop_s"] / peak
        out["train_achieved_flop_per_cpu_s"] = out["train_flops_per_sample"] * train_res["samples_per_cpu_s"]
    if eval_res:
        e = eval_res[f"bs{s.recipe.train.eval_batch_size}_mr{MR:.2f}"]
        out["eval_achieved_flop_s"] = out["eval_flops_per_sample"] * e["samples_s"]
        out["eval_achieved_fraction_of_peak"] = out["eval_achieved_flop_s"] / peak
    return out


def section_profile(s: Setup, q: bool) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    train_mode(s)
    batches = train_batches(s, epoch=2)
    run_train_batch(s, next(batches))
    # Time per component: forward hooks per slot, the steps' gradients, the optimisers.
    acc: dict[str, float] = {}
    clock = time.perf_counter

    def add(key: str, value: float) -> None:
        acc[key] = acc.get(key, 0.0) + value

    handles = []
    for slot in s.model.slots():
        mod = getattr(s.model, slot)
        handles.append(mod.register_forward_pre_hook(lambda m, a, k=slot: setattr(m, "_bench_t0", clock()),
                                                     with_kwargs=False))
        handles.append(mod.register_forward_hook(lambda m, a, o, k=slot: add(f"forward.{k}", clock() - m._bench_t0)))
    grad = torch.autograd.grad

    def timed_grad(*args, **kwargs):
        start = clock()
        try:
            return grad(*args, **kwargs)
        finally:
            add("backward (all steps)", clock() - start)

    for opt in s.plan.optimizers.values():
        handles.append(opt.register_step_pre_hook(lambda o, a, k: setattr(o, "_bench_t0", clock())))
        handles.append(opt.register_step_post_hook(lambda o, a, k: add("optimisers", clock() - o._bench_t0)))
    n = 2 if q else 4
    total = 0.0
    torch.autograd.grad = timed_grad
    try:
        for _ in range(n):
            b = next(batches)
            total += timed(s.device, lambda: run_train_batch(s, b))[0]
    finally:
        torch.autograd.grad = grad
        for h in handles:
            h.remove()
    acc["other (loader, masks, losses, bookkeeping)"] = total - sum(acc.values())
    components = {k: {"s_per_batch": v / n, "share": v / total} for k, v in acc.items()}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(2):
            run_train_batch(s, next(batches))
    sort = "self_device_time_total" if s.device.type == "cuda" else "self_cpu_time_total"
    events = list(prof.key_averages())
    total_self = sum(getattr(e, sort) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, sort), reverse=True)
    top = [{"op": e.key, "self_ms_per_batch": getattr(e, sort) / 1e3 / 2, "share": getattr(e, sort) / total_self,
            "calls_per_batch": e.count / 2} for e in events[:15]]
    return {"components": components, "top_ops": top,
            "table": prof.key_averages().table(sort_by=sort, row_limit=15, max_name_column_width=60)}


def section_scaling(device: torch.device, q: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    small = {"warmup": 1, "windows": 2, "per_window": 1} if q else {"warmup": 1, "windows": 3, "per_window": 2}

    def train_rate(s: Setup) -> dict[str, Any]:
        train_mode(s)
        return throughput(device, lambda: train_batches(s), lambda b: run_train_batch(s, b), **small)

    def eval_rate(s: Setup, rate: float = MR) -> dict[str, Any]:
        s.model.eval()
        batches = eval_batches(s, rate, s.recipe.train.eval_batch_size)
        r = throughput(device, lambda: iter(batches), lambda b: run_eval_batch(s, b), warmup=1,
                       windows=small["windows"], per_window=1)
        train_mode(s)
        return r

    # Dataset size: whole epochs (Trainer.train_epoch) at ×1, ×2, ×4.
    base = 64 if q else 256
    rows = []
    for mult in (1, 2, 4):
        s = build(device, data=data_override([base * mult, 32, 32]))
        train_mode(s)
        warm = train_batches(s)
        for _ in range(2):
            run_train_batch(s, next(warm))
        w, c, _ = timed(device, lambda: (s.trainer.train_epoch(s.p_idx, s.phase, s.plan, 1), 0)[1])
        rows.append({"multiple": mult, "samples": base * mult, "epoch_s": w, "epoch_cpu_s": c,
                     "s_per_sample": w / (base * mult), "cpu_s_per_sample": c / (base * mult)})
    for r in rows:
        r["cpu_s_per_sample_vs_x1"] = r["cpu_s_per_sample"] / rows[0]["cpu_s_per_sample"]
    out["dataset_size"] = rows
    # Sampling steps (training sampler = evaluation sampler), gradient through the last step.
    out["sampling_steps"] = []
    for steps in ((1, 5, 20) if q else (1, 5, 10, 20, 50)):
        s = build(device, [f"model.recoverer.train_sample_steps={steps}", "model.recoverer.grad_steps=1"])
        out["sampling_steps"].append({"steps": steps, "train": train_rate(s), "eval": eval_rate(s)})
    # Truncated backpropagation through the sampler: the last step vs every step.
    out["grad_steps"] = []
    for steps, grad_steps in ((5, 1), (5, 5)) + (() if q else ((50, 1), (50, 50))):
        s = build(device, [f"model.recoverer.train_sample_steps={steps}", f"model.recoverer.grad_steps={grad_steps}"])
        out["grad_steps"].append({"steps": steps, "grad_steps": grad_steps, "train": train_rate(s)})
    # Batch size.
    out["batch_size"] = []
    for bs in ((8, 32) if q else (8, 16, 32, 64)):
        s = build(device, [f"train.batch_size={bs}"])
        out["batch_size"].append({"batch_size": bs, "train": train_rate(s)})
    # Number of modalities K (MR 0.5: valid for every K ≥ 2).
    out["modalities"] = []
    extra = {"names": ["text", "audio", "vision", "pose"], "dims": [768, 5, 20, 35], "lengths": [50] * 4}
    for k in (2, 3, 4):
        data = data_override([128 if q else 256, 32, 64], extra["names"][:k], extra["dims"][:k], extra["lengths"][:k])
        s = build(device, ["eval.conditions=[{name: random, rates: [0.5]}]"], data=data, rate=0.5)
        out["modalities"].append({"K": k, "mr": 0.5, "train": train_rate(s), "eval": eval_rate(s, 0.5)})
    # Separate forwards per step (the reference's sequential schedule) vs one shared forward.
    out["reuse_forward"] = []
    for reuse in (True, False):
        s = build(device, [f"train.phases.recover.reuse_forward={str(reuse).lower()}"])
        out["reuse_forward"].append({"reuse_forward": reuse, "train": train_rate(s)})
    # Threads (CPU): intra-op parallelism on tiny tensors vs other work on the machine.
    if device.type == "cpu":
        out["threads"] = []
        before = torch.get_num_threads()
        for n in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(n)
            s = build(device)
            out["threads"].append({"threads": n, "train": train_rate(s), "eval": eval_rate(s)})
        torch.set_num_threads(before)
    return out


# ------------------------------------------------------------------------------------------------ memory
class AnonPeak:
    """Samples ``RssAnon`` (memory not backed by files) every 20 ms in a thread; ``peak_kb`` after ``stop``."""

    def __init__(self) -> None:
        self.peak_kb = status_kb("RssAnon") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kb = max(self.peak_kb, status_kb("RssAnon") or 0)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


def write_mosei_folder(folder: Path, scale: float) -> dict[str, Any]:
    """A ``data.npy`` folder in MOSEI aligned shapes (random float32 features), written in blocks."""
    sizes = [max(64, int(n * scale)) for n in MOSEI["sizes"]]
    marker = folder / f"complete-{'-'.join(map(str, sizes))}"
    if not marker.exists():
        for old in folder.glob("complete-*"):
            old.unlink()
        rng = np.random.default_rng(0)
        for split, n in zip(("train", "valid", "test"), sizes):
            out = folder / split
            out.mkdir(parents=True, exist_ok=True)
            for name, dim in zip(MOSEI["names"], MOSEI["dims"]):
                arr = np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=np.float32,
                                                shape=(n, MOSEI["length"], dim))
                for lo in range(0, n, 1024):
                    arr[lo : lo + 1024] = rng.standard_normal(arr[lo : lo + 1024].shape, dtype=np.float32)
                arr.flush()
                del arr
            np.save(out / "labels.npy", rng.uniform(-3, 3, n).astype(np.float32))
            np.save(out / "ids.npy", np.array([f"{split}-{i}" for i in range(n)]))
        marker.touch()
    nbytes = sum(p.stat().st_size for p in folder.rglob("*.npy"))
    return {"sizes": sizes, "bytes_on_disk": nbytes, "text_train_shape": [sizes[0], MOSEI["length"], 768]}


def child_memory(kind: str, device: torch.device, q: bool, scratch: Path) -> dict[str, Any]:
    """Run in a fresh process: train batches of the recover phase and evaluate, report the peak memory."""
    from imrec.trainer import evaluate, release_freed_memory
    from imrec_protocols.random_missing import RandomCondition

    info: dict[str, Any] = {"kind": kind}
    if kind == "mosei":  # the folder was written by the parent process (writing maps the pages it writes)
        info.update(write_mosei_folder(scratch / "mosei-npy", 0.125 if q else 1.0))
        data = f"data={{name: npy, folder: {scratch / 'mosei-npy'}, modalities: [text, audio, vision]}}"
    else:
        data = data_override(MOSI["sizes"])
    anon = AnonPeak()
    start = time.perf_counter()
    s = build(device, data=data)
    info["load_and_build_s"] = time.perf_counter() - start
    train_mode(s)
    n_batches = 8 if q else 41  # MOSI: the whole epoch (1284 samples); MOSEI: its first 41 of 511 batches
    start = time.perf_counter()
    done = 0
    for b in train_batches(s):  # in the epoch's order: rows from all over the files
        if done >= n_batches:
            break
        run_train_batch(s, b)
        done += 1
    release_freed_memory()  # as Trainer.fit does after every epoch, before validation
    info["train_batches"] = done
    info["train_s"] = time.perf_counter() - start
    # The public evaluation (lazy batches of 256, recovery metrics) over the whole TEST split.
    start = time.perf_counter()
    test = s.prepared.splits["test"]
    evaluate(s.model, test, RandomCondition(MR), s.trainer.seed, s.recipe.train.eval_batch_size,
             s.prepared.metrics, s.device, recovery=True)
    info["eval_samples"] = len(test)
    info["eval_s"] = time.perf_counter() - start
    info["peak_rss_kb"] = status_kb("VmHWM")
    info["peak_anon_kb"] = anon.stop()
    info["rss_file_kb_end"] = status_kb("RssFile")
    info["feature_bytes"] = int(sum(a.nbytes for sp in s.prepared.splits.values() for a in sp.modalities.values()))
    if device.type == "cuda":
        info["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return info


def section_memory(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    write_mosei_folder(args.scratch / "mosei-npy", 0.125 if args.quick else 1.0)
    for kind in ("mosi", "mosei"):
        cmd = [sys.executable, __file__, "--child", kind, "--device", args.device, "--threads", str(args.threads),
               "--scratch", str(args.scratch)] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child {kind} failed:\n{proc.stderr[-3000:]}")
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ------------------------------------------------------------------------------------------------ report
def fmt(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def targets_table(r: dict[str, Any]) -> list[str]:
    """The issue's targets against this run's best figures (ratios to the reference's figures)."""
    rows = []
    trains = [(f"one process, {r['machine']['threads']} thread(s)", r["train"]) if "train" in r else None,
              (f"{r['train_ddp']['processes']} processes (torchrun)", r["train_ddp"]) if "train_ddp" in r else None]
    trains = [t for t in trains if t]
    if trains:
        how, best = max(trains, key=lambda t: t[1]["samples_s"])
        x = best["samples_s"] / REFERENCE["train_samples_s"]
        rows.append(f"| training throughput ≥ 50× reference ({50 * REFERENCE['train_samples_s']:.1f} samples/s) | "
                    f"{fmt(best['samples_s'])} samples/s = **{x:.1f}×** ({how}) | {'yes' if x >= 50 else 'no'} |")
    if "eval" in r:
        key = next((k for k in r["eval"] if k.startswith("bs") and not k.endswith("mr0.00")), None)
        if key:
            e = r["eval"][key]
            x = e["samples_s"] / REFERENCE["eval_samples_s"]
            rows.append(f"| evaluation throughput ≥ 20× reference ({20 * REFERENCE['eval_samples_s']:.0f} samples/s), "
                        f"MR 2/3 | {fmt(e['samples_s'])} samples/s = **{x:.1f}×** (batch {key[2:].split('_')[0]}) | "
                        f"{'yes' if x >= 20 else 'no'} |")
        zero = [v["recoverer_calls"] for k, v in r["eval"].items() if k.endswith("mr0.00")]
        if zero:
            rows.append(f"| no diffusion for complete samples | recoverer calls at MR 0: {sum(zero)} | "
                        f"{'yes' if sum(zero) == 0 else 'no'} |")
    if "memory" in r and "mosi" in r["memory"]:
        gb = r["memory"]["mosi"]["peak_rss_kb"] * 1024 / 1e9
        rows.append(f"| peak memory of a MOSI-shaped training run ≤ 1.5 GB | {gb:.2f} GB | {'yes' if gb <= 1.5 else 'no'} |")
    if "memory" in r and "mosei" in r["memory"]:
        mm = r["memory"]["mosei"]
        ok = mm["peak_rss_kb"] * 1024 < mm["feature_bytes"]
        rows.append(f"| MOSEI-shaped data trains without two copies in memory | "
                    f"{mm['feature_bytes'] / 2**30:.2f} GiB of features, peak {mm['peak_rss_kb'] / 2**20:.2f} GiB "
                    f"(memory-mapped) | {'yes' if ok else 'no'} |")
    if not rows:
        return []
    return ["| target | this run | met |", "|---|---|---|", *rows, ""]


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} threads, device "
             f"{m['device']}; load average {m['load_average_start']} at start, {m.get('load_average_end')} at end.",
             ""]
    lines += targets_table(r)
    if "train" in r:
        t = r["train"]
        lines += ["| | samples/s (median of windows) | per batch p50 / p95 | CPU s per batch | × reference |",
                  "|---|---|---|---|---|",
                  f"| train, batch {t['batch_size']}, MR 2/3 | {fmt(t['samples_s'])} | {t['batch_s_p50']:.3f} / "
                  f"{t['batch_s_p95']:.3f} s | {t['batch_cpu_s_p50']:.3f} | {t['x_reference']:.1f}× "
                  f"(ref. {REFERENCE['train_samples_s']:.2f}) |"]
    if "train_ddp" in r:
        t = r["train_ddp"]
        if "train" not in r:
            lines += ["| | samples/s (median of windows) | per batch p50 / p95 | CPU s per batch | × reference |",
                      "|---|---|---|---|---|"]
        lines.append(f"| train, batch {t['batch_size']}, MR 2/3, {t['processes']} processes (torchrun, 1 thread "
                     f"each) | {fmt(t['samples_s'])} | {t['batch_s_p50']:.3f} / {t['batch_s_p95']:.3f} s | "
                     f"{t['batch_cpu_s_p50']:.3f} per process | {t['x_reference']:.1f}× "
                     f"(ref. {REFERENCE['train_samples_s']:.2f}) |")
    if "eval" in r:
        for key, e in r["eval"].items():
            if key.startswith("bs"):
                bs, mr = key[2:].split("_mr")
                lines.append(f"| eval, batch {bs}, MR {mr} | {fmt(e['samples_s'])} | {e['batch_s_p50']:.3f} / "
                             f"{e['batch_s_p95']:.3f} s | {e['batch_cpu_s_p50']:.3f} | {e['x_reference']:.1f}× "
                             f"(ref. {REFERENCE['eval_samples_s']:.1f}); recoverer calls {e['recoverer_calls']} |")
        e = r["eval"]["evaluate_test_split"]
        lines.append(f"| `evaluate()` whole TEST split ({e['samples']}), MR 2/3, with recovery metrics | "
                     f"{fmt(e['samples_s'])} | | {e['cpu_s']:.2f} total | |")
    if "flops" in r:
        f = r["flops"]
        lines += ["", "| FLOPs | per sample | achieved | fraction of matmul peak |", "|---|---|---|---|",
                  f"| train | {f['train_flops_per_sample'] / 1e9:.3f} GFLOP | "
                  f"{f.get('train_achieved_flop_s', math.nan) / 1e9:.1f} GFLOP/s | "
                  f"{100 * f.get('train_achieved_fraction_of_peak', math.nan):.1f} % |",
                  f"| eval | {f['eval_flops_per_sample'] / 1e9:.3f} GFLOP | "
                  f"{f.get('eval_achieved_flop_s', math.nan) / 1e9:.1f} GFLOP/s | "
                  f"{100 * f.get('eval_achieved_fraction_of_peak', math.nan):.1f} % |",
                  f"| matmul peak (2048², {f['threads']} threads, same process) | | "
                  f"{f['matmul_peak_flop_s'] / 1e9:.1f} GFLOP/s | 100 % |"]
    if "profile" in r:
        lines += ["", "| component (training batch) | s per batch | share |", "|---|---|---|"]
        for k, v in r["profile"]["components"].items():
            lines.append(f"| {k} | {v['s_per_batch']:.3f} | {100 * v['share']:.0f} % |")
        lines += ["", "| operator (torch.profiler, self time) | ms per batch | share | calls per batch |",
                  "|---|---|---|---|"]
        for e in r["profile"]["top_ops"]:
            lines.append(f"| `{e['op']}` | {e['self_ms_per_batch']:.1f} | {100 * e['share']:.1f} % | "
                         f"{e['calls_per_batch']:.0f} |")
    if "scaling" in r:
        sc = r["scaling"]
        lines += ["", "| dataset size | samples | epoch s | CPU s per sample | vs ×1 |", "|---|---|---|---|---|"]
        for row in sc["dataset_size"]:
            lines.append(f"| ×{row['multiple']} | {row['samples']} | {row['epoch_s']:.1f} | "
                         f"{row['cpu_s_per_sample']:.4f} | {row['cpu_s_per_sample_vs_x1']:.2f} |")
        lines += ["", "| setting | train samples/s | train samples per CPU-s | train CPU s/batch | eval samples/s | "
                      "eval samples per CPU-s |", "|---|---|---|---|---|---|"]

        def row_text(label: str, train: dict[str, Any], ev: dict[str, Any] | None) -> str:
            e = (f"{fmt(ev['samples_s'])} | {fmt(ev['samples_per_cpu_s'])}" if ev else " | ")
            return (f"| {label} | {fmt(train['samples_s'])} | {fmt(train['samples_per_cpu_s'])} | "
                    f"{train['batch_cpu_s_p50']:.3f} | {e} |")

        for row in sc["sampling_steps"]:
            lines.append(row_text(f"sampling steps {row['steps']} (grad through last 1)", row["train"], row["eval"]))
        for row in sc["grad_steps"]:
            lines.append(row_text(f"{row['steps']} steps, gradient through {row['grad_steps']}", row["train"], None))
        for row in sc["batch_size"]:
            lines.append(row_text(f"batch size {row['batch_size']}", row["train"], None))
        for row in sc["modalities"]:
            lines.append(row_text(f"K = {row['K']} modalities (MR 0.5)", row["train"], row["eval"]))
        for row in sc["reuse_forward"]:
            lines.append(row_text(f"reuse_forward {str(row['reuse_forward']).lower()}", row["train"], None))
        for row in sc.get("threads", []):
            lines.append(row_text(f"{row['threads']} thread(s)", row["train"], row["eval"]))
    if "memory" in r:
        lines += ["", "| run (fresh process) | features | peak RSS (VmHWM) | peak anonymous RSS | train / eval |",
                  "|---|---|---|---|---|"]
        for kind, mm in r["memory"].items():
            what = ("MOSI shapes, in memory" if kind == "mosi" else
                    f"MOSEI shapes {mm['text_train_shape']} text, data.npy memory-mapped")
            lines.append(f"| {what} | {mm['feature_bytes'] / 2**30:.2f} GiB | {mm['peak_rss_kb'] / 2**20:.2f} GiB | "
                         f"{mm['peak_anon_kb'] / 2**20:.2f} GiB | {mm['train_batches']} batches / "
                         f"{mm['eval_samples']} samples |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads (CPU)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--results", type=Path,
                        help="write RESULTS.md here: the tables with the command, date, commit and machine")
    parser.add_argument("--quick", action="store_true", help="fewer windows, a smaller grid, 1/8 MOSEI (minutes)")
    parser.add_argument("--sections", default="train,train-ddp,eval,flops,profile,scaling,memory")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "imrec-speed",
                        help="where the MOSEI-shaped data.npy folder is written (kept for reruns)")
    parser.add_argument("--procs", type=int, default=2,
                        help="data-parallel processes of the train-ddp section (torchrun, one thread each)")
    parser.add_argument("--child", choices=["mosi", "mosei", "ddp"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("IMREC_LOAD_PLUGINS", "")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    if args.child == "ddp":
        child_ddp(args)
        return 0
    if args.child:
        print(json.dumps(child_memory(args.child, device, args.quick, args.scratch)))
        return 0
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    result: dict[str, Any] = {"command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
                              "machine": machine(device), "reference": REFERENCE, "targets": TARGETS}
    main_setup = build(device) if {"train", "eval", "flops", "profile"} & set(sections) else None
    for name in sections:
        start = time.perf_counter()
        if name == "train":
            result["train"] = section_train(main_setup, args.quick)
        elif name == "train-ddp":
            result["train_ddp"] = section_train_ddp(args)
        elif name == "eval":
            result["eval"] = section_eval(main_setup, args.quick)
        elif name == "flops":
            result["flops"] = section_flops(main_setup, result.get("train"), result.get("eval"))
        elif name == "profile":
            result["profile"] = section_profile(main_setup, args.quick)
        elif name == "scaling":
            result["scaling"] = section_scaling(device, args.quick)
        elif name == "memory":
            result["memory"] = section_memory(args)
        else:
            parser.error(f"unknown section {name!r}")
        print(f"[{name}: {time.perf_counter() - start:.0f} s]", file=sys.stderr, flush=True)
    result["machine"]["load_average_end"] = load_average()
    result["machine"]["peak_rss_kb_this_process"] = status_kb("VmHWM")
    table = markdown(result)
    print(table)
    if "profile" in result:
        print(result["profile"]["table"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    if args.results:
        args.results.write_text(results_page(result, table))
    return 0


def results_page(result: dict[str, Any], table: str) -> str:
    """``benchmarks/speed/RESULTS.md``: this run's figures and what produced them."""
    from imrec.runs import source_commit

    commit = source_commit()
    return (
        "# Speed results (`benchmarks/speed/bench_speed.py`)\n\n"
        "Written by the benchmark itself; what the figures mean, the knobs and the reference figures: "
        "[docs/performance.md](../../docs/performance.md).\n\n"
        f"- command: `python {result['command']}`\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}; code: commit `{commit}`\n"
        "- workload: `recipes/rohydr_mosi.yaml` (recover phase: 4 steps, 4-layer MulT, HDDM + UR, MR/GAN) on "
        "synthetic data in MOSI aligned shapes (T = 50; text 768, audio 5, vision 20), batch 32, MR 2/3; "
        "reference: 27 s per training batch, 2.8 s per evaluation batch, 14 GB (same machine type)\n\n"
        + table
    )


if __name__ == "__main__":
    sys.exit(main())
