"""Quality against speed: RoHyDR's fast defaults against slower configurations of the same implementation.

    python benchmarks/speed/quality.py [--threads N] [--json out.json] [--markdown out.md] [--quick]
                                       [--configs fast,many-steps,…] [--seeds 1111 …]

Every configuration is ``recipes/rohydr_mosi.yaml`` (both phases: pre-training, then the recover phase with
its four steps) with identical data, seeds and epochs, changed only in the listed keys, on ``data.synthetic``
in MOSI aligned shapes (T = 50; text 768, audio 5, vision 20) with fewer samples and epochs than a real run
(printed). Training uses the recipe's random missingness (MR 0.5); TEST is scored at MR 2/3 (the "0.7" of the
tables): task MAE and Acc-2, and recovery MSE / cosine of the recovered tokens against the encoder's tokens of
the true features. Speed: training samples per second of the recover phase (the epochs' training time in
``metrics.jsonl``, validation excluded) and evaluation samples per second of ``evaluate()`` on TEST at MR 2/3.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import torch

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "rohydr_mosi.yaml"
MR = 2.0 / 3.0
CONDITION = f"random/mr={MR!r}"

# name → (what it is, recipe overrides). "fast" is the recipe as it stands.
CONFIGS: dict[str, tuple[str, list[str]]] = {
    "fast": ("defaults: 5 DDIM steps, gradient through the last, one shared denoiser, one forward per batch", []),
    "few-steps": ("1 DDIM step", ["model.recoverer.train_sample_steps=1"]),
    "many-steps": ("50 DDIM steps, gradient through the last", ["model.recoverer.train_sample_steps=50"]),
    "grad-all": ("5 DDIM steps, gradient through all 5", ["model.recoverer.grad_steps=5"]),
    "slow": ("50 DDIM steps, gradient through all 50 (the reference's later code)",
             ["model.recoverer.train_sample_steps=50", "model.recoverer.grad_steps=50"]),
    "per-modality": ("one denoiser per modality", ["model.recoverer.shared_denoiser=false"]),
    "sequential": ("a forward per step (the reference's schedule)", ["train.phases.recover.reuse_forward=false"]),
}


def run_config(name: str, sizes: Sequence[int], epochs: tuple[int, int], seeds: Sequence[int], out: Path,
               eval_batch: int) -> dict[str, Any]:
    from imrec.config import load_recipe
    from imrec.model import build_model
    from imrec.progress import Reporter
    from imrec.runner import prepare, run_recipe
    from imrec.runs import safe_torch_load
    from imrec.trainer import evaluate
    from imrec_protocols.random_missing import RandomCondition

    overrides = [
        f"data={{name: synthetic, preset: mosi, sizes: {list(sizes)}, seed: 0}}",
        f"train.phases.pretrain.epochs={epochs[0]}", f"train.phases.recover.epochs={epochs[1]}",
        f"eval.conditions=[{{name: random, rates: [{MR!r}]}}]", f"seeds={list(seeds)}", "device=cpu",
        f"output_dir={out / name}", *CONFIGS[name][1],
    ]
    recipe = load_recipe(RECIPE, overrides)
    start = time.perf_counter()
    run_dir = run_recipe(recipe, reporter=Reporter(enabled=False))
    total = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())["conditions"][CONDITION]
    row: dict[str, Any] = {"config": name, "what": CONFIGS[name][0], "overrides": CONFIGS[name][1],
                           "run_s": total, "run_dir": str(run_dir)}
    for metric in ("mae", "acc2_non0", "corr", "recovery_mse", "recovery_cos"):
        if metric in summary:
            row[metric] = summary[metric]["mean"]
            row[metric + "_std"] = summary[metric].get("std")
    # Training speed of the recover phase, and evaluation speed of the selected model on TEST at MR 2/3.
    train_rates, eval_rates = [], []
    prepared = prepare(recipe)
    batch = recipe.train.batch_size
    for seed in seeds:
        sdir = run_dir / "seeds" / str(seed)
        lines = [json.loads(l) for l in (sdir / "metrics.jsonl").read_text().splitlines()]
        recover = [l for l in lines if l["phase"] == "recover"]
        n_train = len(prepared.splits["train"])
        train_rates.append(sum(min(l["batches"] * batch, n_train) for l in recover) / sum(l["seconds"] for l in recover))
        model = build_model(prepared.spec, recipe.model, str(recipe.source))
        model.load_state_dict(safe_torch_load(sdir / "phase-recover.pt", map_location="cpu")["model"])
        test = prepared.splits["test"]
        t0 = time.perf_counter()
        evaluate(model, test, RandomCondition(MR), seed, eval_batch, prepared.metrics, torch.device("cpu"))
        eval_rates.append(len(test) / (time.perf_counter() - t0))
    row["train_samples_s"] = statistics.median(train_rates)
    row["eval_samples_s"] = statistics.median(eval_rates)
    return row


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"Synthetic MOSI shapes, sizes train/valid/test {meta['sizes']}, epochs pretrain/recover {meta['epochs']}, "
             f"seeds {meta['seeds']}, {meta['threads']} thread(s); TEST at MR 2/3 (mean over seeds); load average "
             f"{meta['load_start']} → {meta['load_end']}.", "",
             "| configuration | train samples/s | eval samples/s | recovery MSE ↓ | recovery cos ↑ | MAE ↓ | Acc-2 ↑ | run s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| **{r['config']}**: {r['what']} | {r['train_samples_s']:.1f} | {r['eval_samples_s']:.1f} | "
                     f"{r.get('recovery_mse', float('nan')):.4f} | {r.get('recovery_cos', float('nan')):.4f} | "
                     f"{r.get('mae', float('nan')):.4f} | {100 * r.get('acc2_non0', float('nan')):.1f} | "
                     f"{r['run_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"any of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1111])
    parser.add_argument("--sizes", type=int, nargs=3, default=[256, 64, 256], help="train valid test samples")
    parser.add_argument("--epochs", type=int, nargs=2, default=[3, 8], help="pretrain and recover epochs")
    parser.add_argument("--quick", action="store_true", help="fewer samples and epochs (a smoke test)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("IMREC_LOAD_PLUGINS", "")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_speed import load_average

    sizes = [96, 32, 64] if args.quick else args.sizes
    epochs = (1, 1) if args.quick else tuple(args.epochs)
    meta = {"sizes": sizes, "epochs": list(epochs), "seeds": args.seeds, "threads": args.threads,
            "load_start": load_average(), "torch": torch.__version__}
    rows = []
    with tempfile.TemporaryDirectory(prefix="imrec-quality-") as tmp:
        for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
            if name not in CONFIGS:
                parser.error(f"unknown configuration {name!r}; choose from {', '.join(CONFIGS)}")
            rows.append(run_config(name, sizes, epochs, args.seeds, Path(tmp), 256))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "run_dir"}), file=sys.stderr, flush=True)
    meta["load_end"] = load_average()
    table = markdown(rows, meta)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
