"""Whole-process timings of `imrec run` at several thread counts, idle or next to busy processes: is imrec's
default thread count (imrec/threads.py) close to the best, and never much worse than 1 thread on a busy machine?

    python benchmarks/threads.py                                  # quickstart, 1..cores threads and the default
    python benchmarks/threads.py --busy 1                         # the same with 1 CPU-bound process beside it
    python benchmarks/threads.py --recipe tests/recipes/tiny_rohydr.yaml --threads 1 --repeats 1   # smoke test
    python benchmarks/threads.py --list                           # the commands it would time; runs nothing

Each setting is one fresh `imrec run RECIPE` process (import, data, training, TEST: what a user waits
for), timed from start to exit, ``--repeats`` times; the median is reported. The default is run with
``$IMREC_THREADS``/``$OMP_NUM_THREADS`` removed, so imrec chooses. ``--busy K`` starts K busy-looping Python
processes first (the "other work" of a shared machine) and stops them at the end. The verdict lines check the
targets of issue 19: on an idle machine the default within 10 % of the best setting; on a busy one the default
no more than 2× slower than 1 thread. The machine must otherwise be idle for the numbers to mean anything: the
cores in use just before each run (imrec.threads.busy_cores: CPU use over 0.25 s) are recorded next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def command(recipe: str, threads: int | None, out_dir: str, overrides: list[str]) -> list[str]:
    # Not --quiet: the progress lines go to a pipe (cheap), and the line saying which threads were chosen is kept.
    cmd = [sys.executable, "-m", "imrec", "run", recipe, f"output_dir={out_dir}", *overrides]
    return cmd + (["--threads", str(threads)] if threads is not None else [])


def environment() -> dict[str, str]:
    """This environment without the variables that would override imrec's own choice."""
    return {k: v for k, v in os.environ.items() if k not in ("IMREC_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def time_run(cmd: list[str]) -> tuple[float, str]:
    """Wall seconds of ``cmd`` and the thread line it printed; a failed run stops the benchmark."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=environment(), cwd=REPO)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
    line = next((l for l in out.stderr.splitlines() if l.startswith("threads: ")), "")
    return seconds, line


def start_busy(k: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:  # only the processes this script started
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    from imrec.threads import busy_cores, physical_cores

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--threads", type=int, nargs="+", help="explicit counts to time (default 1..physical cores)")
    ap.add_argument("--busy", type=int, default=0, metavar="K", help="CPU-bound processes to run beside (default 0)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", nargs="*", default=[], metavar="OVERRIDE", help="recipe overrides (e.g. a shorter run)")
    ap.add_argument("--out", type=Path, help="also write the results as JSON here")
    ap.add_argument("--list", action="store_true", help="print the commands; run nothing")
    args = ap.parse_args(argv)

    cores = physical_cores()
    settings: list[int | None] = [None, *(args.threads or range(1, cores + 1))]
    if args.list:
        for t in settings:
            print(" ".join(command(args.recipe, t, "<temporary folder>", args.set)))
        return 0
    work = tempfile.mkdtemp(prefix="imrec-threads-")
    busy = start_busy(args.busy)
    rows = []
    try:
        time.sleep(2 if busy else 0)  # let the busy processes get going
        for t in settings:
            times, loads, line = [], [], ""
            for _ in range(args.repeats):
                loads.append(round(busy_cores() or 0.0, 2))  # cores in use right now, ours included
                seconds, line = time_run(command(args.recipe, t, work, args.set))
                times.append(round(seconds, 2))
            rows.append({"setting": "default" if t is None else f"--threads {t}", "median_s": statistics.median(times),
                         "runs_s": times, "load_before": loads, "chosen": line})
            print(f"{rows[-1]['setting']:<13} median {rows[-1]['median_s']:8.1f} s  runs {times}  load {loads}  "
                  f"{line}", flush=True)
    finally:
        stop_busy(busy)
        shutil.rmtree(work, ignore_errors=True)  # the run directories of the timed runs
    default = rows[0]["median_s"]
    best = min(r["median_s"] for r in rows)
    one = next((r["median_s"] for r in rows if r["setting"] == "--threads 1"), None)
    verdict = {"default_over_best": round(default / best, 3),
               "default_over_one_thread": None if one is None else round(default / one, 3)}
    print(f"default / best = {verdict['default_over_best']:.2f}"
          + ("" if args.busy else f" (target ≤ 1.10 on an idle machine: {'met' if default <= 1.1 * best else 'NOT met'})"))
    if one is not None:
        print(f"default / 1 thread = {verdict['default_over_one_thread']:.2f}"
              + (f" (target ≤ 2 with {args.busy} busy process(es): {'met' if default <= 2 * one else 'NOT met'})"
                 if args.busy else ""))
    # Our own busy processes are expected to use cores; anything beyond them means the machine was shared.
    others = max(l for r in rows for l in r["load_before"]) - args.busy
    if others > 0.5:
        print(f"the machine was not otherwise idle (up to {others + args.busy:.2f} cores in use with {args.busy} "
              f"busy process(es) of ours): these figures do not test the targets")
    verdict["load_beyond_ours"] = round(others, 2)
    if args.out:
        args.out.write_text(json.dumps({"recipe": args.recipe, "overrides": args.set, "busy": args.busy,
                                        "physical_cores": cores, "repeats": args.repeats, "rows": rows,
                                        **verdict}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
