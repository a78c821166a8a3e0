"""`imrec tune`: end to end through the CLI on a tiny recipe (trials recorded, a killed study resumed with no trial
lost or repeated, pruning observed, the best recipe loadable), TEST never evaluated, and bad search spaces."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from imrec.cli import main  # noqa: E402
from imrec.config import load_recipe  # noqa: E402
from imrec.tune.space import SpaceError, check_recipe, load_space, space_from_dict  # noqa: E402

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
RECIPE = TESTS / "recipes" / "tiny_zero_fill.yaml"
SPACE = TESTS / "recipes" / "tiny_zero_fill.space.yaml"
BUDGET = ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=3"]


def _command(tune_dir, trials):
    return [sys.executable, "-m", "imrec", "tune", str(RECIPE), *BUDGET, "--space", str(SPACE),
            "--trials", str(trials), "--dir", str(tune_dir)]


def _env():
    return dict(os.environ, IMREC_LOAD_PLUGINS="", OMP_NUM_THREADS="1")


def _study(tune_dir):
    return optuna.load_study(study_name="tiny_zero_fill", storage=f"sqlite:///{tune_dir / 'study.db'}")


def test_tune_kill_resume_prune_and_best_recipe(tmp_path):
    tune_dir = tmp_path / "tune"
    # Start a 4-trial study and kill it (SIGKILL: no clean-up at all) while trial 1 is training.
    proc = subprocess.Popen(_command(tune_dir, 4), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            cwd=REPO)
    marker = tune_dir / "trials" / "0001" / "seeds" / "7" / "metrics.jsonl"
    deadline = time.time() + 240
    while not (marker.exists() and marker.read_text().strip()) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert marker.exists(), "trial 1 never started training"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    study = _study(tune_dir)
    before = {t.number: t for t in study.get_trials()}
    assert before[0].state.name == "COMPLETE" and before[1].state.name == "RUNNING"
    trial0_lines = (tune_dir / "trials" / "0000" / "seeds" / "7" / "metrics.jsonl").read_text()

    # Resume with the same command: the dead trial is failed and its parameters queued again, continuing in its
    # own run directory; the budget counts trials that ran, so exactly 4 finish.
    out = subprocess.run(_command(tune_dir, 4), capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == str(tune_dir.resolve())
    trials = sorted(_study(tune_dir).get_trials(), key=lambda t: t.number)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 4 and not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    killed = [t for t in trials if t.state.name == "FAIL"]
    assert [t.number for t in killed] == [1] and killed[0].user_attrs["killed"] is True
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].params == before[1].params
    assert retry[0].user_attrs["run_dir"] == "trials/0001"  # continued where the killed trial stopped
    # No finished trial was run again, and no epoch appears twice in the resumed trial's log.
    assert (tune_dir / "trials" / "0000" / "seeds" / "7" / "metrics.jsonl").read_text() == trial0_lines
    run_dirs = [t.user_attrs["run_dir"] for t in finished]
    assert len(set(run_dirs)) == 4
    epochs = [(r["phase"], r["epoch"]) for r in map(json.loads, marker.read_text().splitlines())]
    assert len(epochs) == len(set(epochs))
    # Pruning happened: a trial stopped before its last epoch.
    pruned = [t for t in finished if t.state.name == "PRUNED"]
    assert pruned, [(t.number, t.state.name, t.params) for t in trials]
    assert all(t.user_attrs["epochs"]["7"].get("recover", 0) < 3 for t in pruned)
    # TEST was never evaluated.
    assert not list(tune_dir.rglob("test.json"))

    # The outputs: trial table, best recipe (extends + changes), importances, summary.
    rows = (tune_dir / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + len(trials) and rows[0].startswith("trial,state,value")
    summary = json.loads((tune_dir / "summary.json").read_text())
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert summary["best"]["trial"] == best.number and summary["objective"]["split"] == "valid"
    assert summary["states"] == {"COMPLETE": 4 - len(pruned), "PRUNED": len(pruned), "FAIL": 1}
    best_recipe = load_recipe(tune_dir / "best.yaml")
    expected = load_recipe(RECIPE, [*BUDGET,
                                    *(f"{k}={json.dumps(v)}" for k, v in best.params.items())])
    assert best_recipe.resolved == {**expected.resolved, "name": "tiny_zero_fill_tuned"}
    imp = json.loads((tune_dir / "importances.json").read_text())
    assert imp["importances"] is None or set(imp["importances"]) == set(best.params)


def test_tune_never_evaluates_test(tmp_path, monkeypatch, capsys):
    """Every evaluation during tuning is on VALID: the TEST split the dataset loaded is never scored."""
    import imrec.runner
    import imrec.trainer.loop

    test_splits, evaluated = [], []
    real_prepare, real_evaluate = imrec.runner.prepare, imrec.trainer.evaluate

    def prepare(recipe, load=True):
        prepared = real_prepare(recipe, load)
        if load:
            test_splits.append(prepared.splits["test"])
        return prepared

    def evaluate(model, split, *args, **kwargs):
        evaluated.append(split)
        return real_evaluate(model, split, *args, **kwargs)

    monkeypatch.setattr(imrec.runner, "prepare", prepare)
    monkeypatch.setattr(imrec.trainer.loop, "evaluate", evaluate)  # what Trainer.fit calls
    code = main(["tune", str(RECIPE), *BUDGET, "train.phases.recover.epochs=1", "--space", str(SPACE),
                 "--trials", "2", "--dir", str(tmp_path / "t")])
    assert code == 0, capsys.readouterr().err
    assert len(test_splits) == 2 and len(evaluated) >= 2  # two trials, one VALID evaluation per epoch run
    assert not any(s is t for s in evaluated for t in test_splits)
    assert not list((tmp_path / "t").rglob("test.json"))


def test_space_errors_name_file_key_and_expectation(tmp_path):
    with pytest.raises(SpaceError) as exc:
        space_from_dict({"params": {"a.lr": {"type": "log-flaot", "low": 1, "high": 2},
                                    "a.b": {"type": "log-float", "low": 0.0, "high": 1.0},
                                    "a.c": {"type": "int", "low": 3, "high": 1},
                                    "a.d": {"type": "categorical", "choices": [[1, 2]]},
                                    "a.e": {"type": "float", "low": 0.1}},
                         "pruner": {"name": "hyperband"}, "sampler": 1}, "space.yaml")
    text = str(exc.value)
    for needle in ("space.yaml: params.a.lr.type: unknown type 'log-flaot'; did you mean 'log-float'?",
                   "params.a.b.low: found 0.0 (expected a positive number",
                   "params.a.c: low 3 is above high 1", "params.a.d.choices: found [1, 2]",
                   "params.a.e.high: missing (required)", "pruner.name: unknown pruner 'hyperband'",
                   "sampler: unknown key 'sampler'"):
        assert needle in text, text
    # Keys are checked against the recipe with every bound before anything runs.
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  train.phases.recover.optimizers.main.lrr: {type: float, low: 0.1, high: 0.2}\n"
                   "  model.fuser.layers: {type: categorical, choices: [1, two]}\n")
    with pytest.raises(SpaceError) as exc:
        check_recipe(load_space(bad), RECIPE, [])
    text = str(exc.value)
    assert f"{bad}: params.train.phases.recover.optimizers.main.lrr" in text and "lrr" in text
    assert f"{bad}: params.model.fuser.layers: with model.fuser.layers=\"two\"" in text
    # Through the CLI: a clear error, no traceback, nothing run.
    code = main(["tune", str(RECIPE), "--space", str(bad), "--trials", "1", "--dir", str(tmp_path / "t")])
    assert code == 2 and not (tmp_path / "t").exists()


@pytest.mark.slow
def test_workers_share_one_study(tmp_path):
    """--jobs 2: two processes draw trials from one SQLite study; the budget holds (up to one extra trial when
    both start one at the same moment) and no run directory is used twice."""
    out = subprocess.run([*_command(tmp_path / "t", 2)[:-4], "train.phases.recover.epochs=1", "--trials", "2",
                          "--jobs", "2", "--dir", str(tmp_path / "t")], capture_output=True, text=True, env=_env(),
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    trials = _study(tmp_path / "t").get_trials()
    assert 2 <= len(trials) <= 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)


def test_resuming_with_another_search_is_refused(tmp_path, capsys):
    tune_dir = str(tmp_path / "t")
    assert main(["tune", str(RECIPE), "--space", str(SPACE), "--trials", "0", "--dir", tune_dir]) == 0
    assert main(["tune", str(RECIPE), "train.phases.recover.epochs=2", "--space", str(SPACE), "--trials", "0",
                 "--dir", tune_dir]) == 2
    err = capsys.readouterr().err
    assert "study 'tiny_zero_fill'" in err and "is another search (its resolved recipe, overrides differ" in err
