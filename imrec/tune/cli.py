"""``imrec tune RECIPE [OVERRIDE…] --space SPACE.yaml --trials N [--jobs J] [--storage URL] [--seed S]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ImrecError


def add_tune_command(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune", help="hyper-parameter search on VALID (Optuna: seeded TPE, median pruning per epoch); TEST is "
                     "never evaluated; resumable, several processes or machines share one study",
        description="Search recipe keys on VALID. Each trial trains the recipe's seeds with sampled values and "
                    "is scored by the last phase's selected VALID metric; the best is written as a recipe "
                    "(extends + changes). See docs/tuning.md.")
    p.add_argument("recipe", help="recipe YAML file to tune")
    p.add_argument("overrides", nargs="*", help="fixed overrides for every trial (e.g. an epoch cap)")
    p.add_argument("--space", required=True, type=Path, help="search space YAML (docs/tuning.md)")
    p.add_argument("--trials", required=True, type=int, help="trials in the study in all (across resumes and "
                                                             "workers)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes sharing the study (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--storage", help="Optuna RDB URL (default sqlite:///<dir>/study.db); e.g. "
                                     "postgresql://user:pw@host/db to share a study between machines")
    p.add_argument("--study", help="study name (default: the recipe's name)")
    p.add_argument("--dir", type=Path, help="tune directory: storage, trial run directories, reports "
                                            "(default <output_dir>/tune/<recipe name>)")
    p.add_argument("--seed", type=int, default=0, help="TPE sampler seed (default 0)")
    p.set_defaults(func=cmd_tune)


def setup_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    from ..config import load_recipe
    from .space import check_recipe, load_space
    from .study import TuneSetup, default_storage

    overrides = tuple(args.overrides)
    bad = [o for o in overrides if o.split("=", 1)[0].strip() in ("output_dir",)]
    if bad:
        raise ImrecError(f"{bad[0]!r}: imrec tune places trial run directories itself; use --dir")
    recipe = load_recipe(args.recipe, overrides)
    space = load_space(args.space)
    check_recipe(space, Path(args.recipe), overrides)
    directory = Path(args.dir) if args.dir else Path(recipe.output_dir) / "tune" / recipe.name
    if args.threads < 1:
        raise ImrecError(f"--threads must be ≥ 1, got {args.threads}")
    setup = TuneSetup(recipe_path=Path(args.recipe).resolve(), overrides=overrides, space=space,
                      directory=directory.resolve(), storage=args.storage or default_storage(directory),
                      study_name=args.study or recipe.name, trials=args.trials, seed=args.seed,
                      threads=args.threads)
    return setup, recipe.name


def cmd_tune(args: argparse.Namespace) -> int:
    from .report import print_report, trial_rows, write_outputs
    from .study import run_study

    setup, name = setup_from_args(args)
    study = run_study(setup, jobs=args.jobs)
    summary = write_outputs(study, setup, name)
    print_report(trial_rows(study, setup), summary, setup)
    print(setup.directory, flush=True)
    return 0
