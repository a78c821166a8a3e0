"""The ``imrec`` command line: run, eval, validate, cat, schema, plugins, list — plus commands plugins add (data, bench …)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .boundary import DEBUG_ENV, report
from .display import results_table
from .errors import ImrecError, Problem
from .info_commands import add_info_commands

if TYPE_CHECKING:
    from rich.console import Console

# Lazy imports: this module is imported by every command, `imrec --help` included. It, and every module a
# command's `register`/parser code imports, must not import torch, numpy or rich at module level: commands import
# what they need inside their handler (cmd_*). docs/architecture.md, "Lazy imports", says how plugins do the same.


def _console() -> Console:
    from rich.console import Console

    console = Console()
    # Files and pipes get the whole table, not one wrapped to a default 80 columns.
    return console if console.is_terminal else Console(width=200)


# ------------------------------------------------------------------------------------------------ commands
def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_recipe
    from .distributed import from_environment
    from .model import build_model
    from .progress import Reporter
    from .runner import describe_plan, prepare, resume_recipe, run_recipe

    if args.resume:
        if args.recipe and not args.recipe.endswith((".yaml", ".yml")):
            args.overrides = [args.recipe, *args.overrides]
        if args.overrides or args.log or args.device:
            raise ImrecError("--resume continues a run exactly as it started: overrides (and --device) are not "
                             "allowed (nor --log: the run's recipe.yaml says what it logs to)")
        recipe = resume_recipe(Path(args.resume))
        run_dir = Path(args.resume)
    else:
        if not args.recipe:
            raise ImrecError("imrec run needs a recipe file (e.g. recipes/quickstart.yaml) or --resume RUN_DIR")
        if args.log:  # experiment trackers: the same as the override log=[...]
            args.overrides = [*args.overrides, f"log=[{', '.join(args.log)}]"]
        # --device is the override device=…: recorded in the run like any other.
        recipe = load_recipe(args.recipe, [*args.overrides, *([f"device={args.device}"] if args.device else [])])
        run_dir = None
    choice = use_threads(args.threads, recipe.threads, show=not args.quiet and not args.dry_run)
    if args.dry_run:
        from .errors import RecipeError
        from .runner import build_dataset, spec_problems

        problems = spec_problems(recipe, build_dataset(recipe).spec)  # every problem at once, as validate
        if problems:
            raise RecipeError(problems)
        prepared = prepare(recipe, load=False)
        model = build_model(prepared.spec, recipe.model, str(recipe.source))
        print(describe_plan(recipe, prepared, model))
        print(choice.describe())
        return 0
    dist = from_environment()
    try:
        reporter = Reporter(enabled=dist.is_main and not args.quiet)
        out = run_recipe(recipe, run_dir, reporter, dist)
        if dist.is_main:
            summary = json.loads((out / "summary.json").read_text())
            _console().print(results_table(summary))
            print(out, flush=True)
    finally:
        dist.close()
    return 0


def use_threads(flag: int | None, recipe_threads: int | None = None, show: bool = True, **kwargs: Any) -> Any:
    """Choose (imrec.threads.resolve_threads), apply and, with ``show``, print on stderr the CPU thread count of
    this process, with a warning when the cores are busy. Every command that computes with torch calls this."""
    from .threads import apply_threads, resolve_threads

    choice = resolve_threads(flag, recipe_threads, **kwargs)
    apply_threads(choice)
    main_process = os.environ.get("RANK", "0") == "0"  # torchrun: one line, not one per worker
    if show and main_process:
        print(choice.describe(), file=sys.stderr, flush=True)
        if choice.warning():
            print(choice.warning(), file=sys.stderr, flush=True)
    return choice


def cmd_eval(args: argparse.Namespace) -> int:
    from .runner import evaluate_run, resume_recipe
    from .runs import atomic_write_json

    use_threads(args.threads, resume_recipe(Path(args.run_dir)).threads)
    result = evaluate_run(Path(args.run_dir), args.split, args.rates, args.device, args.set or ())
    if args.out:
        atomic_write_json(Path(args.out), result)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    _console().print(results_table(result["summary"], split=args.split))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import load
    from .predict_io import format_predictions, output_kind, read_npz
    from .runner import set_determinism
    from .runs import atomic_write_text

    out = Path(args.out) if args.out else None
    kind = output_kind(out)
    predictor = load(Path(args.run_dir), seed=args.seed, device=args.device or "auto")
    use_threads(args.threads, predictor.recipe.threads)  # as `imrec run`/`eval` choose them, before predicting
    set_determinism(predictor.recipe.deterministic)  # the kernels the run's evaluation used
    prediction = predictor.predict(**read_npz(Path(args.data), predictor), progress=True)
    text = format_predictions(prediction, kind)
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        print(f"{len(prediction)} predictions → {out}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Each recipe checked as written, then against its dataset's spec (modalities, K, task: read without
    loading the arrays), as ``run --dry-run`` and the start of ``run`` check it. Data that is not there skips
    the second part, with a note."""
    from .config import load_recipe
    from .errors import DataNotFoundError, RecipeError

    failed = 0
    # `imrec validate R… key=value…`, as `run` and `cat` take overrides; --set remains for the same thing.
    recipes = [a for a in args.recipes if "=" not in a and not a.startswith("~")]
    overrides = [*(a for a in args.recipes if a not in recipes), *(args.set or ())]
    if not recipes:
        raise ImrecError("imrec validate needs at least one recipe file (overrides such as a.b=1 follow them)")
    for path in recipes:
        note = ""
        try:
            recipe = load_recipe(path, overrides)
            from .runner import build_dataset, spec_problems

            try:
                spec = build_dataset(recipe).spec
            except DataNotFoundError as exc:
                spec = None
                found = str(exc).splitlines()[0].split(". ")[0]
                note = f"  (checks against the data's modalities and task skipped: {found})"
            except ImrecError as exc:
                raise RecipeError([Problem(str(path), "data", str(exc))]) from exc
            if spec is not None:
                problems = spec_problems(recipe, spec)
                if problems:
                    raise RecipeError(problems)
            print(f"ok   {path}{note}")
        except ImrecError as exc:
            failed += 1
            print(f"FAIL {path}\n{exc}", file=sys.stderr)
    return 0 if not failed else 2


