"""Metric vs missing rate, one line per method (mean over seeds, band = ± std), as PNG files.

Needs matplotlib (the ``plot`` extra: ``pip install 'imrec[plot]'``); without it :func:`plot_board` raises
:class:`MissingMatplotlib` with that advice, and tables, records and leaderboards work as before.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ImrecError
from ..metric_info import label, metric_info
from ..runs import atomic_write_bytes
from . import stats
from .tables import BoardView


class MissingMatplotlib(ImrecError):
    """Plotting was asked for but matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingMatplotlib("plots need matplotlib, which is not installed: pip install 'imrec[plot]' "
                                "(tables, records and leaderboards do not need it)") from None
    return plt


def plot_board(records: Sequence[Mapping[str, Any]], view: BoardView, folder: Path) -> list[Path]:
    """One PNG per metric of ``view`` that has random-rate conditions: ``<folder>/<board>_<metric>.png``, each
    labelled and scaled as its plugin declares (imrec/metric_info.py)."""
    plt = _pyplot()
    mine = [r for r in records if r["board"] == view.board and r["method"] in view.methods]
    written = []
    for metric in view.metrics:
        vals = stats.values(mine, metric)
        rnd = stats.random_conditions({c for per in vals.values() for c in per})
        if len(rnd) < 2:
            continue
        scale = metric_info(metric).scale
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for method in view.methods:
            if method not in vals:
                continue
            pts = [(r, stats.describe(vals[method].get(c, {}).values())) for c, r in rnd]
            pts = [(r, s) for r, s in pts if s.mean is not None]
            if not pts:
                continue
            xs = [r for r, _ in pts]
            ys = [s.mean * scale for _, s in pts]
            sd = [(s.std or 0.0) * scale for _, s in pts]
            ref = method == view.reference
            (line,) = ax.plot(xs, ys, marker="o", markersize=3, linewidth=2.2 if ref else 1.2, label=method,
                              zorder=3 if ref else 2)
            ax.fill_between(xs, [y - e for y, e in zip(ys, sd)], [y + e for y, e in zip(ys, sd)],
                            color=line.get_color(), alpha=0.12, linewidth=0)
        ax.set_xlabel("missing rate (MR)")
        ax.set_ylabel(label(metric) + (f" (×{scale:g})" if scale != 1.0 else "")
                      + (" ↑" if view.hib(metric) else " ↓"))
        ax.set_title(f"{view.board}: {label(metric)} vs missing rate (mean ± std over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
        plt.close(fig)
        path = Path(folder) / f"{view.board}_{metric}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written
