"""Metric metadata is declared by the metric's plugin and read by every table: built-ins as before, a third
party's new metric with its own label, scale, decimals, order and direction, and clear errors for bad ones."""

from typing import ClassVar

import pytest

from imrec import hookimpl, plugins
from imrec.bench.render import render
from imrec.bench.tables import build_tables, view_from_records
from imrec.display import results_table
from imrec.errors import PluginError
from imrec.interfaces import MetricDisplay
from imrec.metric_info import directions, label, metric_info, metric_infos, ordered

# The tables' order and labels before metric metadata moved into the plugins (imrec/bench/tables.py's PREFERRED
# and LABELS, imrec/cli.py's TABLE_METRICS and PERCENT): the built-ins must declare exactly these.
PREFERRED = ("acc2_non0", "f1_non0", "acc2_has0", "f1_has0", "acc7", "acc5", "acc3", "mae", "corr", "acc",
             "f1_macro", "f1_weighted")
LABELS = {"acc2_non0": "Acc-2 (Non0)", "f1_non0": "F1 (Non0)", "acc2_has0": "Acc-2 (Has0)", "f1_has0": "F1 (Has0)",
          "acc7": "Acc-7", "acc5": "Acc-5", "acc3": "Acc-3", "mae": "MAE", "corr": "Corr", "acc": "Accuracy",
          "f1_macro": "Macro F1", "f1_weighted": "Weighted F1", "loss": "loss"}
PERCENT = {"acc2_non0", "f1_non0", "acc2_has0", "f1_has0", "acc3", "acc5", "acc7", "acc", "f1_macro", "f1_weighted"}
HEADLINE = {"acc2_non0", "f1_non0", "acc2_has0", "acc7", "mae", "corr", "acc", "f1_macro", "f1_weighted",
            "recovery_mse", "recovery_mse_zero"}


def test_builtin_metrics_declare_what_the_core_used_to_hard_code():
    infos = metric_infos()
    assert ordered([*reversed(PREFERRED), "zeta", "loss", "alpha"]) == [*PREFERRED, "alpha", "loss", "zeta"]
    assert {m: label(m) for m in LABELS} == LABELS
    assert {m for m, i in infos.items() if i.scale == 100} == PERCENT
    assert all(infos[m].decimals == (2 if m in PERCENT else 3) for m in infos)
    assert {m for m, i in infos.items() if i.headline} == HEADLINE
    dirs = directions()
    assert dirs["mae"] is False and dirs["loss"] is False and dirs["recovery_mse"] is False and dirs["acc"] is True
    assert metric_info("nobody_declares_me").label == "nobody_declares_me" and metric_info("x").scale == 1.0


# ------------------------------------------------------------------------------------------------ a third party
class ToyMetric:
    """A third party's metric: error rate as a percentage, 1 decimal, shown first, lower is better."""

    task: ClassVar[str] = "regression"
    higher_is_better: ClassVar[dict] = {"toy_err": False, "toy_raw": True}
    display: ClassVar[dict] = {"toy_err": MetricDisplay("Toy error", scale=100, decimals=1, order=1, headline=True)}

    def __call__(self, predictions, labels):
        return {"toy_err": 0.25, "toy_raw": 1.0}


class ToyPlugin:
    @hookimpl
    def register_metrics(self, register):
        register("toy.metric", ToyMetric)


def _records():
    out = []
    for method, base in (("ref", 0.2), ("other", 0.3)):
        for seed in (1, 2, 3):
            for rate in (0.0, 0.5):
                for metric, value in (("toy_err", base + rate / 10 + seed / 1000), ("mae", 0.8)):
                    out.append({"board": "toy", "method": method, "recipe": "r", "dataset": "d", "seed": seed,
                                "condition": f"random/mr={rate:.2f}", "protocol": "random", "metric": metric,
                                "value": value, "run_dir": "x"})
    return out


