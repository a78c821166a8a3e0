"""``imrec bench``: run a matrix of recipes × seeds (resumable, parallel, sharded), aggregate run directories into
tidy records, merge shards, render tables and plots, and regenerate leaderboard sections.

    imrec bench run DEF.yaml… [--only M…] [--seeds S…] [--jobs N] [--shard i/n] [--tune-only] [--format F] [--out FILE]
    imrec bench table RECORDS.jsonl… [--definition DEF.yaml | --board B --metrics … --reference M]
    imrec bench aggregate (DEF.yaml | RUN_DIR…) --out RECORDS.jsonl
    imrec bench merge SHARD.jsonl… --out RECORDS.jsonl
    imrec bench plot RECORDS.jsonl… --out DIR
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ImrecError

FORMATS = ("terminal", "markdown", "csv", "json", "latex")


def add_bench_command(subparsers: Any) -> None:
    """Register ``imrec bench`` and its sub-commands on the top-level parser's ``subparsers``."""
    bench = subparsers.add_parser(
        "bench", help="benchmarks: run a matrix of recipes × seeds, tables, significance, leaderboards",
        description="Run a bench definition (methods × seeds, resumable), or aggregate and render stored results. "
                    "See docs/benchmarks.md.")
    sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    bench.set_defaults(func=lambda args: (bench.print_help(), 0)[1])

    p = sub.add_parser("run", help="run (or resume) every cell of one or more definitions, then records and tables")
    p.add_argument("definitions", nargs="+", metavar="DEFINITION.yaml")
    p.add_argument("--only", nargs="+", metavar="METHOD", help="run only these methods")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED", help="run only these seeds")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch threads per worker (default: $IMREC_THREADS, else $OMP_NUM_THREADS, else 1, so that "
                        "results are identical for any --jobs and workers never oversubscribe the cores; a "
                        "definition's arithmetic.threads pins it)")
    p.add_argument("--tune-only", action="store_true",
                   help="run (or resume) only the tuning of a board with a tuning budget, no seeds")
    p.add_argument("--shard", metavar="i/n", help="run only the cells whose index %% n == i (cluster job arrays)")
    p.add_argument("--work-dir", type=Path, help="cell run directories (one definition only; default: its "
                                                 "output.work_dir)")
    p.add_argument("--records", type=Path, help="write the records here (default: the definition's "
                                                "output.records; with --shard, that path + .shard-i-of-n)")
    p.add_argument("--list", action="store_true", help="list the cells and their state; run nothing")
    _table_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("table", help="render tables from records (shards may be given together)")
    p.add_argument("records", nargs="+", type=Path, metavar="RECORDS.jsonl")
    p.add_argument("--definition", type=Path, help="take board, method order, metrics, reference and baseline "
                                                   "from this definition")
    _view_options(p)
    _table_options(p)
    p.add_argument("--leaderboard", type=Path, help="also (re)generate this board's section of this Markdown file")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("aggregate", help="records from existing run directories (or a definition's work dir)")
    p.add_argument("sources", nargs="+", metavar="RUN_DIR|DEFINITION.yaml")
    p.add_argument("--board", help="board name of the records (required for run directories)")
    p.add_argument("--metrics", nargs="+", help="keep only these metrics (default: all numeric ones)")
    p.add_argument("--work-dir", type=Path, help="a definition's cell directories are here instead")
    p.add_argument("--out", type=Path, help="records JSONL to write (default: print to stdout)")
    p.set_defaults(func=cmd_aggregate)

    p = sub.add_parser("merge", help="merge records files (e.g. the shards of one bench) into one")
    p.add_argument("records", nargs="+", type=Path, metavar="RECORDS.jsonl")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("plot", help="PNG of each metric vs missing rate per method (needs matplotlib)")
    p.add_argument("records", nargs="+", type=Path, metavar="RECORDS.jsonl")
    p.add_argument("--definition", type=Path)
    _view_options(p)
    p.add_argument("--out", type=Path, required=True, help="folder for <board>_<metric>.png")
    p.set_defaults(func=cmd_plot)


def _view_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", help="which board of the records (needed when they hold several)")
    p.add_argument("--metrics", nargs="+", help="metric tables to show, in order (default: every metric)")
    p.add_argument("--reference", help="method the significance tests compare against (default: the definition's, "
                        "else the first)")
    p.add_argument("--baseline", help="the no-recovery method of the gap-closed score (default: the definition's, "
                        "else none)")


def _table_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="terminal", help="table format (default terminal)")
    p.add_argument("--out", type=Path, help="write the tables to this file instead of printing them")


# ---------------------------------------------------------------------------------------------------- helpers
def _emit(text: str, out: Path | None) -> None:
    from ..runs import atomic_write_text

    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        print(f"wrote {out}")


