"""Tables from tidy records: per metric, a random-missing-rate table (+ Avg), a fixed-subset table (+ Avg) and a
summary (significance against the reference, AUC, gap closed); rendered as terminal (rich), Markdown, CSV,
JSON or LaTeX. The same records always render to the same bytes (fixed ordering, fixed number formats).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from ..cli import PERCENT
from ..errors import ImrecError
from . import stats
from .definition import Definition, known_metrics
from .records import shown_path

LABELS = {
    "acc2_non0": "Acc-2 (Non0)", "f1_non0": "F1 (Non0)", "acc2_has0": "Acc-2 (Has0)", "f1_has0": "F1 (Has0)",
    "acc7": "Acc-7", "acc5": "Acc-5", "acc3": "Acc-3", "mae": "MAE", "corr": "Corr", "acc": "Accuracy",
    "f1_macro": "Macro F1", "f1_weighted": "Weighted F1", "loss": "loss", "configuration": "Configuration",
}
# Default metric order when records alone decide (headline metrics first, as the field's tables).
PREFERRED = ("acc2_non0", "f1_non0", "acc2_has0", "f1_has0", "acc7", "acc5", "acc3", "mae", "corr", "acc",
             "f1_macro", "f1_weighted")
BEST_MARK = "*"  # where bold is not available (terminal text, CSV)
SIG_MARK = "†"


@dataclass(frozen=True)
class BoardView:
    """What to show of a board's records: method order, metric tables, reference and baseline, notes."""

    board: str
    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    reference: str | None
    baseline: str | None = None
    description: str = ""
    notes: tuple[str, ...] = ()
    higher_is_better: Mapping[str, bool] = field(default_factory=dict)

    def with_metrics(self, metrics: Sequence[str]) -> "BoardView":
        return replace(self, metrics=tuple(metrics))

    def hib(self, metric: str) -> bool:
        return self.higher_is_better.get(metric, metric != "loss" and not metric.startswith("recovery_mse")
                                         and metric != "mae")


@dataclass
class Cell:
    text: str
    mean: float | None = None  # as displayed (accuracies ×100)
    std: float | None = None
    n: int = 0
    best: bool = False
    mark: str = ""


@dataclass
class Table:
    name: str  # random | fixed | summary
    metric: str
    title: str
    caption: str
    columns: list[str]
    rows: list[tuple[str, list[Cell]]]


# ------------------------------------------------------------------------------------------------ views
def view_from_definition(defn: Definition) -> BoardView:
    def code(text: str) -> str:
        return f"`{text}`"

    # Links relative to the leaderboard file (where this text is shown), else to the definition.
    where = defn.leaderboard.parent if defn.leaderboard is not None else defn.base
    recipes = ", ".join(f"{m.name} = [{m.recipe.name}]({shown_path(m.recipe, where)})"
                        + (" with " + " ".join(code(o) for o in m.overrides) if m.overrides else "")
                        for m in defn.methods)
    notes = [f"Methods: {recipes}.",
             f"Seeds: {', '.join(str(s) for s in defn.seeds)}.",
             "Board-wide overrides (every method): "
             + (", ".join(code(o) for o in defn.overrides) if defn.overrides else "none") + "."]
    if defn.arithmetic is not None:
        a = defn.arithmetic
        notes.append(f"Arithmetic pinned for every cell (and recorded in each record): {a.threads} torch "
                     f"thread(s), deterministic algorithms {'on' if a.deterministic else 'off'}, float32 matmul "
                     f"precision {a.float32_matmul_precision}.")
    if defn.tune is not None:
        notes.append(f"Tuning budget (every method): {defn.tune.trials} Optuna trials on VALID, seeds "
                     f"{', '.join(str(s) for s in defn.tune.seeds)}, over each method's search space beside its "
                     f"recipe; the configuration each row used is in the last table.")
    if defn.plots is not None:
        links = [f"[{label(m)}]({shown_path(defn.plots / f'{defn.board}_{m}.png', where)})" for m in defn.metrics]
        notes.append("Plots of metric vs missing rate: " + ", ".join(links) + ".")
    return BoardView(defn.board, tuple(m.name for m in defn.methods), defn.metrics, defn.reference, defn.baseline,
                     defn.description, tuple(notes), known_metrics())