def cmd_cat(args: argparse.Namespace) -> int:
    from .config import load_recipe, to_yaml

    sys.stdout.write(to_yaml(load_recipe(args.recipe, args.overrides)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .config.json_schema import recipe_schema
    from .plugins import get_registry

    text = json.dumps(recipe_schema(get_registry()), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    from .runs import atomic_write_text

    atomic_write_text(Path(args.out), text)
    print(f"recipe schema → {args.out}", file=sys.stderr)
    return 0


def _device_threads(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the recipe's device)"
                   + ("; recorded in the run as the override device=…" if command == "run" else ""))
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: $IMREC_THREADS, else the recipe's threads, else "
                        "$OMP_NUM_THREADS, else the physical cores the load average leaves free; printed at start)")


def _add_run(sub: Any) -> None:
    p = sub.add_parser("run", help="train and evaluate a recipe; prints the results and, last, the run directory")
    p.add_argument("recipe", nargs="?", help="recipe YAML file")
    p.add_argument("overrides", nargs="*", help="overrides: a.b=value, ~a.b (delete), recoverer=other.name (swap)")
    p.add_argument("--dry-run", action="store_true", help="validate, build the model and print the plan; no training")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run in RUN_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--log", action="append", metavar="LOGGER",
                   help="also log to an experiment tracker: tensorboard or mlflow (repeatable; `imrec list logger`)")
    _device_threads(p, "run")
    p.set_defaults(func=cmd_run)


def _add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="score a finished run's models on VALID (or another split) under chosen "
                                    "conditions, for tuning without touching TEST; changes nothing")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory `imrec run` printed")
    p.add_argument("--split", default="valid", help="split to score (default valid)")
    p.add_argument("--rates", type=float, nargs="+", metavar="MR",
                   help="random missing rates to score at (default: the recipe's evaluation conditions)")
    _device_threads(p, "eval")
    p.add_argument("--set", action="append", metavar="OVERRIDE",
                   help="an inference setting of the trained model, model.<key>=<value> (repeatable), "
                        "e.g. model.recoverer.sample_steps=20; weights are not retrained")
    p.add_argument("--json", action="store_true", help="print per-seed results and the summary as JSON")
    p.add_argument("--out", metavar="FILE", help="also write that JSON to FILE (atomically)")
    p.set_defaults(func=cmd_eval)


