"""The tables of a board (imrec/bench/tables.py) as text: terminal (rich), Markdown, CSV, JSON or LaTeX. The same
tables always render to the same bytes."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Mapping, Sequence

from ..errors import ImrecError
from ..metric_info import label
from .tables import BEST_MARK, CONFIG_HEADING, CONFIG_METRIC, BoardView, Table, build_tables


def render(records: Sequence[Mapping[str, Any]], view: BoardView, fmt: str) -> str:
    """All tables of ``view`` in ``fmt`` (terminal, markdown, csv, json, latex) as text."""
    tables = build_tables(records, view)
    if fmt == "markdown":
        return markdown(tables, view)
    if fmt == "csv":
        return to_csv(tables, view)
    if fmt == "json":
        return to_json(tables, view)
    if fmt == "latex":
        return latex(tables, view)
    if fmt == "terminal":
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=220, color_system=None, force_terminal=False)
        _terminal(tables, view, console)
        return buf.getvalue()
    raise ImrecError(f"unknown table format {fmt!r}; formats: terminal, markdown, csv, json, latex")


def print_terminal(records: Sequence[Mapping[str, Any]], view: BoardView) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)
    _terminal(build_tables(records, view), view, console)


def _terminal(tables: list[Table], view: BoardView, console: Any) -> None:
    from rich.table import Table as RichTable
    from rich.text import Text

    console.print(Text(view.board + (f" — {view.description}" if view.description else ""), style="bold"))
    for t in tables:
        rt = RichTable(title=Text(t.title), caption=Text(t.caption), caption_justify="left")
        for i, c in enumerate(t.columns):
            rt.add_column(c, justify="left" if i == 0 else "right")
        for method, cells in t.rows:
            rt.add_row(Text(method), *[Text(c.text + c.mark + (BEST_MARK if c.best else ""),
                                            style="bold" if c.best else "") for c in cells])
        console.print(rt)


def markdown_board(tables: list[Table], view: BoardView, level: int = 2) -> str:
    """A board as Markdown: heading, description, notes, then every table with its caption."""
    h = "#" * level
    lines = [f"{h} {view.board}", ""]
    if view.description:
        lines += [view.description, ""]
    for note in view.notes:
        lines += [f"- {note}"]
    if view.notes:
        lines.append("")
    current = None
    for t in tables:
        if t.metric != current:
            current = t.metric
            lines += [f"{h}# {CONFIG_HEADING if t.metric == CONFIG_METRIC else label(t.metric)}", ""]
        lines += [f"{h}## {t.title}", "", _md_table(t), "", f"*{t.caption}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def markdown(tables: list[Table], view: BoardView) -> str:
    return markdown_board(tables, view)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _md_table(t: Table) -> str:
    head = "| " + " | ".join(_md_escape(c) for c in t.columns) + " |"
    rule = "|" + "|".join([":---"] + ["---:"] * (len(t.columns) - 1)) + "|"
    body = []
    for method, cells in t.rows:
        texts = [(f"**{_md_escape(c.text)}**" if c.best else _md_escape(c.text)) + c.mark for c in cells]
        body.append("| " + " | ".join([_md_escape(method), *texts]) + " |")
    return "\n".join([head, rule, *body])


def to_csv(tables: list[Table], view: BoardView) -> str:
    """Long form: one row per table cell, numbers as displayed (accuracies ×100), best as ``*``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["board", "table", "metric", "method", "column", "text", "mean", "std", "n", "best", "mark"])
    for t in tables:
        for method, cells in t.rows:
            for col, c in zip(t.columns[1:], cells):
                w.writerow([view.board, t.name, t.metric, method, col, c.text,
                            "" if c.mean is None else repr(c.mean), "" if c.std is None else repr(c.std), c.n,
                            BEST_MARK if c.best else "", c.mark])
    return buf.getvalue()


def to_json(tables: list[Table], view: BoardView) -> str:
    doc = {
        "board": view.board, "description": view.description, "reference": view.reference,
        "baseline": view.baseline, "notes": list(view.notes),
        "tables": [{
            "name": t.name, "metric": t.metric, "title": t.title, "caption": t.caption, "columns": t.columns,
            "rows": [{"method": m, "cells": [{"column": col, "text": c.text, "mean": c.mean, "std": c.std,
                                              "n": c.n, "best": c.best, "mark": c.mark}
                                             for col, c in zip(t.columns[1:], cells)]} for m, cells in t.rows],
        } for t in tables],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "†": r"$^\dagger$",
        "–": "--", "—": "---", "Δ": r"$\Delta$", "×": r"$\times$", "−": "$-$", "≥": r"$\geq$", "<": r"$<$",
        ">": r"$>$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def latex(tables: list[Table], view: BoardView) -> str:
    """One ``table`` environment per table (booktabs rules)."""
    out = [f"% imrec bench: board {view.board}; needs \\usepackage{{booktabs}}"]
    for t in tables:
        out += ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{_tex(t.caption)}}}",
                f"\\label{{tab:{view.board}-{t.metric}-{t.name}}}".replace("_", "-"),
                "\\begin{tabular}{l" + "r" * (len(t.columns) - 1) + "}", "\\toprule",
                " & ".join(_tex(c) for c in t.columns) + " \\\\", "\\midrule"]
        for method, cells in t.rows:
            texts = [(f"\\textbf{{{_tex(c.text)}}}" if c.best else _tex(c.text)) + _tex(c.mark) for c in cells]
            out.append(" & ".join([_tex(method), *texts]) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)