def view_from_records(
    records: Sequence[Mapping[str, Any]],
    board: str | None = None,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    baseline: str | None = None,
) -> BoardView:
    """A view decided by the records: their board (``board`` if several), methods alphabetically with the
    reference first, every metric (headline metrics first) unless ``metrics``."""
    boards = sorted({r["board"] for r in records})
    if not boards:
        raise ImrecError("no records to show")
    if board is None:
        if len(boards) > 1:
            raise ImrecError(f"the records hold several boards ({', '.join(boards)}); choose one with --board")
        board = boards[0]
    elif board not in boards:
        raise ImrecError(f"no records of board {board!r}; boards: {', '.join(boards)}")
    mine = [r for r in records if r["board"] == board]
    methods = sorted({r["method"] for r in mine})
    for name, what in ((reference, "--reference"), (baseline, "--baseline")):
        if name is not None and name not in methods:
            raise ImrecError(f"{what} {name!r}: no such method in the records; methods: {', '.join(methods)}")
    reference = reference or methods[0]
    methods = [reference] + [m for m in methods if m != reference]
    present = {r["metric"] for r in mine}
    if metrics:
        unknown = [m for m in metrics if m not in present]
        if unknown:
            raise ImrecError(f"no records for metric(s) {', '.join(unknown)}; present: {', '.join(sorted(present))}")
    else:
        metrics = [m for m in PREFERRED if m in present] + sorted(present - set(PREFERRED))
    return BoardView(board, tuple(methods), tuple(metrics), reference, baseline, "", (), known_metrics())


# ------------------------------------------------------------------------------------------------ building
def label(metric: str) -> str:
    return LABELS.get(metric, metric)


def _scale(metric: str) -> float:
    return 100.0 if metric in PERCENT else 1.0


def _digits(metric: str) -> int:
    return 2 if metric in PERCENT else 3


def _stat_cell(stat: stats.Stat, metric: str, common_n: int) -> Cell:
    if stat.mean is None:
        return Cell("–")
    scale, d = _scale(metric), _digits(metric)
    mean = stat.mean * scale
    std = stat.std * scale if stat.std is not None else None
    text = f"{mean:.{d}f}" + (f" ± {std:.{d}f}" if std is not None else "")
    if stat.n != common_n:
        text += f" (n={stat.n})"
    return Cell(text, round(mean, 6), None if std is None else round(std, 6), stat.n)


def _mark_best(rows: list[tuple[str, list[Cell]]], higher: bool, digits: int, columns: Iterable[int]) -> None:
    for j in columns:
        means = [round(cells[j].mean, digits) for _, cells in rows if cells[j].mean is not None]
        if not means:
            continue
        best = max(means) if higher else min(means)
        for _, cells in rows:
            if cells[j].mean is not None and round(cells[j].mean, digits) == best:
                cells[j].best = True


def _common_n(stat_lists: Iterable[stats.Stat]) -> int:
    counts = Counter(s.n for s in stat_lists if s.n)
    if not counts:
        return 0
    top = max(counts.values())
    return max(n for n, c in counts.items() if c == top)


def _p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _subset_label(condition: str, everything: set[str]) -> str:
    names = condition.split("/", 1)[1].split("+")
    return "all" if set(names) == everything and len(everything) > 1 else "+".join(names)


def build_tables(records: Sequence[Mapping[str, Any]], view: BoardView) -> list[Table]:
    """The board's tables, metric by metric: random (if any random condition), fixed (if any), summary."""
    mine = [r for r in records if r["board"] == view.board and r["method"] in view.methods]
    if not mine:
        raise ImrecError(f"no records of board {view.board!r} for its methods ({', '.join(view.methods)})")
    tables: list[Table] = []
    for metric in view.metrics:
        vals = stats.values(mine, metric)
        if not vals:
            raise ImrecError(f"board {view.board!r}: no records for metric {metric!r}")
        tables += _metric_tables(view, metric, vals)
    config = _configuration_table(mine, view)
    return tables + ([config] if config is not None else [])


CONFIG_METRIC = "configuration"


def _configuration_table(records: Sequence[Mapping[str, Any]], view: BoardView) -> Table | None:
    """For a tuned board (records carrying ``config``): which configuration each row used, with the budget and
    the arithmetic the cells were pinned to; None for a board without tuning."""
    configs: dict[str, Any] = {}
    settings: list[Any] = []
    for r in records:
        if "config" in r:
            configs.setdefault(r["method"], r["config"])
        if "settings" in r and r["settings"] not in settings:
            settings.append(r["settings"])
    if not configs:
        return None
    rows, budgets = [], []
    for m in view.methods:
        c = configs.get(m)
        if c is None:
            continue
        budget = {k: v for k, v in c["budget"].items() if k != "space"}
        if budget not in budgets:
            budgets.append(budget)
        (metric, value), = c["valid"].items()
        rows.append((m, [Cell(" ".join(c["tuned"]) or "(recipe defaults)"), Cell(f"{metric} {value:.4f}"),
                         Cell(str(c["trial"])), Cell(c["budget"]["space"])]))
    caption = "Tuned on VALID only, the same budget for every method: " + "; ".join(
        f"{b['trials']} trials, seeds {b['seeds']}, TPE seed {b['sampler_seed']}" for b in budgets)
    caption += " (epoch caps and early stopping: the board-wide overrides)."
    if settings:
        caption += " Arithmetic of the cells: " + "; ".join(
            f"{s['threads']} thread(s), deterministic {str(s['deterministic']).lower()}, float32 matmul "
            f"{s['float32_matmul_precision']}, torch {s.get('torch')} on {s.get('device')}" for s in settings) + "."
    return Table("configuration", CONFIG_METRIC, "Configuration of each row", caption,
                 ["method", "tuned overrides", "best VALID", "trial", "search space"], rows)


