"""imrec bench tables, statistics, leaderboard sections and plots, on hand-made records (no training)."""

import csv
import io
import json
import random
import sys

import pytest
from scipy import stats as sps

from imrec.bench import stats
from imrec.bench.leaderboard import markers, replace_section, update_leaderboard
from imrec.bench.plot import MissingMatplotlib, plot_board
from imrec.bench.records import write_records
from imrec.bench.render import render
from imrec.bench.tables import BoardView, build_tables, view_from_records
from imrec.cli import main
from imrec.errors import ImrecError

SEEDS = [1, 2, 3, 4, 5]
RATES = [0.0, 0.1, 0.3]
FIXED = {"fixed/a": (0.70, 0.65), "fixed/b": (0.60, 0.50), "fixed/a+b": (0.80, 0.80)}  # ref, zf
NOISE = [0.01, -0.01, 0.005, -0.004, -0.001]  # mean 0


def _acc(method, rate, seed):
    e = 0.001 * seed
    if method == "ref":
        return 0.8 - 0.2 * rate + e
    if method == "zf":
        return 0.8 - 1.0 * rate + e + 0.002 * (seed % 2)
    return 0.8 - 0.2 * rate + e + NOISE[seed - 1]  # "other": the reference plus noise


def _records():
    out = []

    def add(method, seed, condition, metric, value):
        out.append({"board": "toy", "method": method, "recipe": f"{method}_toy", "dataset": "data.toy",
                    "seed": seed, "condition": condition, "protocol": condition.split("/")[0], "metric": metric,
                    "value": value, "run_dir": f"runs/{method}/seed-{seed}"})

    for method in ("ref", "zf", "other"):
        for seed in SEEDS:
            for rate in RATES:
                cond = f"random/mr={rate:.2f}"
                acc = _acc(method, rate, seed)
                add(method, seed, cond, "acc", acc)
                add(method, seed, cond, "mae", 1.0 - acc)  # lower is better: the same ranking reversed
            for cond, (ref, zf) in FIXED.items():
                value = {"ref": ref, "zf": zf, "other": ref - 0.01}[method] + 0.001 * seed
                add(method, seed, cond, "acc", value)
                add(method, seed, cond, "mae", 1.0 - value)
    return out


VIEW = BoardView("toy", ("ref", "zf", "other"), ("acc", "mae"), "ref", "zf", "a toy board", ("Seeds: 1-5.",),
                 {"acc": True, "mae": False})


def _table(tables, name, metric):
    return next(t for t in tables if t.name == name and t.metric == metric)


def _row(table, method):
    return dict(zip(table.columns[1:], dict(table.rows)[method]))


# ------------------------------------------------------------------------------------------------ statistics
def test_avg_excludes_the_complete_column_and_std_is_ddof_1():
    t = _table(build_tables(_records(), VIEW), "random", "acc")
    assert t.columns == ["Method", "0.00", "0.10", "0.30", "Avg"]
    avg = _row(t, "ref")["Avg"]
    # Per seed: mean of MR 0.1 and 0.3 = 0.76 + 0.001·seed → mean 0.763, sample std 0.001·std([1..5], ddof=1).
    assert avg.mean == pytest.approx(76.3) and avg.std == pytest.approx(0.1 * 1.5811388, rel=1e-6)
    assert avg.text == "76.30 ± 0.16" and avg.n == 5
    assert "Avg = mean over the MR > 0 columns (MR 0.10–0.30; MR 0.00, complete data, left out)" in t.caption
    assert "n = 5 seeds (sample std, ddof = 1)" in t.caption
    fixed = _table(build_tables(_records(), VIEW), "fixed", "acc")
    assert fixed.columns == ["Method", "a", "b", "all", "Avg"]
    assert _row(fixed, "ref")["Avg"].mean == pytest.approx(100 * (0.7 + 0.6 + 0.8) / 3 + 0.3)
    assert "Avg = mean over all 3 subsets, the complete one included" in fixed.caption


def test_best_marked_in_the_metric_direction():
    tables = build_tables(_records(), VIEW)
    acc, mae = _table(tables, "random", "acc"), _table(tables, "random", "mae")
    assert _row(acc, "ref")["0.30"].best and not _row(acc, "zf")["0.30"].best
    assert _row(mae, "ref")["0.30"].best and not _row(mae, "zf")["0.30"].best  # lower is better
    assert _row(acc, "other")["0.30"].best  # a tie at the shown precision: both marked
    assert "lower is better" in mae.caption and "×100" not in mae.caption and "×100" in acc.caption


