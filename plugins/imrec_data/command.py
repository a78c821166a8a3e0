"""The ``imrec data`` command: ``get`` (download or copy, checksummed), ``verify``, ``check`` (your own folder), ``info``."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from imrec.errors import DataError, ImrecError

from .download import FileStatus, bundle_named, get_file, verify_bundle
from .manifest import BUNDLES
from .paths import ENV_VAR, data_dir


def register(subparsers: Any) -> None:
    """Add ``data`` with its actions to the CLI's sub-parsers."""
    parser = subparsers.add_parser(
        "data",
        help="get, verify and inspect datasets",
        description=f"Datasets live in the data directory: ${ENV_VAR}, default ~/.cache/imrec/data.",
    )
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    parser.set_defaults(func=lambda args: _help(parser))

    p = actions.add_parser("get", help=f"download (or copy with --from) a dataset: {', '.join(BUNDLES)}, all")
    p.add_argument("name", help=f"{', '.join(BUNDLES)} or all")
    p.add_argument("--from", dest="source", metavar="DIR", help="copy from a local mirror laid out like the data dir")
    p.add_argument("--dir", dest="data_dir", metavar="DATA_DIR", help=f"data directory (default: ${ENV_VAR})")
    p.set_defaults(func=cmd_get)

    p = actions.add_parser("verify", help="recheck the SHA-256 of downloaded files")
    p.add_argument("name", nargs="?", help=f"{', '.join(BUNDLES)}; default: every dataset present")
    p.add_argument("--dir", dest="data_dir", metavar="DATA_DIR", help=f"data directory (default: ${ENV_VAR})")
    p.set_defaults(func=cmd_verify)

    p = actions.add_parser("check", help="check your own npz or npy folder: every problem at once, a summary and "
                                         "recommended settings; exit status 1 only on errors")
    p.add_argument("folder", help="a data.npz folder (train.npz, valid.npz, test.npz) or data.npy folder (train/ …)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a loader parameter as your recipe will give it (value read as YAML), e.g. -p "
                        "task=classification; repeatable")
    p.add_argument("--batch-size", type=int, default=32, help="the training batch size to check the splits "
                                                             "against (default 32, own_data.yaml's)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_check)

    p = actions.add_parser("info", help="load a dataset; print splits, shapes, label statistics, non-finite counts")
    p.add_argument("name", help="a registered dataset, e.g. mosi-bclstm, handwritten, synthetic")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset parameter (value read as YAML), e.g. -p preset=mosi; repeatable")
    p.add_argument("--dir", dest="data_dir", metavar="DATA_DIR", help=f"data directory (default: ${ENV_VAR})")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_info)


