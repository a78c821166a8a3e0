"""benchmarks/recovery_floor.py: the linear predictability floor of each modality from the others."""

import importlib.util
import json
from pathlib import Path

import pytest

from imrec.cli import main as imrec_main

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS.parent / "benchmarks" / "recovery_floor.py"
TINY = TESTS / "recipes" / "tiny_rohydr.yaml"


def _script():
    spec = importlib.util.spec_from_file_location("recovery_floor", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_floor_per_target_and_source_set(tmp_path, capsys):
    assert imrec_main(["run", str(TINY), f"output_dir={tmp_path}", "train.phases.recover.epochs=1", "seeds=[5]",
                       "--quiet"]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    floor = _script()
    assert floor.main([str(run_dir), "--json", str(tmp_path / "floor.json")]) == 0
    rows = json.loads((tmp_path / "floor.json").read_text())["rows"]
    # 3 targets × (both others + each other alone)
    assert [(r["target"], tuple(r["sources"])) for r in rows] == [
        ("text", ("audio", "vision")), ("text", ("audio",)), ("text", ("vision",)),
        ("audio", ("text", "vision")), ("audio", ("text",)), ("audio", ("vision",)),
        ("vision", ("text", "audio")), ("vision", ("text",)), ("vision", ("audio",)),
    ]
    for r in rows:
        assert r["mean_fill_mse"] > 0 and r["rel"] == pytest.approx(r["ridge_mse"] / r["mean_fill_mse"])
    # The modalities share a latent: from both others the regression beats the mean for every target.
    assert all(r["rel"] < 1.0 for r in rows if len(r["sources"]) == 2)
    assert "ridge MSE" in capsys.readouterr().out

    assert floor.main([str(run_dir), "--seed", "9"]) == 2
    assert "seed 9" in capsys.readouterr().err