def test_paired_significance_against_the_reference():
    tables = build_tables(_records(), VIEW)
    rnd = _table(tables, "random", "acc")
    assert _row(rnd, "zf")["Avg"].mark == "†"  # consistently far below the reference on every seed
    assert _row(rnd, "other")["Avg"].mark == ""  # noise around the reference
    assert _row(rnd, "ref")["Avg"].mark == ""
    ref = {s: (_acc("ref", 0.1, s) + _acc("ref", 0.3, s)) / 2 for s in SEEDS}
    zf = {s: (_acc("zf", 0.1, s) + _acc("zf", 0.3, s)) / 2 for s in SEEDS}
    test = stats.paired_test(zf, ref)
    expected = sps.ttest_rel([zf[s] for s in SEEDS], [ref[s] for s in SEEDS])
    assert test.n == 5 and test.p_t == pytest.approx(expected.pvalue) and test.p_t < 0.05
    assert test.p_w == pytest.approx(sps.wilcoxon([zf[s] for s in SEEDS], [ref[s] for s in SEEDS]).pvalue)
    four = stats.paired_test({s: zf[s] for s in SEEDS[:4]}, ref)
    assert four.n == 4 and four.p_t is not None and four.p_w is None  # Wilcoxon only from 5 shared seeds
    assert stats.paired_test({1: 0.5}, ref) is None
    summary = _table(tables, "summary", "acc")
    assert _row(summary, "zf")["p (t)"].mark == "†" and _row(summary, "ref")["Δ Avg vs ref"].text == "(reference)"
    assert _row(summary, "zf")["Δ Avg vs ref"].text.startswith("-")


def test_robustness_numbers_by_hand():
    # Trapezoid over MR 0, 0.1, 0.3: 0.1·(0.8 + 0.78)/2 + 0.2·(0.78 + 0.74)/2 = 0.231, over the range 0.3.
    assert stats.auc([0.0, 0.1, 0.3], [0.8, 0.78, 0.74]) == pytest.approx(0.77)
    # Gap closed: (0.78 − 0.70)/(0.8 − 0.70) = 0.8 and (0.74 − 0.5)/(0.8 − 0.5) = 0.8.
    assert stats.gap_closed({0.0: 0.8, 0.1: 0.78, 0.3: 0.74}, {0.1: 0.7, 0.3: 0.5}, True) == (pytest.approx(0.8), 2)
    # Lower is better (MAE): (0.6 − 0.8)/(0.5 − 0.8) = 2/3 and (0.7 − 1.0)/(0.5 − 1.0) = 0.6.
    g, used = stats.gap_closed({0.0: 0.5, 0.1: 0.6, 0.3: 0.7}, {0.1: 0.8, 0.3: 1.0}, False)
    assert g == pytest.approx((2 / 3 + 0.6) / 2) and used == 2
    # The baseline beating the method's own complete-data score: the share is undefined there.
    assert stats.gap_closed({0.0: 0.8, 0.1: 0.9}, {0.1: 0.85}, True) == (None, 0)
    summary = _table(build_tables(_records(), VIEW), "summary", "acc")
    # ref per seed: (0.8 + 0.78)/2·0.1 + (0.78 + 0.74)/2·0.2 over 0.3 = 0.77, plus the seed offset 0.001·seed.
    assert _row(summary, "ref")["AUC"].mean == pytest.approx(77.3)
    # zf closes none of its own gap; ref: (0.78 − 0.7)/(0.8 − 0.7)… on seed means (offsets cancel partly).
    assert _row(summary, "zf")["Gap closed"].text == "0.0%"
    m = {r: sum(_acc("ref", r, s) for s in SEEDS) / 5 for r in RATES}
    b = {r: sum(_acc("zf", r, s) for s in SEEDS) / 5 for r in RATES}
    expected = sum((m[r] - b[r]) / (m[0.0] - b[r]) for r in (0.1, 0.3)) / 2
    assert _row(summary, "ref")["Gap closed"].mean == pytest.approx(100 * expected, abs=1e-4)


def test_a_missing_seed_is_shown_as_its_n():
    records = [r for r in _records() if not (r["method"] == "other" and r["seed"] == 5
                                             and r["condition"] == "random/mr=0.10")]
    t = _table(build_tables(records, VIEW), "random", "acc")
    assert _row(t, "other")["0.10"].text.endswith("(n=4)") and _row(t, "other")["Avg"].n == 4
    assert "(n=" not in _row(t, "ref")["0.10"].text


