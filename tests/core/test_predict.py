"""imrec.load / Predictor.predict and `imrec predict`: the predictions `imrec eval` scores at MR 0, exactly;
missing modalities by omission, NaN rows or `available`; preprocessing applied; every bad input named."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import imrec
from imrec.cli import main
from imrec.config import ComponentConfig, build_component
from imrec.errors import ImrecError
from imrec.predict_io import read_npz
from imrec.runner import final_model, prepare, resume_recipe
from imrec.trainer import evaluate

TESTS = Path(__file__).resolve().parents[1]
TINY = TESTS / "recipes" / "tiny_rohydr.yaml"
FAST = ["train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1", "data.sizes=[48, 24, 30]",
        "data.variable_lengths=true", "train.eval_batch_size=16", "eval.conditions=[{name: random, rates: [0.0]}]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return imrec.run(TINY, [f"output_dir={tmp_path_factory.mktemp('runs')}", *FAST]).run_dir


def _test_split(run_dir):
    recipe = resume_recipe(run_dir)
    prepared = prepare(recipe)
    return recipe, prepared, prepared.splits["test"]


def _export(split, path, **extra):
    """A split as the plain npz format: features, lengths, ids; no labels needed."""
    arrays = {m: np.asarray(a) for m, a in split.modalities.items()}
    arrays.update({f"{m}__lengths": np.asarray(l) for m, l in split.lengths.items()})
    np.savez(path, ids=np.asarray(split.ids, dtype=str), **arrays, **extra)
    return path


def _eval_at_mr0(run_dir, recipe, prepared, seed):
    cond = build_component("protocol", ComponentConfig("protocols.random", {"rates": [0.0]}, "--rates")).conditions(
        list(prepared.spec.names))[0]
    model = final_model(run_dir, recipe, prepared, seed)
    return evaluate(model, prepared.splits["test"], cond, seed, recipe.train.eval_batch_size, prepared.metrics,
                    torch.device("cpu"))


def test_cli_predict_equals_what_eval_scores_at_mr0(run_dir, tmp_path, capsys):
    recipe, prepared, split = _test_split(run_dir)
    assert split.lengths, "the test must carry sequence lengths through the npz"
    data = _export(split, tmp_path / "test.npz", labels=np.asarray(split.labels))
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run_dir), "--data", str(data), "--out", str(out), "--threads", "1"]) == 0
    assert "threads: 1 (from --threads" in capsys.readouterr().err  # chosen and printed as `imrec run` does
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [str(i) for i in split.ids]  # ids carried through, one line per sample
    predicted = np.array([float(r["prediction"]) for r in rows], dtype=np.float32)
    reference = _eval_at_mr0(run_dir, recipe, prepared, recipe.seeds[0])
    np.testing.assert_array_equal(predicted, reference.predictions)  # exactly, not approximately
    assert all(r["missing"] == "" for r in rows)
    # and the numbers `imrec eval` prints at MR 0 are those of these predictions
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--split", "test", "--rates", "0", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["per_seed"][str(recipe.seeds[0])]["random/mr=0.00"]
    metrics = prepared.metrics[0](predicted, np.asarray(split.labels))
    assert metrics["mae"] == evaluated["mae"] and metrics["corr"] == evaluated["corr"]


def test_predict_jsonl_with_a_modality_missing_for_some_rows(run_dir, tmp_path):
    _, _, split = _test_split(run_dir)
    present = np.ones((len(split), 3), dtype=bool)
    present[::2, 0] = False  # text missing on every other row
    data = _export(split, tmp_path / "new.npz", present=present)
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(run_dir), "--data", str(data), "--out", str(out)]) == 0
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert len(lines) == len(split)
    assert [l["missing"] for l in lines[:2]] == [["text"], []]
    assert all(np.isfinite(l["prediction"]) for l in lines)


def test_missing_by_omission_nan_rows_or_available_is_the_same(run_dir):
    predictor = imrec.load(run_dir)
    _, _, split = _test_split(run_dir)
    feats = {m: np.asarray(a, dtype=np.float32)[:10] for m, a in split.modalities.items()}
    lengths = {m: np.asarray(l)[:10] for m, l in split.lengths.items()}
    avail = np.ones((10, 3), dtype=bool)
    avail[:, 1] = False  # audio missing everywhere
    avail[[2, 5], 0] = False  # text missing in rows 2 and 5
    by_mask = predictor.predict(feats, avail, lengths=lengths, return_recovered=True)
    nan_rows = {m: a.copy() for m, a in feats.items() if m != "audio"}
    nan_rows["text"][[2, 5]] = np.nan
    by_nan = predictor.predict(nan_rows, lengths=lengths, return_recovered=True)
    np.testing.assert_array_equal(by_mask.values, by_nan.values)
    np.testing.assert_array_equal(by_mask.available, avail)
    np.testing.assert_array_equal(by_nan.available, avail)
    assert set(by_nan.recovered) == {"text", "audio"}
    text = by_nan.recovered["text"]
    assert np.isfinite(text[[2, 5]]).all() and np.isnan(np.delete(text, [2, 5], axis=0)).all()
    assert np.isfinite(by_nan.recovered["audio"]).all()
    # complete rows: their prediction does not depend on the batch they are in, up to float rounding (matrix
    # kernels sum in another order for another batch size; the run's eval_batch_size is what makes it exact)
    complete = predictor.predict(feats, lengths=lengths)
    np.testing.assert_allclose(complete.values, predictor.predict(feats, lengths=lengths, batch_size=3).values,
                               rtol=1e-5, atol=1e-6)


def test_preprocessing_json_is_applied(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rng = np.random.default_rng(0)
    stats = {m: (rng.normal(size=d).astype(np.float32), rng.uniform(0.5, 2, size=d).astype(np.float32))
             for m, d in (("text", 12), ("audio", 5), ("vision", 7))}
    (copy / "preprocessing.json").write_text(json.dumps({"standardize": {"source": "train", "modalities": {
        m: {"mean": mean.tolist(), "std": std.tolist()} for m, (mean, std) in stats.items()}}}))
    _, _, split = _test_split(run_dir)
    raw = {m: np.asarray(a, dtype=np.float32)[:8] for m, a in split.modalities.items()}
    standardized = {m: (a - stats[m][0]) / stats[m][1] for m, a in raw.items()}
    with_stats, identity = imrec.load(copy), imrec.load(run_dir)
    np.testing.assert_array_equal(with_stats.predict(raw).values, identity.predict(standardized).values)
    (copy / "preprocessing.json").write_text(json.dumps({"standardize": None}))
    np.testing.assert_array_equal(imrec.load(copy).predict(raw).values, identity.predict(raw).values)
    (copy / "preprocessing.json").write_text("{}")
    with pytest.raises(ImrecError, match="preprocessing.json"):
        imrec.load(copy)
    (copy / "preprocessing.json").unlink()
    recipe = (copy / "recipe.yaml").read_text()
    (copy / "recipe.yaml").write_text(recipe.replace("\n  recovery_metrics:", "\n  per_rate: true\n  recovery_metrics:"))
    with pytest.raises(ImrecError, match="one model per missing rate"):
        imrec.load(copy)


def _bad_inputs():
    rng = np.random.default_rng(1)
    ok = {"text": rng.normal(size=(4, 6, 12)), "audio": rng.normal(size=(4, 6, 5))}
    inf = {k: v.copy() for k, v in ok.items()}
    inf["audio"][3, 2, 1] = np.inf
    partial_nan = {k: v.copy() for k, v in ok.items()}
    partial_nan["text"][1, 0, 0] = np.nan
    nothing = {"text": ok["text"].copy()}
    nothing["text"][2] = np.nan
    return [
        (dict(features={"txt": ok["text"]}), r"unknown modality 'txt'.*text, audio, vision"),
        (dict(features={"audio": ok["audio"][..., :4]}),
         r"features\['audio'\]: shape \(4, 6, 4\), expected \(N, 6, 5\)"),
        (dict(features={"audio": ok["audio"][:, :5]}), r"features\['audio'\]: shape \(4, 5, 5\).*6 steps"),
        (dict(features={"text": ok["text"], "audio": ok["audio"][:3]}), r"'audio'\] has 3 rows but .*'text'\] has 4"),
        (dict(features=inf), r"features\['audio'\]: row 3 has non-finite values"),
        (dict(features=partial_nan), r"features\['text'\]: row 1 has non-finite"),
        (dict(features=nothing), r"row 2 has no modality available"),
        (dict(features=ok, available=np.ones((4, 2), bool)), r"available: expected an \(N, K\) = \(4, 3\)"),
        (dict(features=ok, available=np.ones((4, 3), bool)), r"marks 'vision' available but no 'vision' features"),
        (dict(features=ok, lengths={"text": [1, 2, 3, 9]}), r"lengths\['text'\]: expected 4 whole numbers in \[0, 6\]"),
        (dict(features=ok, ids=["a", "b", "c", "d"], available=np.array([[1, 1, 0]] * 3 + [[0, 0, 0]])),
         r"row 3 \(id 'd'\) has no modality available"),
        (dict(features={}), r"no modality given"),
    ]


@pytest.mark.parametrize("kwargs, message", _bad_inputs())
def test_bad_input_is_a_clear_error(run_dir, kwargs, message):
    with pytest.raises(ImrecError, match=message):
        imrec.load(run_dir).predict(**kwargs)


def test_cli_predict_bad_files_exit_nonzero_with_the_file_named(run_dir, tmp_path, capsys):
    np.savez(tmp_path / "odd.npz", text=np.zeros((2, 6, 12)), colour=np.zeros(2))
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "odd.npz")]) != 0
    assert "odd.npz: array 'colour' is not one of this run's modalities" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "odd.npz"), "--out", "x.txt"]) != 0
    assert "must end in .csv or .jsonl" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "none.npz")]) != 0
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", str(run_dir), "--data", str(tmp_path / "odd.npz"), "--seed", "99"]) != 0
    assert "seed 99 is not one of the run's seeds" in capsys.readouterr().err


def test_classification_probabilities_and_labels(tmp_path):
    result = imrec.run(TESTS / "recipes" / "tiny_zero_fill.yaml", [
        f"output_dir={tmp_path}", "train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1",
        "data.sizes=[48, 24, 24]", "data.task=classification", "data.num_classes=3", "head=rohydr.classification",
        "train.select={metric: loss, mode: min}", "eval.conditions=[{name: random, rates: [0.0]}]"])
    predictor = result.load()
    assert predictor.task == "classification"
    feats = {"text": np.random.default_rng(0).normal(size=(6, 6, 12))}
    out = predictor.predict(feats)
    assert out.probabilities.shape == (6, 3) and np.allclose(out.probabilities.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(out.labels, out.probabilities.argmax(axis=1))
    assert out.records()[0]["missing"] == ["audio", "vision"]
    assert result.per_seed[7]["random/mr=0.00"]["acc"] == result.mean("random/mr=0.00", "acc")


def test_standardised_run_predicts_raw_features_as_eval_scores_at_mr0(tmp_path, capsys):
    """A run with standardize: train (statistics from TRAIN in preprocessing.json): `imrec predict` on the raw
    TEST file, with really-missing entries (`present`) and padded sequences, gives eval's MR-0 predictions."""
    from imrec.config import load_recipe

    synthetic = load_recipe(TINY, ["data.sizes=[48, 24, 30]", "data.variable_lengths=true"])
    splits = build_component("dataset", synthetic.data).load()
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name, split in splits.items():
        present = rng.random((len(split), 3)) > 0.2
        present[:, 0] = True  # every row keeps text
        # features far from unit scale, so standardisation changes what the model sees
        raw = {m: np.asarray(a) * 40.0 + 7.0 for m, a in split.modalities.items()}
        np.savez(folder / f"{name}.npz", labels=np.asarray(split.labels), ids=np.asarray(split.ids, dtype=str),
                 present=present, **raw, **{f"{m}__lengths": np.asarray(l) for m, l in split.lengths.items()})
    result = imrec.run(TESTS / "recipes" / "tiny_zero_fill.yaml", [
        f"output_dir={tmp_path / 'runs'}", "train.phases.pretrain.epochs=1", "train.phases.recover.epochs=1",
        "train.eval_batch_size=16", f"data={{name: npz, folder: '{folder}', standardize: train}}",
        "eval.conditions=[{name: random, rates: [0.0]}]"])
    stats = json.loads((result.run_dir / "preprocessing.json").read_text())["standardize"]
    assert abs(stats["modalities"]["text"]["mean"][0]) > 1.0  # really transformed
    out = tmp_path / "pred.csv"
    assert main(["predict", str(result.run_dir), "--data", str(folder / "test.npz"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    recipe, prepared, split = _test_split(result.run_dir)
    reference = _eval_at_mr0(result.run_dir, recipe, prepared, recipe.seeds[0])
    assert [r["id"] for r in rows] == reference.ids
    np.testing.assert_array_equal(np.array([float(r["prediction"]) for r in rows], dtype=np.float32),
                                  reference.predictions)
    assert any(r["missing"] for r in rows)
    # without the statistics the same file gives other predictions: the test would notice a skipped transform
    (result.run_dir / "preprocessing.json").write_text('{"standardize": null}')
    identity = imrec.load(result.run_dir)
    unscaled = identity.predict(**read_npz(folder / "test.npz", identity))
    assert not np.array_equal(unscaled.values, reference.predictions)
