"""benchmarks/rohydr_defaults.py: the measurements behind RoHyDR's defaults (docs/rohydr.md), at a tiny budget."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parents[1]
SCRIPT = TESTS.parent / "benchmarks" / "rohydr_defaults.py"


def _script():
    spec = importlib.util.spec_from_file_location("rohydr_defaults", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_masks_keep_a_modality_per_sample():
    bench = _script()
    mask = bench.random_masks(256, 3, 0.9, torch.Generator().manual_seed(0))
    assert mask.shape == (256, 3) and bool(mask.any(dim=1).all())
    assert 0.05 < float((~mask).float().mean()) < 0.95  # mostly missing, never everything


def test_synthetic_tokens_are_standardised_and_shaped_per_modality():
    bench = _script()
    mods = (bench.MOSI_ALIGNED[0], bench.ModalitySpec("audio", 5, None))
    tokens = bench.synthetic_tokens(64, mods, d_model=8, seed=1)
    assert tokens["text"].shape == (64, 50, 8) and tokens["audio"].shape == (64, 1, 8)
    for x in tokens.values():
        torch.testing.assert_close(x.mean(dim=(0, 1)), torch.zeros(8), atol=1e-5, rtol=0)
    assert torch.equal(bench.synthetic_tokens(64, mods, d_model=8, seed=1)["text"], tokens["text"])  # seeded


def test_speed_times_a_training_and_an_evaluation_batch():
    result = _script().speed(batch=2, rate=0.5, repeat=1, hddm={"width": 16, "blocks": 1, "num_heads": 2},
                             mult={"layers": 1})
    assert set(result) == {"train_s", "train_best_s", "train_cpu_s", "eval_s", "eval_best_s", "eval_cpu_s"}
    assert all(v > 0 for v in result.values())


def test_recovery_scores_held_out_missing_entries_relative_to_the_mean():
    bench = _script()
    mods = tuple(bench.ModalitySpec(m.name, m.dim, 6) for m in bench.MOSI_ALIGNED)
    train, test = bench.synthetic_split(mods, n_train=64, n_test=16, seed=0)
    result = bench.recovery({"width": 16, "blocks": 1, "num_heads": 2}, mods, train, test, steps=2, batch=8,
                            eval_steps=(2,))
    assert set(result) == {"train_step_s", "rel_mse", "eval_test_s", "rel_mse@2"}
    assert math.isfinite(result["rel_mse"]) and result["rel_mse"] > 0


@pytest.mark.parametrize("argv", [["speed", "--help"], ["recovery", "--help"]])
def test_command_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _script().main(argv)
    assert exc.value.code == 0 and "python benchmarks/rohydr_defaults.py" in capsys.readouterr().out