def _console() -> Console:
    """A console for tables: a terminal's own width; files and pipes get a wide one, so no table is crushed to
    rich's default 80 columns (cells like shapes would be cut to "3138×…")."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 0


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(os.path.expanduser(args.data_dir)) if getattr(args, "data_dir", None) else data_dir()


# ------------------------------------------------------------------------------------------------------- get
def cmd_get(args: argparse.Namespace) -> int:
    """Fetch every file of the named dataset(s), checksummed, into the data directory."""
    root = _data_dir(args)
    source = Path(os.path.expanduser(args.source)) if args.source else None
    if source is not None and not source.is_dir():
        raise DataError(f"--from {args.source}: no such directory ({source.resolve()})")
    console = Console()
    results: list[FileStatus] = []
    for bundle in bundle_named(args.name):
        with _progress(console) as advance_for:
            for entry in bundle.files:
                results.append(get_file(bundle, entry, root, source, advance_for(f"{bundle.folder}/{entry.name}")))
        done = [r for r in results if r.bundle == bundle.name]
        changed = sum(r.status != "ok" for r in done)
        console.print(
            f"{bundle.name}: {len(done)} file{'s' if len(done) != 1 else ''} in {root / bundle.folder} ({changed} written, "
            f"{len(done) - changed} already present; SHA-256 verified). Terms: {bundle.terms}.",
            soft_wrap=True,
            markup=False,
        )
    return 0


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[str], Callable[[int, int | None], None] | None]]:
    """Yields ``advance_for(label)``: a per-file progress callback on a terminal, None elsewhere."""
    if not console.is_terminal:
        yield lambda label: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as progress:

        def advance_for(label: str) -> Callable[[int, int | None], None]:
            task = progress.add_task(label, total=None)

            def advance(n: int, total: int | None) -> None:
                progress.update(task, advance=n, total=total)

            return advance

        yield advance_for


# ---------------------------------------------------------------------------------------------------- verify
def cmd_verify(args: argparse.Namespace) -> int:
    """Recheck checksums; exit status 1 if a file is missing or differs."""
    root = _data_dir(args)
    if args.name:
        bundles = bundle_named(args.name)
    else:
        bundles = [b for b in BUNDLES.values() if (root / b.folder).is_dir()]
        if not bundles:
            Console().print(f"nothing to verify: no dataset of {', '.join(BUNDLES)} in {root}", soft_wrap=True, markup=False)
            return 0
    results = [r for b in bundles for r in verify_bundle(b, root)]
    table = Table(title=Text(f"imrec data verify — {root}"))
    for col in ("dataset", "file", "status", "detail"):
        table.add_column(col)
    for r in results:
        style = "green" if r.status == "ok" else "red"
        table.add_row(r.bundle, r.name, Text(r.status, style=style), Text(r.detail))
    console = _console()
    console.print(table)
    bad = [r for r in results if r.status != "ok"]
    if bad:
        names = sorted({r.bundle for r in bad})
        console.print(
            f"{len(bad)} file(s) missing or corrupted; run: " + "; ".join(f"imrec data get {n}" for n in names),
            soft_wrap=True,
        )
        return 1
    return 0


# ----------------------------------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    """Every problem of a user's npz/npy folder, a summary and recommended settings; 1 if any is an error."""
    from .folder_check import check_folder

    if args.batch_size < 1:
        raise ImrecError(f"--batch-size must be >= 1, got {args.batch_size}")
    report = check_folder(os.path.expanduser(args.folder), _params(args.param), args.batch_size)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 1 if report.errors else 0
    _print_check(report)
    return 1 if report.errors else 0


def _print_check(report: Any) -> None:
    console = _console()
    out = lambda text, style=None: console.print(text, style=style, soft_wrap=True, markup=False, highlight=False)
    out(f"imrec data check {report.folder} (data.{report.format}, task {report.summary.get('task')})")
    summary = report.summary
    table = Table(title=Text("splits"))
    for col in ("split", "n", *summary.get("modalities", []), "labels"):
        table.add_column(col, no_wrap=True)
    for split, s in summary.get("splits", {}).items():
        cells = []
        for m in summary.get("modalities", []):
            e = s["modalities"].get(m)
            text = "–" if e is None else "×".join(map(str, e["shape"]))
            if e is not None and e.get("missing"):
                text += f" ({100 * e['missing']:.0f}% missing)"
            cells.append(text)
        lab = s["labels"]
        if "counts" in lab:
            labels = " ".join(f"{c}:{n}" for c, n in lab["counts"].items())
        elif lab:
            labels = f"{lab['min']:.3g} … {lab['max']:.3g}, {lab['distinct']} distinct"
        else:
            labels = "–"
        table.add_row(split, str(s["n"] if s["n"] is not None else "–"), *cells, labels)
    console.print(table)
    if summary.get("scales"):
        scales = Table(title=Text("feature scales in TRAIN (before any standardisation)"))
        for col in ("modality", "typical std", "median |mean|/std", "max/min feature std"):
            scales.add_column(col, no_wrap=True)
        for m, v in summary["scales"].items():
            scales.add_row(m, f"{v['typical_std']:.3g}", f"{v['mean_over_std']:.3g}", f"{v['feature_std_ratio']:.3g}")
        console.print(scales)
    styles = {"error": "red", "warning": "yellow", "note": None}
    for f in report.findings:
        out(f"{f.level.upper()}: {f.where}: {f.message}", styles[f.level])
    counts = {lvl: sum(f.level == lvl for f in report.findings) for lvl in ("error", "warning", "note")}
    out(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['note']} note(s)")
    out("recommended: " + ", ".join(f"{k}: {v}" for k, v in report.recommended.items()))
    out(("after fixing the errors: " if counts["error"] else "next: ") + report.command)


