"""eval.per_rate: the reference's protocol — one model per missing rate, trained and tested at that rate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imrec.config import load_recipe
from imrec.errors import RecipeError
from imrec.runner import per_rate_conditions, prepare

TESTS = Path(__file__).resolve().parents[1]
TINY = TESTS / "recipes" / "tiny_zero_fill.yaml"
SMALL = ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=2", "seeds=[3]"]


def _run(tmp_path, *overrides):
    env = dict(os.environ, IMREC_LOAD_PLUGINS="", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "imrec", "run", str(TINY), f"output_dir={tmp_path}", "--quiet",
                          *SMALL, *overrides], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    return run_dir, json.loads((run_dir / "seeds" / "3" / "test.json").read_text())["conditions"]


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_each_rate_gets_its_own_model_equal_to_a_single_run_at_that_rate(tmp_path):
    rates = "eval.conditions=[{name: random, rates: [0.0, 0.5]}]"
    run_dir, per_rate = _run(tmp_path / "a", rates, "eval.per_rate=true")
    assert set(per_rate) == {"random/mr=0.00", "random/mr=0.50"}
    for r in ("0.00", "0.50"):
        assert (run_dir / "seeds" / "3" / f"rate-{r}" / "phase-recover.pt").exists()
    # tiny_zero_fill trains its recover phase at rate 0.5: the per-rate model for 0.5 is exactly that run
    _, single = _run(tmp_path / "b", "eval.conditions=[{name: random, rates: [0.5]}]")
    assert per_rate["random/mr=0.50"] == single["random/mr=0.50"]
    # both models share the seed: identical pre-training (complete data), then recover phases that differ
    def valid(r, phase):
        lines = (run_dir / "seeds" / "3" / f"rate-{r}" / "metrics.jsonl").read_text().splitlines()
        return [json.loads(l)["valid"] for l in lines if json.loads(l)["phase"] == phase]

    assert valid("0.00", "pretrain") == valid("0.50", "pretrain")
    assert valid("0.00", "recover") != valid("0.50", "recover")


def test_per_rate_conditions_replace_only_the_missing_phases(tmp_path):
    recipe = load_recipe(TINY, [f"output_dir={tmp_path}", "eval.per_rate=true",
                                "eval.conditions=[{name: random, rates: [0.3]}]"])
    prepared = prepare(recipe)
    conds = per_rate_conditions(prepared, 0.3)
    assert [c.name for c in conds] == ["random/mr=0.00", "random/mr=0.30"]  # pretrain stays complete


def test_per_rate_refuses_conditions_without_a_rate(tmp_path):
    recipe = load_recipe(TINY, [f"output_dir={tmp_path}", "eval.per_rate=true"])  # has fixed/text
    with pytest.raises(RecipeError, match=r"eval.per_rate.*conditions \['fixed/text'\] have no rate"):
        prepare(recipe)