def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict with a trained run on new samples (.npz; modalities may be missing)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory `imrec run` printed")
    p.add_argument("--data", required=True, metavar="FILE.npz",
                   help="features per modality, optional <modality>__lengths, ids, present (docs/api.md)")
    p.add_argument("--seed", type=int, help="which seed's model (default: the run's first)")
    p.add_argument("--out", metavar="FILE", help="write .csv or .jsonl, one line per sample (default: CSV on stdout)")
    p.add_argument("--device", help="device (default: auto, CUDA when available)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: as for imrec run: $IMREC_THREADS, the run's recipe, "
                        "$OMP_NUM_THREADS, else the physical cores the load average leaves free; printed at start)")
    p.set_defaults(func=cmd_predict)


def _add_recipe_commands(sub: Any) -> None:
    """``validate``, ``cat`` and ``schema``: recipes checked, printed resolved, or described for editors."""
    p = sub.add_parser("validate", help="validate recipes (every problem, with file and key)")
    p.add_argument("recipes", nargs="+", metavar="RECIPE|OVERRIDE",
                   help="recipe files, then overrides applied to each (a.b=value, ~a.b, recoverer=other.name)")
    p.add_argument("--set", action="append", metavar="OVERRIDE", help="an override to apply to each recipe")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("cat", help="print the resolved recipe (defaults filled, overrides applied)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser("schema", help="print the JSON Schema of recipe files, for editors (docs/recipes.md)")
    p.add_argument("--out", metavar="FILE", help="write it to FILE (e.g. recipe.schema.json) instead of stdout")
    p.set_defaults(func=cmd_schema)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the built-in commands, ``bench``, ``tune``, then every command a plugin adds."""
    from . import __version__
    from .bench.cli import add_bench_command
    from .plugins import add_commands
    from .tune.cli import add_tune_command

    parser = argparse.ArgumentParser(prog="imrec", description="Incomplete multimodal learning from YAML recipes.")
    parser.add_argument("--version", action="version", version=f"imrec {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help=f"on an error, also print the full Python traceback (same as {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_run, _add_eval, _add_predict, _add_recipe_commands):
        add(sub)
    add_info_commands(sub, parser)
    add_bench_command(sub)
    add_tune_command(sub)
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--traceback` may stand anywhere (before "--"); it is taken out before parsing and handed on through the
    # environment so bench worker processes see it too.
    cut = argv.index("--") if "--" in argv else len(argv)
    if "--traceback" in argv[:cut]:
        argv = [a for i, a in enumerate(argv) if not (i < cut and a == "--traceback")]
        os.environ[DEBUG_ENV] = "1"
    try:
        parser = build_parser()
        # Overrides may come after options (`run R --quiet a=1`): argparse leaves those as extras.
        args, extra = parser.parse_known_args(argv)
        if extra:
            if hasattr(args, "overrides") and not any(e.startswith("-") for e in extra):
                args.overrides = [*args.overrides, *extra]
            else:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print("imrec: interrupted", file=sys.stderr)
        _print_resume(exc)
        return 130
    except Exception as exc:  # the one error boundary: a message, never a traceback (unless asked for)
        code = report(exc)
        _print_resume(exc)
        return code


def _print_resume(exc: BaseException) -> None:
    # Set by whatever had created a run directory before failing (imrec.runner.run_recipe, imrec bench run).
    command = getattr(exc, "imrec_resume_command", None)
    if command:
        print(f"imrec: continue with: {command}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
