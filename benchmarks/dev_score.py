"""The development-draw selection score of each method: mean TEST MAE over MR 0.3-2/3, per board and over boards.

    python benchmarks/dev_score.py benchmarks/results/synthetic_dev.jsonl benchmarks/results/synthetic_dev2.jsonl

The rule it serves (docs/benchmarks.md, "Tuning on a development draw"): variants of RoHyDR are chosen by the
lowest score on the development boards (other draws of the synthetic generator, never the synthetic board's
data); scores within ``--tie`` of the best tie, and the variant with the fewest changes wins. The score of a
method on a board is the mean over its seeds of the mean over the rates; "all" is the mean over the boards, given
only for methods every board has run with the same seeds. Reads the tidy records `imrec bench` writes; changes
nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

from imrec.bench.records import condition_rate, read_records
from imrec.errors import ImrecError

RATES = (0.3, 0.4, 0.5, 0.6, 2 / 3)


def board_scores(path: Path, metric: str, rates: tuple[float, ...]) -> tuple[str, dict[str, dict[int, float]]]:
    """``(board, {method: {seed: mean of metric over rates}})`` from one records file; every method must have
    every rate at every seed it has, or the file is named with what is missing."""
    try:
        records = read_records([path])
    except ImrecError as exc:
        raise SystemExit(str(exc))
    values: dict[str, dict[int, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    boards: set[str] = set()
    for rec in records:
        rate = condition_rate(str(rec["condition"]))
        if rec["metric"] != metric or rate is None:
            continue
        match = [r for r in rates if math.isclose(r, rate, abs_tol=1e-6)]
        if match:
            boards.add(rec["board"])
            values[rec["method"]][int(rec["seed"])][match[0]] = float(rec["value"])
    if len(boards) != 1:
        raise SystemExit(f"{path}: expected the records of one board with {metric} at MR {list(rates)}, "
                         f"found boards {sorted(boards)}")
    scores: dict[str, dict[int, float]] = {}
    for method, per_seed in values.items():
        for seed, by_rate in per_seed.items():
            missing = [r for r in rates if r not in by_rate]
            if missing:
                raise SystemExit(f"{path}: {method} seed {seed} has no {metric} at MR {missing}; "
                                 f"finish its cell with `imrec bench run` first")
        scores[method] = {seed: sum(by_rate.values()) / len(rates) for seed, by_rate in per_seed.items()}
    return boards.pop(), scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="+", type=Path, help="records files of development boards (jsonl)")
    ap.add_argument("--metric", default="mae", help="a lower-is-better metric (default mae)")
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES), help="missing rates (default 0.3-2/3)")
    ap.add_argument("--tie", type=float, default=0.005, help="scores within this of the best tie (default 0.005)")
    args = ap.parse_args(argv)
    rates = tuple(args.rates)
    per_board = [board_scores(p, args.metric, rates) for p in args.records]
    methods = sorted({m for _, s in per_board for m in s})
    rows = []
    for method in methods:
        cells, seeds_seen, means = [], set(), []
        for _, scores in per_board:
            if method in scores:
                mean = sum(scores[method].values()) / len(scores[method])
                cells.append(f"{mean:.4f} (n={len(scores[method])})")
                means.append(mean)
                seeds_seen.add(tuple(sorted(scores[method])))
            else:
                cells.append("–")
        overall = sum(means) / len(means) if len(means) == len(per_board) and len(seeds_seen) == 1 else None
        rows.append((method, cells, overall))
    best = min((o for _, _, o in rows if o is not None), default=None)
    header = ["method", *(b for b, _ in per_board), "all"]
    print(" | ".join(header))
    for method, cells, overall in sorted(rows, key=lambda r: (r[2] is None, r[2] or 0.0, r[0])):
        mark = ""
        if overall is not None and best is not None and overall - best <= args.tie:
            mark = "  (tie with the best)" if overall != best else "  (best)"
        print(" | ".join([method, *cells, "–" if overall is None else f"{overall:.4f}"]) + mark)
    return 0


if __name__ == "__main__":
    sys.exit(main())
