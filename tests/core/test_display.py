"""imrec run's results table: the columns and number formats the metrics' plugins declare, rates as the bench
tables print them."""

from rich.console import Console

from imrec.display import results_table, show_condition


def _text(table):
    console = Console(width=200)
    with console.capture() as cap:
        console.print(table)
    return " ".join(cap.get().split())  # captions wrap to the table's width


def test_results_table_prints_rates_as_the_tables_do():
    assert show_condition("random/mr=0.6666666666666666") == "random/mr=0.67"
    assert show_condition("fixed/text+audio") == "fixed/text+audio"
    summary = {"recipe": "r", "seeds": [1], "ddof": 1, "conditions_order": ["random/mr=0.6666666666666666"],
               "conditions": {"random/mr=0.6666666666666666": {"mae": {"mean": 0.5, "std": None, "n": 1}}}}
    text = _text(results_table(summary))
    assert "random/mr=0.67" in text and "0.67 = 0.6666666666666666" in text and "1 seed (no std" in text


def _summary(metrics):
    return {"recipe": "r", "seeds": [1, 2], "ddof": 1, "conditions_order": ["random/mr=0.30"],
            "conditions": {"random/mr=0.30": {m: {"mean": 0.81234, "std": 0.01, "n": 2} for m in metrics}}}


def test_headline_columns_in_order_accuracies_x100():
    regression = ["corr", "acc3", "mae", "f1_has0", "acc7", "acc2_has0", "acc5", "f1_non0", "acc2_non0",
                  "recovery_cos", "recovery_mse_zero", "recovery_mse"]
    table = results_table(_summary(regression))
    assert [c.header for c in table.columns] == ["condition", "acc2_non0", "f1_non0", "acc2_has0", "acc7", "mae",
                                                 "corr", "recovery_mse", "recovery_mse of zero-fill"]
    cells = {c.header: list(c.cells)[0] for c in table.columns}
    assert cells["acc7"] == "81.23 ± 1.00" and cells["mae"] == "0.8123 ± 0.0100"
    assert "recovery_mse: recovered vs true tokens" in _text(table)
    table = results_table(_summary(["f1_weighted", "acc", "f1_macro"]))
    assert [c.header for c in table.columns] == ["condition", "acc", "f1_macro", "f1_weighted"]
