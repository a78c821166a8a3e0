"""The trainer's per-epoch callback (``Trainer(on_epoch=…)``, used by ``imrec tune`` for pruning): one call per
epoch with the VALID selection metric as logged, after the resume state is saved, so an exception it raises
stops training at a point ``--resume`` continues from without losing or repeating an epoch."""

import json
from pathlib import Path

import pytest

from imrec.config import load_recipe
from imrec.distributed import Single
from imrec.progress import Reporter
from imrec.runner import prepare, train_seed
from imrec.runs import safe_torch_load

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_zero_fill.yaml"


class Stop(Exception):
    pass


def test_on_epoch_reports_valid_metric_and_stopping_resumes_cleanly(tmp_path):
    recipe = load_recipe(RECIPE, ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=3"])
    prepared = prepare(recipe)
    events = []

    def stop_after_recover_0(event):
        events.append(event)
        if event["phase"] == "recover" and event["epoch"] == 0:
            raise Stop

    with pytest.raises(Stop):
        train_seed(recipe, prepared, 7, tmp_path, prepared.device, Reporter(enabled=False), Single(),
                   on_epoch=stop_after_recover_0)
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(e["phase"], e["epoch"]) for e in events] == [(l["phase"], l["epoch"]) for l in lines] == [
        ("pretrain", 0), ("recover", 0)]
    for e, l in zip(events, lines):
        assert e["metric"] == "mae" and e["mode"] == "min" and e["value"] == l["valid"]["mae"]
        assert e["improved"] == l["selected"] and e["best"] == e["value"]
    state = safe_torch_load(tmp_path / "state.pt")
    assert (state["next_phase"], state["next_epoch"]) == (1, 1)

    # Continuing runs only the epochs that were not finished.
    rest = []
    train_seed(recipe, prepared, 7, tmp_path, prepared.device, Reporter(enabled=False), Single(),
               on_epoch=rest.append)
    assert [(e["phase"], e["epoch"]) for e in rest] == [("recover", 1), ("recover", 2)]
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(l["phase"], l["epoch"]) for l in lines] == [("pretrain", 0), ("recover", 0), ("recover", 1),
                                                         ("recover", 2)]
    assert rest[-1]["best"] == min(l["valid"]["mae"] for l in lines if l["phase"] == "recover")


def test_metrics_of_an_epoch_killed_before_any_state_are_not_kept(tmp_path):
    """A process killed after writing the first epoch's line but before its state: that line is dropped."""
    recipe = load_recipe(RECIPE, ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1"])
    prepared = prepare(recipe)
    (tmp_path / "metrics.jsonl").write_text('{"phase": "pretrain", "epoch": 0}\n')
    train_seed(recipe, prepared, 7, tmp_path, prepared.device, Reporter(enabled=False), Single())
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(l["phase"], l["epoch"]) for l in lines] == [("pretrain", 0), ("recover", 0)] and "valid" in lines[0]
