"""How ``imrec run`` and ``imrec eval`` show results on the terminal: the results table of a run and the names of
conditions (shared with the progress lines and the bench tables).

Columns are the metrics the run has that their plugins mark ``headline`` (imrec/metric_info.py), in their
declared order and scale; every metric is in the run directory either way.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .metric_info import metric_info, ordered

if TYPE_CHECKING:
    from rich.table import Table

# The run's table shows every value to 4 digits of its unscaled fraction: 0.8245, or 82.45 when shown ×100.
RUN_DIGITS = 4


def show_condition(name: str) -> str:
    """A condition as the bench tables print it: ``random/mr=0.6666666666666666`` → ``random/mr=0.67``."""
    head, sep, rate = name.rpartition("mr=")
    try:
        return f"{head}{sep}{float(rate):.2f}" if sep else name
    except ValueError:
        return name


def _digits(scale: float) -> int:
    return max(0, RUN_DIGITS - round(math.log10(scale)))


def _fmt_cell(metric: str, stats: dict[str, Any]) -> str:
    mean, std = stats.get("mean"), stats.get("std")
    if mean is None:
        return "–"
    scale = metric_info(metric).scale
    d = _digits(scale)
    text = f"{mean * scale:.{d}f}"
    if std is not None:
        text += f" ± {std * scale:.{d}f}"
    return text


def _column(metric: str) -> str:
    # The core's own reference error (imrec/metric_info.py, CORE_METRICS) is named for what it is.
    return "recovery_mse of zero-fill" if metric == "recovery_mse_zero" else metric


def results_table(summary: dict[str, Any], task: str | None = None, split: str = "test") -> Table:
    """``summary.json``'s conditions as a table: one row per condition, one column per headline metric (only
    metrics for ``task``, or for any task, when it is given)."""
    from rich.table import Table

    conditions = summary["conditions"]
    order = summary.get("conditions_order") or list(conditions)
    present = {m for c in conditions.values() for m in c}
    cols = [m for m in ordered(present) if metric_info(m).headline
            and (task is None or metric_info(m).task in (None, task))]
    n = len(summary.get("seeds", []))
    spread = (f"mean ± std over {n} seeds (ddof={summary.get('ddof', 1)}; " if n != 1
              else "1 seed (no std; ")
    table = Table(title=f"{summary.get('recipe', '')} — {split.upper()}, {spread}accuracies ×100)")
    table.add_column("condition")
    for c in cols:
        table.add_column(_column(c), justify="right")
    for cond in order:
        row = conditions.get(cond, {})
        table.add_row(show_condition(cond), *[_fmt_cell(m, row.get(m, {})) for m in cols])
    notes = [f"{show_condition(c).rpartition('=')[2]} = {c.rpartition('=')[2]}" for c in order
             if show_condition(c) != c and float(show_condition(c).rpartition("=")[2]) != float(c.rpartition("=")[2])]
    captions = []
    if notes:
        captions.append("missing rates shown to 2 decimals: " + ", ".join(dict.fromkeys(notes)))
    if "recovery_mse" in cols:
        captions.append("recovery_mse: recovered vs true tokens of the missing modalities; zero-fill's is the same "
                        "error for all-zero tokens (no recovery), its scale")
    if captions:
        table.caption = "; ".join(captions)
    return table