def test_a_third_party_metric_is_shown_as_its_plugin_declares():
    plugins.register_plugin(ToyPlugin(), name="toy_metrics")
    try:
        assert metric_info("toy_err").label == "Toy error" and directions()["toy_err"] is False
        view = view_from_records(_records(), reference="ref")
        assert view.metrics == ("toy_err", "mae")  # its declared order puts it first
        tables = build_tables(_records(), view)
        random = next(t for t in tables if t.metric == "toy_err" and t.name == "random")
        assert random.title == "Toy error — random missing rate"
        assert "Toy error (×100, lower is better)" in random.caption
        cells = dict(random.rows)
        assert cells["ref"][0].text == "20.2 ± 0.1"  # ×100, one decimal: 0.201, 0.202, 0.203
        assert cells["ref"][0].best and not cells["other"][0].best  # lower is better
        assert "### Toy error" in render(_records(), view, "markdown")

        summary = {"recipe": "r", "seeds": [1, 2], "ddof": 1, "conditions_order": ["random/mr=0.00"],
                   "conditions": {"random/mr=0.00": {"toy_err": {"mean": 0.25, "std": 0.01},
                                                     "toy_raw": {"mean": 1.0, "std": 0.0},
                                                     "mae": {"mean": 0.5, "std": 0.1}}}}
        table = results_table(summary)
        assert [c.header for c in table.columns] == ["condition", "toy_err", "mae"]  # toy_raw: no headline
        assert list(table.columns[1].cells) == ["25.00 ± 1.00"]  # ×100: 4 digits of the fraction
        assert list(table.columns[2].cells) == ["0.5000 ± 0.1000"]
        assert [c.header for c in results_table(summary, task="classification").columns] == ["condition"]
    finally:
        plugins.unregister_plugin("toy_metrics")
    assert "toy_err" not in metric_infos()  # read again from the registry without the plugin


def test_a_metric_that_redeclares_a_name_without_display_keeps_the_declared_display():
    class Again:
        higher_is_better: ClassVar[dict] = {"acc": True}

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("zzz.again", Again)  # sorts after metrics.classification

    plugins.register_plugin(Plugin(), name="again")
    try:
        assert metric_info("acc").label == "Accuracy" and metric_info("acc").scale == 100
    finally:
        plugins.unregister_plugin("again")


@pytest.mark.parametrize("display, message", [
    ({"nope": MetricDisplay("Nope")}, r"declares how to display 'nope', which its `higher_is_better` does not list"),
    ({"toy_err": "Toy"}, r"`display` must map metric names to imrec.interfaces.MetricDisplay"),
])
def test_bad_display_declarations_are_specific_errors(display, message):
    class Bad(ToyMetric):
        pass

    Bad.display = display

    class Plugin:
        @hookimpl
        def register_metrics(self, register):
            register("bad.metric", Bad)

    plugins.register_plugin(Plugin(), name="bad_metrics")
    try:
        with pytest.raises(PluginError, match=message) as info:
            metric_infos()
        assert str(info.value).startswith("metric 'bad.metric'")
    finally:
        plugins.unregister_plugin("bad_metrics")


@pytest.mark.parametrize("kwargs, message", [
    ({"label": ""}, "label must be a non-empty string"),
    ({"label": "x", "scale": 0}, "scale must be a number > 0"),
    ({"label": "x", "decimals": 2.5}, r"decimals must be a whole number in \[0, 12\]"),
])
def test_metric_display_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetricDisplay(**kwargs)


def test_the_docs_example_metric_works_as_documented():
    import re
    import types
    from pathlib import Path

    import numpy as np

    doc = (Path(__file__).resolve().parents[2] / "docs" / "hooks.md").read_text()
    section = doc.split("## `register_metrics", 1)[1].split("\n## ", 1)[0]
    module = types.ModuleType("docs_example_metric")
    exec(re.search(r"```python\n(.*?)```", section, flags=re.S).group(1), module.__dict__)  # noqa: S102
    plugins.register_plugin(module, name="docs_example")
    try:
        assert metric_info("error").label == "Error rate" and metric_info("error").headline
        metric = plugins.get_registry().resolve("metric", "mine.error").factory()
        assert metric(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0])) == {"error": 0.5}
    finally:
        plugins.unregister_plugin("docs_example")