# ------------------------------------------------------------------------------------------------ formats
def test_formats_mark_best_std_n_and_significance():
    records = _records()
    md = render(records, VIEW, "markdown")
    assert "| ref | 80.30 ± 0.16 | **78.30 ± 0.16** |" in md and "| 60.42 ± 0.19† |" in md
    assert "n = 5 seeds" in md and "ddof = 1" in md and md.startswith("## toy\n")
    rows = list(csv.DictReader(io.StringIO(render(records, VIEW, "csv"))))
    avg = {(r["table"], r["metric"], r["method"], r["column"]): r for r in rows}
    assert avg[("random", "acc", "ref", "Avg")]["best"] == "*" and avg[("random", "acc", "zf", "Avg")]["best"] == ""
    assert avg[("random", "acc", "zf", "Avg")]["mark"] == "†" and avg[("random", "acc", "ref", "Avg")]["n"] == "5"
    assert float(avg[("random", "acc", "ref", "Avg")]["mean"]) == pytest.approx(76.3)
    doc = json.loads(render(records, VIEW, "json"))
    first = doc["tables"][0]
    assert first["name"] == "random" and first["rows"][0]["method"] == "ref"
    assert first["rows"][0]["cells"][-1] == {"column": "Avg", "text": "76.30 ± 0.16", "mean": 76.3,
                                             "std": pytest.approx(0.158114, abs=1e-6), "n": 5, "best": True,
                                             "mark": ""}
    tex = render(records, VIEW, "latex")
    assert r"\textbf{76.30 $\pm$ 0.16}" in tex and r"$^\dagger$" in tex and r"\toprule" in tex
    term = render(records, VIEW, "terminal")
    assert "76.30 ± 0.16*" in term and "60.42 ± 0.19†" in term
    with pytest.raises(ImrecError, match="unknown table format"):
        render(records, VIEW, "html")


def test_rendering_is_deterministic_whatever_the_record_order():
    records = _records()
    shuffled = records[:]
    random.Random(0).shuffle(shuffled)
    for fmt in ("markdown", "csv", "json", "latex", "terminal"):
        assert render(shuffled, VIEW, fmt) == render(records, VIEW, fmt), fmt


def test_view_from_records_and_cli_table(tmp_path, capsys):
    records = _records()
    view = view_from_records(records, reference="ref", baseline="zf")
    assert view.methods == ("ref", "other", "zf") and view.metrics == ("mae", "acc")
    with pytest.raises(ImrecError, match="no such method"):
        view_from_records(records, reference="nobody")
    path = tmp_path / "toy.jsonl"
    write_records(path, records)
    assert main(["bench", "table", str(path), "--reference", "ref", "--baseline", "zf", "--metrics", "acc",
                 "--format", "latex", "--out", str(tmp_path / "t.tex")]) == 0
    assert r"\begin{tabular}" in (tmp_path / "t.tex").read_text()
    assert main(["bench", "table", str(path), "--format", "terminal"]) == 0
    assert "76.30 ± 0.16" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ leaderboard
def test_leaderboard_sections_are_replaced_in_place(tmp_path):
    path = tmp_path / "LEADERBOARD.md"
    update_leaderboard(path, _records(), VIEW)
    first = path.read_text()
    assert first.startswith("# Leaderboards") and markers("toy")[0] in first and markers("toy")[1] in first
    path.write_text("# My boards\n\nIntro kept.\n\n" + first.split("\n", 1)[1] + "\nTail kept.\n")
    before = path.read_text()
    update_leaderboard(path, _records(), VIEW)
    assert path.read_text() == before  # same records: same bytes, text around the section untouched
    other = VIEW.with_metrics(["mae"])
    update_leaderboard(path, _records(), other)
    after = path.read_text()
    assert after.startswith("# My boards\n\nIntro kept.") and after.endswith("Tail kept.\n")
    assert "Accuracy" not in after.split(markers("toy")[0])[1].split(markers("toy")[1])[0]
    with pytest.raises(ImrecError, match="no end marker"):
        replace_section(markers("toy")[0] + "\nhalf\n", "toy", "x")


# ------------------------------------------------------------------------------------------------ plots
def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    paths = plot_board(_records(), VIEW, tmp_path)
    assert [p.name for p in paths] == ["toy_acc.png", "toy_mae.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_without_matplotlib_a_clear_message_and_tables_still_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingMatplotlib, match=r"pip install 'imrec\[plot\]'"):
        plot_board(_records(), VIEW, tmp_path)
    path = tmp_path / "toy.jsonl"
    write_records(path, _records())
    assert main(["bench", "plot", str(path), "--out", str(tmp_path / "plots")]) == 2
    assert "matplotlib" in capsys.readouterr().err
    from imrec.bench.cli import _plots

    _plots(_records(), VIEW, tmp_path / "plots")  # what `bench run` does: a message, no failure
    assert "pip install 'imrec[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "plots").exists()
    assert "76.30 ± 0.16" in render(_records(), VIEW, "markdown")