# ------------------------------------------------------------------------------------------------------ info
def _factory(name: str) -> tuple[str, Callable[..., Any]]:
    """A dataset factory by name: this plugin's own first (no other plugin is imported), then the registry."""
    from . import datasets

    short = name[len("data."):] if name.startswith("data.") else name
    own = datasets()
    if short in own:
        return f"data.{short}", own[short]
    from imrec.plugins import get_registry

    entry = get_registry().resolve("dataset", name)
    return entry.name, entry.factory


def _params(items: list[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ImrecError(f"-p {item!r}: expected KEY=VALUE (the value is read as YAML)")
        params[key.strip()] = yaml.safe_load(value)
    return params


@contextlib.contextmanager
def _data_dir_set(path: str | None) -> Iterator[None]:
    """Point ``$IMREC_DATA_DIR`` at ``path`` for the duration (datasets resolve their default paths from it)."""
    if not path:
        yield
        return
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = os.path.expanduser(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def cmd_info(args: argparse.Namespace) -> int:
    """Load a dataset and describe it."""
    full, factory = _factory(args.name)
    params = _params(args.param)
    try:
        inspect.signature(factory).bind(**params)
    except TypeError as exc:
        allowed = ", ".join(p for p in inspect.signature(factory).parameters)
        raise DataError(f"{full}: {exc}; its parameters are: {allowed}") from None
    with _data_dir_set(args.data_dir), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = factory(**params)
        splits = dataset.load()
        spec = dataset.spec
    from .summary import summarize

    info = summarize(spec, splits, [str(w.message) for w in caught])
    info["name"] = full
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _print_info(info)
    return 0


def _fmt(x: Any) -> str:
    return "–" if x is None else f"{x:.3g}" if isinstance(x, float) else str(x)


def _print_info(info: dict[str, Any]) -> None:
    console = _console()
    task = info["task"]
    kind = task["kind"] + (f", {task['num_classes']} classes" if task["num_classes"] else "")
    features = Table(title=f"{info['name']} ({info['dataset']}): features")
    for col in ("split", "modality", "shape", "nonfinite", "mean ± std", "min … max", "lengths"):
        features.add_column(col, no_wrap=True)
    labels = Table(title=f"{info['name']}: labels ({kind})")
    for col in ("split", "n", "dtype", *(("class counts",) if "classification" in kind else ("mean ± std", "min … max", "non-finite"))):
        labels.add_column(col)
    for split, s in info["splits"].items():
        for i, (name, m) in enumerate(s["modalities"].items()):
            lengths = m.get("lengths")
            text = f"{_fmt(lengths['min'])}…{_fmt(lengths['max'])}" if lengths else ""
            if "really_missing" in m:
                text += f" ({m['really_missing']} really missing)"
            features.add_row(
                split if i == 0 else "", name, "×".join(map(str, m["shape"])), str(m["nonfinite"]),
                f"{_fmt(m.get('mean'))} ± {_fmt(m.get('std'))}", f"{_fmt(m.get('min'))} … {_fmt(m.get('max'))}", text,
                end_section=i == len(s["modalities"]) - 1,
            )
        lab = s["labels"]
        if "counts" in lab:
            labels.add_row(split, str(s["n"]), lab["dtype"], " ".join(f"{c}:{n}" for c, n in lab["counts"].items()))
        else:
            labels.add_row(split, str(s["n"]), lab["dtype"], f"{_fmt(lab.get('mean'))} ± {_fmt(lab.get('std'))}",
                           f"{_fmt(lab.get('min'))} … {_fmt(lab.get('max'))}", str(lab.get("nonfinite", 0)))
    console.print(features)
    console.print(labels)
    for note in info["notes"]:
        console.print(f"note: {note}", style="yellow", soft_wrap=True, markup=False)