def _render(records: list[dict[str, Any]], view: Any, fmt: str, out: Path | None) -> None:
    from . import render

    if fmt == "terminal" and out is None:
        render.print_terminal(records, view)
    else:
        _emit(render.render(records, view, fmt), out)


def _plots(records: list[dict[str, Any]], view: Any, folder: Path) -> None:
    from .plot import MissingMatplotlib, plot_board

    try:
        for path in plot_board(records, view, folder):
            print(f"wrote {path}")
    except MissingMatplotlib as exc:
        print(f"imrec bench: {exc}", file=sys.stderr)


def _reason(error: str | None, max_lines: int = 6) -> str:
    """A failed cell's reason for the closing summary: the message (a traceback's last line), a few lines at most."""
    lines = (error or "no reason given").strip().splitlines()
    if lines[0].startswith("Traceback"):
        lines = lines[-1:]
    return "\n    ".join(lines[:max_lines] + (["..."] if len(lines) > max_lines else []))


# ---------------------------------------------------------------------------------------------------- commands
def cmd_run(args: argparse.Namespace) -> int:
    from .definition import load_definition
    from .matrix import matrix, parse_shard, run_matrix

    definitions = [load_definition(p) for p in args.definitions]
    boards = [d.board for d in definitions]
    if len(set(boards)) != len(boards):
        raise ImrecError(f"two definitions name the same board: {boards}")
    shard = parse_shard(args.shard) if args.shard else None
    if (args.records or args.out) and len(definitions) != 1:
        raise ImrecError("--records and --out apply to one definition; run the definitions one by one, or let "
                         "each write its own output.records")
    choice = _worker_threads(definitions, args)
    try:
        tuned = _tuning(definitions, args, shard, choice.threads)
    except KeyboardInterrupt as exc:  # finished trials are kept; the same command continues the studies
        _resume_command(exc)
        raise
    if args.tune_only:
        return 0
    cells = matrix(definitions, args.only, args.seeds, shard, args.work_dir, tuned)
    if args.list:
        for c in cells:
            state = "finished" if c.done() else ("started" if (c.run_dir / "recipe.yaml").exists() else "pending")
            print(f"{c.index:>4}  {c.label:<40} {state:<9} {c.run_dir}")
        return 0
    try:
        results = run_matrix(cells, jobs=args.jobs, threads=choice)
    except BaseException as exc:  # Ctrl-C: finished cells are kept; the same command continues with the rest
        _resume_command(exc)
        raise
    for d in definitions:
        _publish(d, args, shard, [c for c in cells if c.board == d.board] if shard else None)
    if shard:
        print("this was one shard: combine all shards' records with `imrec bench merge …`, then `imrec bench table`")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        # Every failed cell with its reason (the first line; the full text was logged when the cell failed).
        lines = [f"  {r.cell.label}: {_reason(r.error).removeprefix(r.cell.label + ': ')}" for r in failed]
        print(f"{len(failed)} cell(s) failed:\n" + "\n".join(lines), file=sys.stderr)
        return 1
    return 0


def _worker_threads(definitions: list[Any], args: argparse.Namespace) -> Any:
    """The torch threads of each worker (imrec.threads.ThreadChoice): one by default (see --threads), a board's
    pinned ``arithmetic.threads`` winning; printed unless only listing. A recipe's own ``threads:`` is for
    ``imrec run``, not cells."""
    from ..threads import resolve_threads

    for d in definitions:
        if d.arithmetic is not None and args.threads is not None and args.threads != d.arithmetic.threads:
            raise ImrecError(f"--threads {args.threads}: board {d.board!r} pins arithmetic.threads "
                             f"{d.arithmetic.threads} (the thread count changes the results); leave --threads out")
    choice = resolve_threads(args.threads, processes=max(args.jobs, 1), default=1)
    if not args.list:
        print(choice.describe() + " per worker", file=sys.stderr, flush=True)
        for d in definitions:
            if d.arithmetic is not None and d.arithmetic.threads != choice.threads:
                print(f"board {d.board}: its arithmetic pins {d.arithmetic.threads} thread(s) per worker",
                      file=sys.stderr, flush=True)
        if choice.warning():
            print(choice.warning(), file=sys.stderr, flush=True)
    return choice


