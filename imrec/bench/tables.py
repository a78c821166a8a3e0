"""Tables from tidy records: per metric, a random-missing-rate table (+ Avg), a fixed-subset table (+ Avg) and a
summary (significance against the reference, AUC, gap closed); imrec/bench/render.py renders them as terminal
(rich), Markdown, CSV, JSON or LaTeX. The same records always give the same tables (fixed ordering, fixed number
formats). How a metric is labelled, scaled, rounded and ordered is what its plugin declares (imrec/metric_info.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ImrecError
from ..metric_info import directions, label, metric_info, ordered
from . import stats
from .definition import Definition
from .records import shown_path

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
        """Whether higher is better: as the view says, else as the metric declares (imrec/metric_info.py); a
        metric nothing declares counts as higher-is-better."""
        if metric in self.higher_is_better:
            return self.higher_is_better[metric]
        declared = metric_info(metric).higher_is_better
        return True if declared is None else declared


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
                     defn.description, tuple(notes), directions())


def view_from_records(
    records: Sequence[Mapping[str, Any]],
    board: str | None = None,
    metrics: Sequence[str] | None = None,
    reference: str | None = None,
    baseline: str | None = None,
) -> BoardView:
    """A view decided by the records: their board (``board`` if several), methods alphabetically with the
    reference first, every metric (in their declared order, imrec/metric_info.py) unless ``metrics``."""
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
        metrics = ordered(present)
    return BoardView(board, tuple(methods), tuple(metrics), reference, baseline, "", (), directions())


# ------------------------------------------------------------------------------------------------ building
def _scale(metric: str) -> float:
    return metric_info(metric).scale


def _digits(metric: str) -> int:
    return metric_info(metric).decimals


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


CONFIG_METRIC = "configuration"  # the metric field of the configuration table, which shows no metric
CONFIG_HEADING = "Configuration"


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
    scale = _scale(metric)
    scale_note = f"×{scale:g}, " if scale != 1.0 else ""
    head = f"{label(metric)} ({scale_note}{'higher' if view.hib(metric) else 'lower'} is better)"
    ref = view.reference if view.reference in vals else None
    out: list[Table] = []
    random_avgs: dict[str, dict[int, float]] = {}
    tests: dict[str, stats.PairedTest | None] = {}
    if rnd:
        positive = [c for c, r in rnd if r > 0]
        random_avgs = {m: stats.seed_average(vals[m], positive) for m in methods}
        tests = _avg_tests(random_avgs, methods, ref)
        out.append(_random_table(view, metric, vals, rnd, random_avgs, tests, head, ref))
    if fixed:
        out.append(_fixed_table(view, metric, vals, methods, fixed, head, ref))
    if rnd:
        out.append(_summary(view, metric, vals, methods, rnd, random_avgs, tests, head))
    return out


def _avg_tests(avgs: dict[str, dict[int, float]], methods: list[str],
               ref: str | None) -> dict[str, stats.PairedTest | None]:
    """Each method's per-seed Avg tested against the reference's (paired over shared seeds)."""
    if ref is None:
        return {m: None for m in methods}
    return {m: (stats.paired_test(avgs[m], avgs[ref]) if m != ref else None) for m in methods}


def _marks_note(ref: str | None) -> str:
    best = f" Best in each column in bold (marked {BEST_MARK} where bold is not available)."
    return best + (f" {SIG_MARK} = paired t-test p < {stats.ALPHA} against {ref} on the per-seed Avg (shared seeds)."
                   if ref else "")


def _rows(view: BoardView, metric: str, vals: stats.Values, conditions: list[str],
          avgs: dict[str, dict[int, float]], tests: dict[str, stats.PairedTest | None],
          show_avg: bool = True) -> tuple[list[tuple[str, list[Cell]]], int]:
    """One row per method: a cell per condition, then Avg (marked where significant); best marked per column.
    Also the common number of seeds n (cells with another n show theirs)."""
    methods = list(avgs)
    per_cell = {m: [stats.describe(vals[m].get(c, {}).values()) for c in conditions] for m in methods}
    avg_stats = {m: stats.describe(avgs[m].values()) for m in methods}
    n = _common_n([s for m in methods for s in per_cell[m]] + list(avg_stats.values()))
    rows = []
    for m in methods:
        avg = _stat_cell(avg_stats[m], metric, n) if show_avg else Cell("–")
        if tests.get(m) is not None and tests[m].significant:
            avg.mark = SIG_MARK
        rows.append((m, [_stat_cell(s, metric, n) for s in per_cell[m]] + [avg]))
    _mark_best(rows, view.hib(metric), _digits(metric), range(len(conditions) + 1))
    return rows, n


def _random_table(view: BoardView, metric: str, vals: stats.Values, rnd: list[tuple[str, float]],
                  random_avgs: dict[str, dict[int, float]], tests: dict[str, stats.PairedTest | None], head: str,
                  ref: str | None) -> Table:
    pos_rates = [r for _, r in rnd if r > 0]
    rows, n = _rows(view, metric, vals, [c for c, _ in rnd], random_avgs, tests, show_avg=bool(pos_rates))
    odd = [r for _, r in rnd if abs(r - round(r, 2)) > 1e-9]
    rate_note = (" MR shown to 2 decimals: " + ", ".join(f"{r:.2f} = {_fraction(r)}" for r in odd)
                 + " (with K modalities at most (K−1)/K of the pairs can be missing; the field's \"0.7\")."
                 if odd else "")
    span = f"MR {pos_rates[0]:.2f}–{pos_rates[-1]:.2f}" if pos_rates else "no MR > 0"
    caption = (f"{view.board}: {head} on TEST at random missing rates (MR = share of missing sample-modality "
               f"pairs). Mean ± std over n = {n} seeds (sample std, ddof = 1). Avg = mean over the MR > 0 "
               f"columns ({span}; MR 0.00, complete data, left out), per seed, then mean ± std."
               + _marks_note(ref) + rate_note)
    return Table("random", metric, f"{label(metric)} — random missing rate", caption,
                 ["Method", *[f"{r:.2f}" for _, r in rnd], "Avg"], rows)


def _fixed_table(view: BoardView, metric: str, vals: stats.Values, methods: list[str], fixed: list[str], head: str,
                 ref: str | None) -> Table:
    everything = {n for c in fixed for n in c.split("/", 1)[1].split("+")}
    fixed_avgs = {m: stats.seed_average(vals[m], fixed) for m in methods}
    rows, n = _rows(view, metric, vals, fixed, fixed_avgs, _avg_tests(fixed_avgs, methods, ref))
    caption = (f"{view.board}: {head} on TEST with a fixed set of available modalities for every sample "
               f"(all = every modality, complete data). Mean ± std over n = {n} seeds (sample std, ddof = 1). "
               f"Avg = mean over all {len(fixed)} subsets, the complete one included, per seed, then mean ± std."
               + _marks_note(ref))
    return Table("fixed", metric, f"{label(metric)} — fixed available modalities", caption,
                 ["Method", *[_subset_label(c, everything) for c in fixed], "Avg"], rows)


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