def _metric_tables(view: BoardView, metric: str, vals: stats.Values) -> list[Table]:
    methods = [m for m in view.methods if m in vals]
    conditions = {c for per in vals.values() for c in per}
    rnd = stats.random_conditions(conditions)
    fixed = stats.fixed_conditions(conditions)
    higher = view.hib(metric)
    scale_note = "×100, " if _scale(metric) != 1.0 else ""
    head = f"{label(metric)} ({scale_note}{'higher' if higher else 'lower'} is better)"
    ref = view.reference if view.reference in vals else None
    positive = [c for c, r in rnd if r > 0]
    out: list[Table] = []

    def avg_column(avgs: dict[str, dict[int, float]]) -> dict[str, stats.PairedTest | None]:
        if ref is None:
            return {m: None for m in methods}
        return {m: (stats.paired_test(avgs[m], avgs[ref]) if m != ref else None) for m in methods}

    sig_note = (f" {SIG_MARK} = paired t-test p < {stats.ALPHA} against {ref} on the per-seed Avg (shared seeds)."
                if ref else "")
    best_note = f" Best in each column in bold (marked {BEST_MARK} where bold is not available)."

    random_avgs: dict[str, dict[int, float]] = {}
    tests: dict[str, stats.PairedTest | None] = {}
    if rnd:
        random_avgs = {m: stats.seed_average(vals[m], positive) for m in methods}
        tests = avg_column(random_avgs)
        per_cell = {m: [stats.describe(vals[m].get(c, {}).values()) for c, _ in rnd] for m in methods}
        avg_stats = {m: stats.describe(random_avgs[m].values()) for m in methods}
        n = _common_n([s for m in methods for s in per_cell[m]] + list(avg_stats.values()))
        rows = []
        for m in methods:
            cells = [_stat_cell(s, metric, n) for s in per_cell[m]]
            avg = _stat_cell(avg_stats[m], metric, n) if positive else Cell("–")
            if tests.get(m) is not None and tests[m].significant:
                avg.mark = SIG_MARK
            rows.append((m, cells + [avg]))
        _mark_best(rows, higher, _digits(metric), range(len(rnd) + 1))
        labels = [f"{r:.2f}" for _, r in rnd]
        odd = [r for _, r in rnd if abs(r - round(r, 2)) > 1e-9]
        rate_note = (" MR shown to 2 decimals: " + ", ".join(f"{r:.2f} = {_fraction(r)}" for r in odd)
                     + " (with K modalities at most (K−1)/K of the pairs can be missing; the field's \"0.7\")."
                     if odd else "")
        pos_rates = [r for _, r in rnd if r > 0]
        span = f"MR {pos_rates[0]:.2f}–{pos_rates[-1]:.2f}" if pos_rates else "no MR > 0"
        caption = (f"{view.board}: {head} on TEST at random missing rates (MR = share of missing sample-modality "
                   f"pairs). Mean ± std over n = {n} seeds (sample std, ddof = 1). Avg = mean over the MR > 0 "
                   f"columns ({span}; MR 0.00, complete data, left out), per seed, then mean ± std."
                   + best_note + sig_note + rate_note)
        out.append(Table("random", metric, f"{label(metric)} — random missing rate", caption,
                         ["Method", *labels, "Avg"], rows))
    if fixed:
        everything = {n for c in fixed for n in c.split("/", 1)[1].split("+")}
        fixed_avgs = {m: stats.seed_average(vals[m], fixed) for m in methods}
        ftests = avg_column(fixed_avgs)
        per_cell = {m: [stats.describe(vals[m].get(c, {}).values()) for c in fixed] for m in methods}
        avg_stats = {m: stats.describe(fixed_avgs[m].values()) for m in methods}
        n = _common_n([s for m in methods for s in per_cell[m]] + list(avg_stats.values()))
        rows = []
        for m in methods:
            avg = _stat_cell(avg_stats[m], metric, n)
            if ftests.get(m) is not None and ftests[m].significant:
                avg.mark = SIG_MARK
            rows.append((m, [_stat_cell(s, metric, n) for s in per_cell[m]] + [avg]))
        _mark_best(rows, higher, _digits(metric), range(len(fixed) + 1))
        caption = (f"{view.board}: {head} on TEST with a fixed set of available modalities for every sample "
                   f"(all = every modality, complete data). Mean ± std over n = {n} seeds (sample std, ddof = 1). "
                   f"Avg = mean over all {len(fixed)} subsets, the complete one included, per seed, then mean ± std."
                   + best_note + sig_note)
        out.append(Table("fixed", metric, f"{label(metric)} — fixed available modalities", caption,
                         ["Method", *[_subset_label(c, everything) for c in fixed], "Avg"], rows))
    if rnd:
        out.append(_summary(view, metric, vals, methods, rnd, random_avgs, tests, head))
    return out


