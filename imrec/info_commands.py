"""The commands about imrec itself: ``version``, ``completion``, ``plugins``, ``list``. They import no torch
(nor rich, until they print): `imrec --help` imports this module."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .errors import ImrecError
from .registry import KINDS


def cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import plugin_info

    from rich.console import Console
    from rich.table import Table

    info = plugin_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    table = Table(title="imrec plugins")
    for col in ("plugin", "version", "builtin", "hooks", "components"):
        table.add_column(col)
    for p in info:
        comps = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["components"].items())
        if p.get("error"):
            from rich.markup import escape

            comps = f"[red]FAILED[/red]: {escape(p['error'])}"
        table.add_row(p["name"], str(p["version"]), "yes" if p["builtin"] else "no", ", ".join(p["hooks"]), comps)
    Console().print(table)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .plugins import get_registry

    kind = args.kind.rstrip("s") if args.kind.rstrip("s") in KINDS else args.kind
    if kind not in KINDS:
        from .errors import suggest

        close = suggest(args.kind, list(KINDS))
        raise ImrecError(f"unknown kind {args.kind!r}" + (f"; did you mean {close!r}?" if close else "")
                         + f" Kinds: {', '.join(KINDS)}")
    from rich.console import Console
    from rich.table import Table

    entries = get_registry().entries(kind)
    if args.json:
        print(json.dumps([{"name": e.name, "plugin": e.plugin, "summary": e.summary} for e in entries], indent=2))
        return 0
    table = Table(title=f"{kind}s")
    for col in ("name", "plugin", "description"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.name, e.plugin, e.summary)
    Console().print(table)
    return 0


def cmd_completion(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .completion import script

    sys.stdout.write(script(args.shell, parser))
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from . import __version__

    print(f"imrec {__version__}")
    return 0


def add_info_commands(sub: Any, parser: argparse.ArgumentParser) -> None:
    """``version``, ``completion``, ``plugins``, ``list``: about imrec itself; they import no torch."""
    p = sub.add_parser("version", help="print imrec's version (as --version does)")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser("completion", help="print a shell completion script: eval \"$(imrec completion bash)\" in "
                                          "~/.bashrc (or zsh in ~/.zshrc)")
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=lambda args: cmd_completion(args, parser))

    p = sub.add_parser("plugins", help="list loaded plugins: version, hooks, components")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("list", help=f"list registered components of a kind ({', '.join(KINDS)})")
    p.add_argument("kind")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
