"""benchmarks/dev_score.py: the development-draw selection score, per board and over boards."""

import importlib.util
import json
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS.parent / "benchmarks" / "dev_score.py"
RATES = (0.0, 0.3, 0.4, 0.5, 0.6, 2 / 3)


def _script():
    spec = importlib.util.spec_from_file_location("dev_score", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(path, board, values):
    """values: {method: {seed: [mae at each of RATES]}}, written as `imrec bench` writes records."""
    with path.open("w") as fh:
        for method, per_seed in values.items():
            for seed, maes in per_seed.items():
                for rate, mae in zip(RATES, maes):
                    for metric, value in (("mae", mae), ("corr", 1.0 - mae)):
                        cond = f"random/mr={rate:.2f}" if rate != 2 / 3 else f"random/mr={rate!r}"
                        fh.write(json.dumps(_record(board, method, seed, cond, metric, value)) + "\n")
        fh.write(json.dumps(_record(board, "A", 1, "fixed/text", "mae", 99.0)) + "\n")


def _record(board, method, seed, condition, metric, value):
    return {"board": board, "method": method, "recipe": "r.yaml", "dataset": "data.synthetic", "seed": seed,
            "condition": condition, "protocol": "protocols.random", "metric": metric, "value": value,
            "run_dir": f"runs/{method}/seed-{seed}"}


def test_scores_per_board_and_over_boards(tmp_path, capsys):
    _records(tmp_path / "d1.jsonl", "dev1", {
        "A": {1: [9.0, 0.3, 0.4, 0.5, 0.6, 0.7], 2: [9.0, 0.5, 0.6, 0.7, 0.8, 0.9]},   # 0.5, 0.7 -> 0.6
        "B": {1: [0.0, 0.6, 0.6, 0.6, 0.6, 0.6], 2: [0.0, 0.6, 0.6, 0.6, 0.6, 0.6]},   # 0.6
    })
    _records(tmp_path / "d2.jsonl", "dev2", {
        "A": {1: [0.0, 0.4, 0.4, 0.4, 0.4, 0.4], 2: [0.0, 0.4, 0.4, 0.4, 0.4, 0.4]},   # 0.4
        "B": {1: [0.0, 0.2, 0.2, 0.2, 0.2, 0.2], 2: [0.0, 0.2, 0.2, 0.2, 0.2, 0.2]},   # 0.2
        "C": {1: [0.0, 0.1, 0.1, 0.1, 0.1, 0.1]},
    })
    score = _script()
    board, scores = score.board_scores(tmp_path / "d1.jsonl", "mae", score.RATES)
    assert board == "dev1" and scores["A"] == pytest.approx({1: 0.5, 2: 0.7})  # MR 0 and fixed/* left out
    assert score.main([str(tmp_path / "d1.jsonl"), str(tmp_path / "d2.jsonl")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "method | dev1 | dev2 | all"
    assert lines[1].startswith("B | 0.6000 (n=2) | 0.2000 (n=2) | 0.4000") and lines[1].endswith("(best)")
    assert lines[2].startswith("A | 0.6000 (n=2) | 0.4000 (n=2) | 0.5000") and "tie" not in lines[2]
    assert lines[3] == "C | – | 0.1000 (n=1) | –"  # not on every board: no overall score
    assert score.main([str(tmp_path / "d1.jsonl"), str(tmp_path / "d2.jsonl"), "--tie", "0.2"]) == 0
    assert "(tie with the best)" in capsys.readouterr().out


def test_incomplete_cell_is_named(tmp_path):
    _records(tmp_path / "d.jsonl", "dev", {"A": {1: [0.0, 0.3, 0.4, 0.5, 0.6, 0.7]}})
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    (tmp_path / "d.jsonl").write_text("\n".join(l for l in lines if "mr=0.50" not in l) + "\n")
    with pytest.raises(SystemExit, match=r"A seed 1 has no mae at MR \[0.5\]"):
        _script().board_scores(tmp_path / "d.jsonl", "mae", (0.3, 0.4, 0.5, 0.6, 2 / 3))
