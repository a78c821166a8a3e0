"""Experiment tracking (hook register_loggers): TensorBoard and MLflow hold what metrics.jsonl and test.json hold,
read back with their own readers; a third-party logger gets every event; a missing extra is a clear error."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from imrec import hookimpl, plugins
from imrec.cli import main
from imrec.config import load_recipe
from imrec.errors import ImrecError
from imrec.runner import run_recipe
from imrec.tracking import NO_LOGGERS, build_loggers
from imrec_metrics.params import PARTS, metric_key

TESTS = Path(__file__).resolve().parents[1]
TINY = TESTS / "recipes" / "tiny_zero_fill.yaml"
FAST = ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=2", "data.sizes=[48, 24, 24]",
        "eval.conditions=[{name: random, rates: [0.0, 0.5]}]",
        "train.phases.recover.optimizers.main.scheduler={name: StepLR, step_size: 1, gamma: 0.5}"]  # lr logged too


def _key(*parts):
    return metric_key(*parts)


def _lines(run_dir, seed):
    return [json.loads(l) for l in (run_dir / "seeds" / str(seed) / "metrics.jsonl").read_text().splitlines()]


def _steps(run_dir, seed):
    """(run-wide step, record) per metrics.jsonl line: phases one after the other at their full epochs."""
    offsets = {"pretrain": 0, "recover": 1}
    return [(offsets[r["phase"]] + r["epoch"], r) for r in _lines(run_dir, seed)]


def _run_cli(tmp_path, capsys, *extra):
    assert main(["run", str(TINY), f"output_dir={tmp_path / 'runs'}", *FAST, "--quiet", *extra]) == 0
    return Path(capsys.readouterr().out.strip().splitlines()[-1])


def test_tensorboard_event_files_hold_metrics_jsonl_and_test_json(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = _run_cli(tmp_path, capsys, "--log", "tensorboard")
    acc = EventAccumulator(str(run_dir / "tensorboard" / "seed-7"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    lines = _steps(run_dir, 7)
    assert len(lines) == 3 and lines[-1][1]["lr"] == {"main": 0.001}
    for step, record in lines:
        for part in PARTS:
            for name, value in record.get(part, {}).items():
                points = {e.step: e.value for e in acc.Scalars(_key(part, name))}
                assert points[step] == np.float32(value), (part, name, step)  # TensorBoard stores float32
    test = json.loads((run_dir / "seeds" / "7" / "test.json").read_text())["conditions"]
    for cond, metrics in test.items():
        for name, value in metrics.items():
            assert _key("test", cond, name) in tags
            assert acc.Scalars(_key("test", cond, name))[0].value == np.float32(value)
    recipe_text = acc.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "tiny_zero_fill" in recipe_text and "batch_size: 32" in recipe_text


def test_mlflow_runs_hold_recipe_metrics_and_run_directory(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    uri = (tmp_path / "mlruns").as_uri()
    run_dir = _run_cli(tmp_path, capsys, "seeds=[7,8]", f"log=[{{name: mlflow, tracking_uri: '{uri}'}}]")
    ids = json.loads((run_dir / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(ids["run_id"])
    assert parent.info.status == "FINISHED" and parent.info.run_name == run_dir.name
    assert client.get_experiment(parent.info.experiment_id).name == "tiny_zero_fill"
    params = parent.data.params
    assert params["train.phases.1.epochs"] == "2" and params["model.head.name"] == "rohydr.regression"
    assert params["seeds.1"] == "8" and params["data.sizes.0"] == "48"
    summary = json.loads((run_dir / "summary.json").read_text())
    for cond, metrics in summary["conditions"].items():
        for name, stats in metrics.items():
            if stats["mean"] is not None:
                assert parent.data.metrics[_key("test", cond, name)] == stats["mean"]
            if stats["std"] is not None:
                assert parent.data.metrics[_key("test_std", cond, name)] == stats["std"]
    for seed in (7, 8):
        child = client.get_run(ids["seeds"][str(seed)])
        assert child.data.tags["mlflow.parentRunId"] == ids["run_id"] and child.data.params["seed"] == str(seed)
        for step, record in _steps(run_dir, seed):
            for part in PARTS:
                for name, value in record.get(part, {}).items():
                    history = client.get_metric_history(child.info.run_id, _key(part, name))
                    assert [m.value for m in history if m.step == step] == [value], (seed, part, name, step)
        test = json.loads((run_dir / "seeds" / str(seed) / "test.json").read_text())["conditions"]
        for cond, metrics in test.items():
            for name, value in metrics.items():
                assert child.data.metrics[_key("test", cond, name)] == value
    artifacts = {f.path for f in client.list_artifacts(ids["run_id"], "run")}
    assert {"run/recipe.yaml", "run/summary.json", "run/seeds"} <= artifacts
    seed_files = {f.path for f in client.list_artifacts(ids["run_id"], "run/seeds/7")}
    assert {"run/seeds/7/metrics.jsonl", "run/seeds/7/test.json", "run/seeds/7/best.pt"} <= seed_files
    assert "run/.lock" not in artifacts


def test_a_third_party_logger_gets_every_event_through_the_hook(tmp_path):
    events = []

    class Recorder:
        """Records what the runner sends."""

        def __init__(self, tag: str = "x"):
            self.tag = tag

        def start(self, run_dir, recipe, resumed):
            events.append(("start", recipe["name"], resumed))

        def log_epoch(self, seed, step, record):
            events.append(("epoch", seed, step, record["phase"], record["epoch"]))

        def log_test(self, seed, conditions):
            events.append(("test", seed, sorted(conditions)))

        def finish(self, summary, status):
            events.append(("finish", status, summary["seeds"]))

    plugin = types.ModuleType("recorder_plugin")

    @hookimpl
    def register_loggers(register):
        register("third.recorder", Recorder)

    plugin.register_loggers = register_loggers
    plugins.register_plugin(plugin, name="recorder")
    recipe = load_recipe(TINY, [f"output_dir={tmp_path}", *FAST, "log=[{name: recorder, tag: y}]"])
    assert [c.name for c in recipe.log] == ["third.recorder"]
    run_recipe(recipe)
    assert events == [("start", "tiny_zero_fill", False), ("epoch", 7, 0, "pretrain", 0),
                      ("epoch", 7, 1, "recover", 0), ("epoch", 7, 2, "recover", 1),
                      ("test", 7, ["random/mr=0.00", "random/mr=0.50"]), ("finish", "FINISHED", [7])]


def test_a_per_rate_run_logs_each_seeds_test_metrics_only(tmp_path):
    events = []

    class Recorder:
        """Records what the runner sends."""

        def start(self, run_dir, recipe, resumed):
            events.append("start")

        def log_epoch(self, seed, step, record):
            events.append("epoch")

        def log_test(self, seed, conditions):
            events.append(("test", seed, sorted(conditions)))

        def finish(self, summary, status):
            events.append(status)

    plugin = types.ModuleType("recorder_plugin")

    @hookimpl
    def register_loggers(register):
        register("third.recorder", Recorder)

    plugin.register_loggers = register_loggers
    plugins.register_plugin(plugin, name="recorder")
    run_recipe(load_recipe(TINY, [f"output_dir={tmp_path}", *FAST, "train.phases.recover.epochs=1",
                                  "eval.per_rate=true", "log=[recorder]"]))
    assert events == ["start", ("test", 7, ["random/mr=0.00", "random/mr=0.50"]), "FINISHED"]


def test_log_is_validated_and_off_by_default(tmp_path):
    recipe = load_recipe(TINY)
    assert recipe.log == [] and "log" not in recipe.resolved
    assert build_loggers(load_recipe(TINY, ["log=[tensorboard]"]), enabled=False) is NO_LOGGERS  # rank > 0
    with pytest.raises(ImrecError, match=r"log\.0\.name.*nosuch"):
        load_recipe(TINY, ["log=[nosuch]"])
    with pytest.raises(ImrecError, match="listed twice"):
        load_recipe(TINY, ["log=[tensorboard, log.tensorboard]"])
    with pytest.raises(ImrecError, match="log"):
        load_recipe(TINY, ["log=tensorboard"])


@pytest.mark.parametrize("module, extra", [("torch.utils.tensorboard", "tensorboard"), ("mlflow", "mlflow")])
def test_missing_extra_names_the_install_command(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    recipe = load_recipe(TINY, [f"log=[{extra}]"])
    with pytest.raises(ImrecError, match=rf"pip install 'imrec\[{extra}\]'"):
        build_loggers(recipe)


def test_resumed_run_continues_the_same_trackers(tmp_path, monkeypatch):
    """Interrupted after an epoch was logged but before its state was saved (as a kill between the two), then
    resumed: TensorBoard holds each step once, MLflow the same runs, and both end with metrics.jsonl's values."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import imrec

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")

    class Interrupt:
        """Stops the run once, right after the first recovery epoch is logged."""

        fired = False

        def start(self, run_dir, recipe, resumed):
            pass

        def log_epoch(self, seed, step, record):
            if record["phase"] == "recover" and not Interrupt.fired:
                Interrupt.fired = True
                raise KeyboardInterrupt

        def log_test(self, seed, conditions):
            pass

        def finish(self, summary, status):
            pass

    plugin = types.ModuleType("interrupt_plugin")

    @hookimpl
    def register_loggers(register):
        register("third.interrupt", Interrupt)

    plugin.register_loggers = register_loggers
    plugins.register_plugin(plugin, name="interrupt")
    uri = (tmp_path / "mlruns").as_uri()
    recipe = load_recipe(TINY, [f"output_dir={tmp_path / 'runs'}", *FAST,
                                f"log=[tensorboard, {{name: mlflow, tracking_uri: '{uri}'}}, interrupt]"])
    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe)
    run_dir = next((tmp_path / "runs" / "tiny_zero_fill").iterdir())
    first = json.loads((run_dir / "mlflow.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    assert client.get_run(first["run_id"]).info.status == "KILLED"
    imrec.run(resume=run_dir)
    assert json.loads((run_dir / "mlflow.json").read_text()) == first
    assert client.get_run(first["run_id"]).info.status == "FINISHED"
    child = first["seeds"]["7"]
    acc = EventAccumulator(str(run_dir / "tensorboard" / "seed-7"), size_guidance={"scalars": 0})
    acc.Reload()
    for step, record in _steps(run_dir, 7):
        for name, value in record["train"].items():
            points = [e for e in acc.Scalars(_key("train", name)) if e.step == step]
            assert [p.value for p in points] == [np.float32(value)], (name, step)  # once: the old one purged
            history = [m for m in client.get_metric_history(child, _key("train", name)) if m.step == step]
            assert history[-1].value == value
