"""The measured effect of each speed/memory optimisation (docs/performance.md), each switched off and on in ONE
process on the same batches, so that the ratio does not depend on what else runs on the machine.

    python benchmarks/speed/optimisations.py [--threads 1] [--repeat 7] [--json out.json]

Times are CPU seconds (``time.process_time``), the median of ``--repeat`` alternating off/on measurements
after a warm-up, on RoHyDR (``recipes/rohydr_mosi.yaml``) at MOSI shapes, batch 32, MR 2/3 unless stated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_speed as B  # noqa: E402


def alternate(off: Callable[[], Any], on: Callable[[], Any], repeat: int,
              setup_off: Callable[[], None], setup_on: Callable[[], None]) -> dict[str, float]:
    """Median CPU seconds of ``off`` and ``on``, measured alternately (each after its setup)."""
    times: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(repeat + 1):
        for key, setup, fn in (("off", setup_off, off), ("on", setup_on, on)):
            setup()
            start = time.process_time()
            fn()
            if i:  # the first round is the warm-up
                times[key].append(time.process_time() - start)
    off_s, on_s = statistics.median(times["off"]), statistics.median(times["on"])
    return {"off_s": off_s, "on_s": on_s, "speedup": off_s / on_s}


def train_step(s: B.Setup) -> Callable[[], Any]:
    batches = list(B.train_batches(s))
    state = {"i": 0}

    def run() -> None:
        B.run_train_batch(s, batches[state["i"] % len(batches)])
        state["i"] += 1

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("IMREC_LOAD_PLUGINS", "")
    torch.set_num_threads(args.threads)
    import imrec_rohydr.layers as layers
    import imrec_rohydr.transformer as transformer
    from imrec.trainer import fast_implementation
    from imrec_rohydr.layers import FeedForward, sinusoidal_embedding

    device = torch.device("cpu")
    out: dict[str, Any] = {"threads": args.threads, "load_average_start": B.load_average()}
    noop = lambda: None  # noqa: E731

    # 1. Fused Adam: one full optimiser step over RoHyDR's trainable parameters of the recover phase.
    s = B.build(device)
    params = [p for p in s.model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    plain = torch.optim.Adam(params, lr=1e-3)
    fused = torch.optim.Adam(params, lr=1e-3, **fast_implementation("adam", params))
    out["fused_adam_step"] = alternate(plain.step, fused.step, args.repeat, noop, noop)
    out["fused_adam_step"]["tensors"] = len(params)
    for p in params:
        p.grad = None

    # 2. MulT with pool "last": the memory's last layer computes one query per sample instead of T.
    fuser = s.model.fuser
    fuser.train()
    names = s.model.names
    g = torch.Generator().manual_seed(0)
    tokens = {n: torch.randn(32, 50, 32, generator=g) for n in names}
    ones = torch.ones(32, len(names), dtype=torch.bool)

    def mult_all_steps() -> None:  # what every step would cost: the memory transformer's full output, then pool
        fused_ = []
        for tgt in fuser.names:
            streams = [fuser.cross[f"{src}_to_{tgt}"](tokens[tgt], tokens[src], None) for src in fuser.names
                       if src != tgt]
            fused_.append(fuser._pool(fuser.memory[tgt](torch.cat(streams, dim=-1)), None))
        torch.cat(fused_, dim=-1).pow(2).sum().backward()

    def mult_last_query() -> None:
        fuser(tokens, ones, names, {}).value.pow(2).sum().backward()

    out["mult_last_query_fwd_bwd"] = alternate(mult_all_steps, mult_last_query, args.repeat, noop, noop)
    # … and on whole batches: MulT's forward as before (every step through the last layer, then pooled).
    cls_mult = type(fuser)
    new_forward = cls_mult.forward

    def forward_all_steps(self, tokens, mask, names, lengths):  # type: ignore[no-untyped-def]
        from imrec import Output
        from imrec_rohydr.layers import step_mask

        valid = {n: step_mask(lengths[n], tokens[n].shape[0], tokens[n].shape[1], tokens[n].device)
                 if n in lengths else None for n in self.names}
        fused_ = []
        for tgt in self.names:
            streams = [self.cross[f"{src}_to_{tgt}"](tokens[tgt], tokens[src], valid[src]) for src in self.names
                       if src != tgt]
            fused_.append(self._pool(self.memory[tgt](torch.cat(streams, dim=-1), key_mask=valid[tgt]), valid[tgt]))
        return Output(value=torch.cat(fused_, dim=-1))

    def set_last_query(flag: bool) -> Callable[[], None]:
        def setup() -> None:
            cls_mult.forward = new_forward if flag else forward_all_steps
        return setup

    # One training step and one evaluation batch (256, MR 2/3) serve every whole-batch comparison below.
    step = train_step(s)
    eval_batch = B.eval_batches(s, B.MR, 256)[0]

    def train_batch(setup_off: Callable[[], None], setup_on: Callable[[], None]) -> dict[str, float]:
        B.train_mode(s)
        return alternate(step, step, args.repeat, setup_off, setup_on)

    def eval_batch256(setup_off: Callable[[], None], setup_on: Callable[[], None]) -> dict[str, float]:
        s.model.eval()
        run = lambda: B.run_eval_batch(s, eval_batch)  # noqa: E731
        res = alternate(run, run, args.repeat, setup_off, setup_on)
        B.train_mode(s)
        return res

    out["mult_last_query_train_batch"] = train_batch(set_last_query(False), set_last_query(True))
    out["mult_last_query_eval_batch256"] = eval_batch256(set_last_query(False), set_last_query(True))
    set_last_query(True)()

    # 3. ReLU + dropout fused (activation memory and time of a training batch).
    ffs = [m for m in s.model.modules() if isinstance(m, FeedForward) and m._relu]

    def set_fused(flag: bool) -> Callable[[], None]:
        def setup() -> None:
            for m in ffs:
                m._relu = flag
        return setup

    out["relu_dropout_fused_train_batch"] = train_batch(set_fused(False), set_fused(True))

    def saved_mb(flag: bool) -> float:
        set_fused(flag)()
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            step()
        return sum(seen.values()) / 2**20

    out["relu_dropout_fused_train_batch"]["saved_mb_off"] = saved_mb(False)
    out["relu_dropout_fused_train_batch"]["saved_mb_on"] = saved_mb(True)
    set_fused(True)()

    # 4. HDDM condition without masked keys (training batch and evaluation batch at MR 2/3).
    compact = transformer._compact

    def set_compact(flag: bool) -> Callable[[], None]:
        def setup() -> None:
            transformer._compact = compact if flag else (lambda context, mask: (context, mask))
        return setup

    out["hddm_compact_keys_train_batch"] = train_batch(set_compact(False), set_compact(True))
    out["hddm_compact_keys_eval_batch256"] = eval_batch256(set_compact(False), set_compact(True))
    set_compact(True)()

    # 5. Cached sinusoidal positions.
    cached = layers.sinusoidal_positions

    def uncached(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        return sinusoidal_embedding(torch.arange(length, device=device), dim).to(dtype)

    def set_cache(flag: bool) -> Callable[[], None]:
        def setup() -> None:
            for mod in (layers, transformer, *(sys.modules[f"imrec_rohydr.{m}"] for m in ("mult", "denoiser", "readout"))):
                mod.sinusoidal_positions = cached if flag else uncached
        return setup

    out["cached_positions_train_batch"] = train_batch(set_cache(False), set_cache(True))
    set_cache(True)()

    # 6. f_gt from f_rec for complete samples (fusers declaring independent_samples), at the recipe's training
    #    MR 0.5 (at MR 2/3 with K = 3 no sample is complete, so nothing changes there).
    s5 = B.build(device, rate=0.5)
    B.train_mode(s5)
    step5 = train_step(s5)
    cls = type(s5.model.fuser)

    def set_reuse(flag: bool) -> Callable[[], None]:
        def setup() -> None:
            cls.independent_samples = flag
        return setup

    complete = float(np.mean([m.all(dim=1).float().mean().item() for _, m, _ in B.train_batches(s5)]))
    out["fgt_reuse_train_batch_mr0.5"] = alternate(step5, step5, args.repeat, set_reuse(False), set_reuse(True))
    out["fgt_reuse_train_batch_mr0.5"]["complete_fraction"] = complete
    set_reuse(True)()

    # 7. Reading rows of a memory map with preadv instead of through the mapping: resident memory after
    #    gathering every row of a 256 MiB file once in batches of 32 (what an epoch does).
    from imrec.loader import read_rows

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "text.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(1750, 50, 768))
        arr[:] = 1.0
        arr.flush()
        del arr
        mapped = np.load(path, mmap_mode="r")
        order = np.random.default_rng(0).permutation(len(mapped))
        res = {}
        for name, reader in (("through the mapping", lambda i: np.asarray(mapped[i])),
                             ("read_rows (preadv)", lambda i: read_rows(mapped, i))):
            before = B.status_kb("RssFile") or 0
            start = time.process_time()
            for lo in range(0, len(order), 32):
                reader(np.sort(order[lo : lo + 32]))
            res[name] = {"rss_file_growth_mb": ((B.status_kb("RssFile") or 0) - before) / 1024,
                         "cpu_s": time.process_time() - start}
        out["memmap_rows_256mib_epoch"] = res
        del mapped
    out["load_average_end"] = B.load_average()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
