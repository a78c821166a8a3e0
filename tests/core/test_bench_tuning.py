"""Boards with a tuning budget and pinned arithmetic: definition errors; through the CLI on a tiny board, each
method is tuned on VALID first, its cells run with the chosen configuration, every record names that
configuration, the budget and the settings the cell ran with, and re-running a cell under the recorded settings
reproduces its values bit for bit."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from imrec.bench.definition import DefinitionError, definition_from_dict  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
RECIPE = TESTS / "recipes" / "tiny_zero_fill.yaml"


def _definition(tmp_path, **extra):
    data = {
        "board": "tiny_tuned", "seeds": [7],
        "overrides": ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1", "data.sizes=[48, 24, 24]",
                      "eval.conditions=[{name: random, rates: [0.0, 0.3]}]"],
        "methods": [{"name": "zero_fill", "recipe": str(RECIPE)}],
        "reference": "zero_fill", "metrics": ["mae"],
        "output": {"work_dir": str(tmp_path / "work")},
        "arithmetic": {"threads": 1}, "tune": {"trials": 2},
        **extra,
    }
    path = tmp_path / "board.yaml"
    path.write_text(json.dumps(data))
    return path


def test_definition_errors_for_budget_and_arithmetic(tmp_path):
    other = tmp_path / "plain.yaml"
    shutil.copy(RECIPE, other)  # a recipe without a search space beside it
    (tmp_path / "tiny_rohydr.yaml").write_text((TESTS / "recipes" / "tiny_rohydr.yaml").read_text())
    data = {"board": "b", "seeds": [1], "methods": [{"name": "m", "recipe": "plain.yaml"}], "reference": "m",
            "metrics": ["mae"], "arithmetic": {"threads": 0, "deterministic": "yes", "fast": 1},
            "tune": {"trials": 0, "seeds": [], "storage": "nowhere"}}
    with pytest.raises(DefinitionError) as exc:
        definition_from_dict(data, "d.yaml", tmp_path)
    text = str(exc.value)
    for needle in ("d.yaml: arithmetic.threads: found 0", "arithmetic.deterministic: found 'yes'",
                   "arithmetic.fast: unknown key 'fast'", "tune.trials: found 0", "tune.seeds: found []",
                   "tune.storage: found 'nowhere'", f"methods.m: no search space {tmp_path / 'plain.space.yaml'}"):
        assert needle in text, text
    (tmp_path / "plain.space.yaml").write_text("params:\n  model.fuser.layerz: {type: int, low: 1, high: 2}\n")
    with pytest.raises(DefinitionError) as exc:
        definition_from_dict({**data, "arithmetic": {"threads": 2}, "tune": {"trials": 3}}, "d.yaml", tmp_path)
    assert "methods.m: its search space is invalid" in str(exc.value) and "layerz" in str(exc.value)
    (tmp_path / "plain.space.yaml").write_text("params:\n  model.fuser.layers: {type: int, low: 1, high: 2}\n")
    d = definition_from_dict({**data, "arithmetic": {"threads": 2}, "tune": {"trials": 3}}, "d.yaml", tmp_path)
    assert d.arithmetic.threads == 2 and d.arithmetic.deterministic is True
    assert d.tune.trials == 3 and d.tune.seeds == (1,)


def _bench(*args):
    env = dict(os.environ, IMREC_LOAD_PLUGINS="", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "imrec", "bench", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


def test_tuned_pinned_board_records_configuration_and_reproduces_bit_for_bit(tmp_path):
    board = _definition(tmp_path)
    out = _bench("run", str(board), "--threads", "2")
    assert out.returncode == 2 and "pins arithmetic.threads 1" in out.stderr

    records = tmp_path / "r.jsonl"
    out = _bench("run", str(board), "--records", str(records), "--format", "markdown")
    assert out.returncode == 0, out.stderr[-3000:]
    tune = json.loads((tmp_path / "work" / "zero_fill" / "tune" / "summary.json").read_text())
    assert tune["complete"] and sum(tune["states"].values()) == 2 and tune["objective"]["split"] == "valid"
    assert not list((tmp_path / "work" / "zero_fill" / "tune").rglob("test.json"))  # tuning never saw TEST
    recs = [json.loads(l) for l in records.read_text().splitlines()]
    assert recs and all(r["config"] == recs[0]["config"] for r in recs)
    config = recs[0]["config"]
    assert config["tuned"] == tune["best"]["overrides"] and config["trial"] == tune["best"]["trial"]
    assert config["budget"] == {"trials": 2, "seeds": [7], "sampler_seed": 0,
                                "space": os.path.relpath(RECIPE.with_name("tiny_zero_fill.space.yaml"), tmp_path)}
    assert recs[0]["settings"]["threads"] == 1 and recs[0]["settings"]["deterministic"] is True
    # The cell ran the chosen configuration.
    cell = tmp_path / "work" / "zero_fill" / "seed-7"
    ran = json.loads((cell / "overrides.json").read_text())
    assert ran[-len(config["tuned"]) - 3:-3] == config["tuned"]
    assert "Configuration of each row" in out.stdout and config["tuned"][0] in out.stdout
    assert "Tuning budget (every method): 2 Optuna trials on VALID" in out.stdout

    # Re-running the cell with the recorded settings (the board pins them) gives the same values, bit for bit;
    # the finished study is not run again.
    shutil.rmtree(cell)
    again = tmp_path / "again.jsonl"
    out = _bench("run", str(board), "--records", str(again))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "tune tiny_tuned/zero_fill" in out.stdout
    assert json.loads((tmp_path / "work" / "zero_fill" / "tune" / "summary.json").read_text())["states"] == \
        tune["states"]
    assert again.read_text() == records.read_text()