def _publish(d: Any, args: argparse.Namespace, shard: tuple[int, int] | None, cells: list[Any] | None) -> None:
    """After a run: board ``d``'s records (a shard's: its own file), then, for a whole board, its tables and,
    once every cell is finished, its leaderboard section and plots."""
    from .leaderboard import update_leaderboard
    from .matrix import definition_records
    from .records import write_records
    from .tables import view_from_definition

    recs, missing = definition_records(d, args.work_dir, only=cells)
    target = args.records or d.records
    if shard and target is not None and args.records is None:
        target = target.with_name(f"{target.name}.shard-{shard[0]}-of-{shard[1]}")
    if target is not None and recs:
        write_records(target, recs)
        print(f"wrote {len(recs)} records to {target}")
    if shard:
        return
    view = view_from_definition(d)
    if recs:
        _render(recs, view, args.format, args.out)
    if missing:
        print(f"board {d.board}: {len(missing)} of {len(d.methods) * len(d.seeds)} cells not finished (or "
              f"holding results of another recipe); leaderboard and plots not updated")
        return
    if d.leaderboard is not None:
        update_leaderboard(d.leaderboard, recs, view)
        print(f"updated the {d.board} section of {d.leaderboard}")
    if d.plots is not None:
        _plots(recs, view, d.plots)


def _resume_command(exc: BaseException) -> None:
    """Tell the user (imrec.cli.main prints it) that the same command continues where this one stopped."""
    import shlex

    exc.imrec_resume_command = ("imrec " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"]  # type: ignore
                                else "the same `imrec bench run …` command (finished cells are not rerun)")


def _tuning(definitions: list[Any], args: argparse.Namespace, shard: Any, threads: int) -> dict:
    """Tune every method of the boards with a tuning budget (resumable; finished studies are not re-run) and
    return what each chose, (board, method) → overrides. A shard, or ``--list``, only reads finished studies."""
    from .tuning import chosen, tune_methods

    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for d in definitions:
        if d.tune is None:
            continue
        methods = [m for m in d.methods if not args.only or m.name in args.only]
        if not (shard or args.list):
            tune_methods(d, methods, jobs=args.jobs, work_dir=args.work_dir, threads=threads)
        for m in methods:
            best = chosen(d, m, args.work_dir)
            if best is None and not args.list:
                raise ImrecError(f"{d.board}/{m.name}: its tuning has not finished; a shard runs cells only: run "
                                 f"`imrec bench run {d.source} --tune-only` (or its studies' workers) first")
            out[(d.board, m.name)] = best or ()
    return out


def _load_view(args: argparse.Namespace, records: list[dict[str, Any]]) -> Any:
    from .definition import load_definition
    from .tables import view_from_definition, view_from_records

    if args.definition:
        view = view_from_definition(load_definition(args.definition, check_recipes=False))
        if args.metrics:
            view = view.with_metrics(args.metrics)
        # A flag given on the command line wins over the definition: e.g. significance against the baseline.
        for name, what in ((args.reference, "--reference"), (args.baseline, "--baseline")):
            if name is not None and name not in view.methods:
                raise ImrecError(f"{what} {name!r}: not a method of {args.definition}; methods: "
                                 f"{', '.join(view.methods)}")
        if args.reference:
            view = replace(view, reference=args.reference)
        if args.baseline:
            view = replace(view, baseline=args.baseline)
        return view
    return view_from_records(records, board=args.board, metrics=args.metrics, reference=args.reference,
                             baseline=args.baseline)


def cmd_table(args: argparse.Namespace) -> int:
    from .leaderboard import update_leaderboard
    from .records import read_records

    records = read_records(args.records)
    view = _load_view(args, records)
    _render(records, view, args.format, args.out)
    if args.leaderboard:
        update_leaderboard(args.leaderboard, records, view)
        print(f"updated the {view.board} section of {args.leaderboard}")
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from .definition import load_definition
    from .matrix import definition_records
    from .records import dumps, merge, run_dir_records, write_records

    groups = []
    for src in args.sources:
        path = Path(src)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            d = load_definition(path, check_recipes=False)
            recs, missing = definition_records(d, args.work_dir)
            if missing:
                print(f"board {d.board}: {len(missing)} cells not finished (not in the records)", file=sys.stderr)
            if args.metrics:
                recs = [r for r in recs if r["metric"] in args.metrics]
            groups.append(recs)
        else:
            if not args.board:
                raise ImrecError("aggregating run directories needs --board NAME (the records' board)")
            groups.append(run_dir_records(path, args.board, metrics=args.metrics))
    records = merge(*groups)
    if args.out:
        write_records(args.out, records)
        print(f"wrote {len(records)} records to {args.out}")
    else:
        sys.stdout.write(dumps(records))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from .records import read_records, write_records

    records = read_records(args.records)
    write_records(args.out, records)
    print(f"wrote {len(records)} records to {args.out}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .plot import plot_board
    from .records import read_records

    records = read_records(args.records)
    view = _load_view(args, records)
    for path in plot_board(records, view, args.out):
        print(f"wrote {path}")
    return 0