def _fraction(rate: float) -> str:
    from fractions import Fraction

    return str(Fraction(rate).limit_denominator(12))


def _summary(view: BoardView, metric: str, vals: stats.Values, methods: list[str], rnd: list[tuple[str, float]],
             random_avgs: dict[str, dict[int, float]], tests: dict[str, stats.PairedTest | None],
             head: str) -> Table:
    higher = view.hib(metric)
    scale, d = _scale(metric), _digits(metric)
    base = view.baseline if view.baseline in vals else None
    means = {m: {r: stats.describe(vals[m].get(c, {}).values()).mean for c, r in rnd} for m in methods}
    aucs = {m: stats.describe(stats.seed_auc(vals[m], rnd).values()) for m in methods}
    n = _common_n(aucs.values())
    rows = []
    for m in methods:
        t = tests.get(m)
        if m == view.reference:
            diff, p_t, p_w = Cell("(reference)"), Cell("–"), Cell("–")
        elif t is None:
            diff, p_t, p_w = Cell("–"), Cell("–"), Cell("–")
        else:
            dv = t.diff * scale
            diff = Cell(f"{dv:+.{d}f}" + (f" (n={t.n})" if t.n != n else ""), round(dv, 6), None, t.n)
            p_t = Cell(_p_text(t.p_t), None if t.p_t is None else round(t.p_t, 6), None, t.n,
                       mark=SIG_MARK if t.significant else "")
            p_w = Cell(_p_text(t.p_w), None if t.p_w is None else round(t.p_w, 6), None, t.n)
        gap = Cell("–")
        if base is not None:
            curve = {r: v for r, v in means[m].items() if v is not None}
            bcurve = {r: v for r, v in means[base].items() if v is not None}
            g, used = stats.gap_closed(curve, bcurve, higher)
            if g is not None:
                gap = Cell(f"{100 * g:.1f}%" + (f" ({used} MR)" if used != len([r for _, r in rnd if r > 0]) else ""),
                           round(100 * g, 6), None, used)
        rows.append((m, [_stat_cell(aucs[m], metric, n), gap, diff, p_t, p_w]))
    _mark_best(rows, higher, d, [0])
    _mark_best(rows, True, 1, [1])
    rates = [r for _, r in rnd]
    caption = (f"{view.board}: {head}, robustness over the random missing rates and significance. "
               f"AUC = area under metric-vs-MR (trapezoid over MR {rates[0]:.2f}–{rates[-1]:.2f}) divided by the "
               f"MR range, per seed, then mean ± std over n = {n} seeds (ddof = 1)."
               + (f" Gap closed = mean over MR > 0 of (m(method, MR) − m({base}, MR)) / (m(method, 0) − "
                  f"m({base}, MR)) on seed means: 0% = no better than {base}, 100% = as good as the method's own "
                  f"complete-data score; a rate counts only where the method's complete-data score beats "
                  f"{base} at that rate (the count is shown when some do not)." if base else "")
               + (f" Δ Avg = mean over shared seeds of the per-seed random Avg minus {view.reference}'s; p (t) = "
                  f"paired t-test, p (W) = two-sided Wilcoxon signed-rank (given only from {stats.MIN_WILCOXON} "
                  f"shared seeds up, since with fewer it cannot reach p < 0.1; with 5 its smallest p is 0.0625); "
                  f"{SIG_MARK} = p (t) < {stats.ALPHA}." if view.reference else "")
               + f" Best AUC and gap closed in bold (marked {BEST_MARK} where bold is not available).")
    return Table("summary", metric, f"{label(metric)} — robustness and significance", caption,
                 ["Method", "AUC", "Gap closed", f"Δ Avg vs {view.reference}", "p (t)", "p (W)"], rows)


# ------------------------------------------------------------------------------------------------ rendering
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
            lines += [f"{h}# {label(t.metric)}", ""]
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
