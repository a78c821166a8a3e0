"""imrec bench: definitions, the cell matrix (resume, stale cells, shards, worker processes), tidy records, CLI."""

import json
from pathlib import Path

import pytest
import yaml

from imrec.bench import records as rec
from imrec.bench.definition import DefinitionError, definition_from_dict, load_definition
from imrec.bench.matrix import definition_records, matrix, parse_shard, run_cell, run_matrix
from imrec.cli import main
from imrec.errors import ImrecError

TESTS = Path(__file__).resolve().parents[1]
TINY = TESTS / "bench" / "tiny.yaml"


def _no_run_dir(records):
    return [{k: v for k, v in r.items() if k != "run_dir"} for r in records]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The tiny board (2 methods × 2 seeds) run once with two worker processes."""
    work = tmp_path_factory.mktemp("bench") / "work"
    defn = load_definition(TINY)
    cells = matrix([defn], work_dir=work)
    lines = []
    results = run_matrix(cells, jobs=2, log=lines.append)
    assert [r.status for r in results] == ["ran"] * 4, "\n".join(lines)
    return defn, work, cells


# ------------------------------------------------------------------------------------------------ definitions
def test_definition_collects_every_problem(tmp_path):
    data = {
        "board": "bad board",
        "seeds": [1, 1],
        "overrides": ["seeds=[3]"],
        "methods": [{"name": "A", "recipe": "../recipes/tiny_zero_fill.yaml"},
                    {"name": "B", "recipe": "nowhere.yaml"}, {"name": "A", "recipe": "../recipes/tiny_zero_fill.yaml"}],
        "reference": "Z",
        "metrics": ["maee"],
        "outptu": {},
    }
    with pytest.raises(DefinitionError) as exc:
        definition_from_dict(data, "def.yaml", TESTS / "bench")
    text = str(exc.value)
    for needle in ["board", "a seed is listed twice", "the bench sets 'seeds' itself", "no such recipe file",
                   "method 'A' is listed twice", "'Z' is not one of the methods", "unknown metric 'maee'",
                   "did you mean 'mae'", "unknown key 'outptu'", "did you mean 'output'"]:
        assert needle in text, needle
    assert text.startswith("8 problems in bench definition")


def test_definition_checks_each_recipe_with_the_overrides():
    data = {"board": "b", "seeds": [1], "metrics": ["mae"], "reference": "A",
            "overrides": ["train.phases.nope.epochs=1"],
            "methods": [{"name": "A", "recipe": "../recipes/tiny_zero_fill.yaml"}]}
    with pytest.raises(DefinitionError, match=r"methods\.A: its recipe is invalid.*nope"):
        definition_from_dict(data, "def.yaml", TESTS / "bench")
    with pytest.raises(DefinitionError, match="cannot read the file"):
        load_definition(TESTS / "bench" / "absent.yaml")


def test_recovery_metrics_can_be_tabled():
    # evaluate() scores recovered tokens itself (eval.recovery_metrics): a board may table them, lower MSE and
    # higher cosine being better.
    from imrec.bench.definition import known_metrics

    known = known_metrics()
    assert known["recovery_mse"] is False and known["recovery_cos"] is True
    data = {"board": "b", "seeds": [1], "metrics": ["mae", "recovery_mse", "recovery_cos"], "reference": "A",
            "methods": [{"name": "A", "recipe": "../recipes/tiny_zero_fill.yaml"}]}
    assert definition_from_dict(data, "def.yaml", TESTS / "bench").metrics == ("mae", "recovery_mse", "recovery_cos")


def test_shard_parsing_and_partition():
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ImrecError):
            parse_shard(bad)
    defn = load_definition(TINY)
    every = [c.index for c in matrix([defn])]
    parts = [[c.index for c in matrix([defn], shard=(i, 3))] for i in range(3)]
    assert sorted(sum(parts, [])) == every == [0, 1, 2, 3]
    assert all(i % 3 == k for k, part in enumerate(parts) for i in part)
    assert [c.method.name for c in matrix([defn], only=["fast_lr"], seeds=[8])] == ["fast_lr"]
    with pytest.raises(ImrecError, match="did you mean 'zero_fill'"):
        matrix([defn], only=["zero_fil"])


# ------------------------------------------------------------------------------------------------ running
@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_finished_cells_are_not_recomputed(ran, monkeypatch):
    defn, work, cells = ran
    tests = [c.run_dir / "seeds" / str(c.seed) / "test.json" for c in cells]
    before = [p.stat().st_mtime_ns for p in tests]

    def boom(*args, **kwargs):
        raise AssertionError("run_recipe called for a finished cell")

    monkeypatch.setattr("imrec.runner.run_recipe", boom)
    results = run_matrix(matrix([defn], work_dir=work), jobs=1, log=lambda line: None)
    assert [r.status for r in results] == ["done"] * 4
    assert [p.stat().st_mtime_ns for p in tests] == before


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_an_interrupted_cell_resumes_in_its_own_directory(ran, tmp_path, monkeypatch):
    defn, work, cells = ran
    cell = matrix([defn], work_dir=tmp_path)[0]
    # A started cell: its recipe written, its seed not finished (as after a kill).
    calls = []
    monkeypatch.setattr("imrec.runner.run_recipe", lambda recipe, run_dir, reporter=None: calls.append(run_dir))
    assert run_cell(cell).status == "ran"
    assert calls == [cell.run_dir] and (cell.run_dir / "recipe.yaml").exists()
    assert run_cell(cell).status == "ran"  # still unfinished: resumed in the same directory again
    assert calls == [cell.run_dir, cell.run_dir]
    assert json.loads((cell.run_dir / "overrides.json").read_text())[-2] == f"seeds=[{cell.seed}]"


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_a_changed_definition_never_reuses_a_cell(ran, monkeypatch):
    defn, work, _ = ran
    data = yaml.safe_load(TINY.read_text())
    data["overrides"][0] = "train.phases.pretrain.epochs=2"  # the compute budget changed since the cells ran
    changed = definition_from_dict(data, str(TINY), TINY.parent)
    monkeypatch.setattr("imrec.runner.run_recipe", lambda *a, **k: pytest.fail("must not run"))
    results = run_matrix(matrix([changed], work_dir=work), jobs=1, log=lambda line: None)
    assert [r.status for r in results] == ["failed"] * 4
    assert "different recipe (train.phases" in results[0].error and "epochs" in results[0].error


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_a_shard_run_alone_gives_the_same_records(ran, tmp_path):
    defn, work, _ = ran
    whole, missing = definition_records(defn, work)
    assert not missing and len(whole) == 2 * 2 * 10 * 2  # methods × seeds × (3 random + 7 fixed) × metrics
    # Shard 1 of 2 run again, alone, in one process (the fixture used two worker processes): same values,
    # because each cell depends on its seed alone; with shard 0's records they make the whole board.
    cells = matrix([defn], shard=(1, 2), work_dir=tmp_path)
    assert [c.index for c in cells] == [1, 3]
    assert all(r.status == "ran" for r in run_matrix(cells, jobs=1, log=lambda line: None))
    part1, _ = definition_records(defn, tmp_path, only=cells)
    part0, _ = definition_records(defn, work, only=matrix([defn], shard=(0, 2), work_dir=work))
    assert _no_run_dir(rec.merge(part0, part1)) == _no_run_dir(whole)


# ------------------------------------------------------------------------------------------------ records
@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_records_are_tidy_sorted_and_stable(ran, tmp_path):
    defn, work, cells = ran
    records, _ = definition_records(defn, work)
    first = records[0]
    assert list(first) == list(rec.FIELDS)
    assert first["board"] == "tiny" and first["recipe"] == "tiny_zero_fill" and first["dataset"] == "data.synthetic"
    assert first["protocol"] == "protocols.random" and first["run_dir"].endswith("fast_lr/seed-7")
    conds = [r["condition"] for r in records if r["method"] == "fast_lr" and r["seed"] == 7 and r["metric"] == "mae"]
    # Random conditions by rate, then fixed subsets by size, then name.
    assert conds == ["random/mr=0.00", "random/mr=0.30", "random/mr=0.60", "fixed/audio", "fixed/text",
                     "fixed/vision", "fixed/audio+vision", "fixed/text+audio", "fixed/text+vision",
                     "fixed/text+audio+vision"]
    test = json.loads((cells[0].run_dir / "seeds" / "7" / "test.json").read_text())
    mine = {r["condition"]: r["value"] for r in records
            if r["method"] == cells[0].method.name and r["seed"] == 7 and r["metric"] == "mae"}
    assert mine == {c: v["mae"] for c, v in test["conditions"].items()}
    path = tmp_path / "r.jsonl"
    rec.write_records(path, list(reversed(records)))
    text = path.read_text()
    assert text == rec.dumps(records) and text.count("\n") == len(records)
    assert [json.loads(line) for line in text.splitlines()] == records
    assert rec.read_records([path, path]) == records  # the same record twice is one record
    clash = dict(records[0], value=123.0)
    with pytest.raises(ImrecError, match="conflicting records"):
        rec.merge(records, [clash])


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_aggregate_an_ordinary_run_directory(ran, tmp_path):
    _, _, cells = ran
    out = rec.run_dir_records(cells[0].run_dir, board="adhoc")
    assert {r["method"] for r in out} == {"tiny_zero_fill"} and {r["seed"] for r in out} == {7}
    assert "loss" in {r["metric"] for r in out}  # every numeric metric without a filter
    with pytest.raises(ImrecError, match="not an imrec run directory"):
        rec.run_dir_records(tmp_path, board="adhoc")


# ------------------------------------------------------------------------------------------------ CLI
@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_cli_run_list_shards_merge_and_table(ran, tmp_path, capsys):
    defn, work, _ = ran
    assert main(["bench", "run", str(TINY), "--work-dir", str(work), "--list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("finished") == 4
    full = tmp_path / "full.jsonl"
    assert main(["bench", "run", str(TINY), "--work-dir", str(work), "--records", str(full), "--format", "csv",
                 "--out", str(tmp_path / "t.csv")]) == 0
    assert "best" in (tmp_path / "t.csv").read_text().splitlines()[0]
    shard_files = []
    for i in range(2):
        target = tmp_path / f"s{i}.jsonl"
        assert main(["bench", "run", str(TINY), "--work-dir", str(work), "--shard", f"{i}/2",
                     "--records", str(target)]) == 0
        shard_files.append(str(target))
    merged = tmp_path / "merged.jsonl"
    assert main(["bench", "merge", *shard_files, "--out", str(merged)]) == 0
    assert merged.read_bytes() == full.read_bytes()
    capsys.readouterr()
    assert main(["bench", "table", str(merged), "--definition", str(TINY), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "## tiny" in out and "± " in out and "n = 2 seeds" in out
    agg = tmp_path / "agg.jsonl"
    assert main(["bench", "aggregate", str(TINY), "--work-dir", str(work), "--out", str(agg)]) == 0
    assert agg.read_bytes() == full.read_bytes()
    assert main(["bench", "table", str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot read records" in capsys.readouterr().err


def _slow_definition(tmp_path):
    """The tiny board with a recover phase long enough to be interrupted mid-cell (no early stop)."""
    slow = yaml.safe_load(TINY.read_text())
    slow["overrides"] = [o for o in slow["overrides"] if "recover.epochs" not in o] + [
        "train.phases.recover.epochs=500", "train.phases.recover.early_stop=null"]
    slow["methods"] = [{**m, "recipe": str((TINY.parent / m["recipe"]).resolve())} for m in slow["methods"]]
    slow["output"] = {"work_dir": str(tmp_path / "work")}
    definition = tmp_path / "slow.yaml"
    definition.write_text(yaml.safe_dump(slow))
    return definition


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_workers_end_with_a_killed_bench_and_a_running_cell_is_not_run_twice(tmp_path):
    """SIGKILL the bench while its workers train: they exit instead of training on unseen as orphans, and while a
    cell's directory is held by a live process a second bench reports it as busy instead of writing into it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    definition = _slow_definition(tmp_path)
    env = dict(os.environ, IMREC_LOAD_PLUGINS="")
    bench = subprocess.Popen([sys.executable, "-m", "imrec", "bench", "run", str(definition), "--jobs", "2"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        locks = []
        while time.time() < deadline and len(locks) < 2:
            locks = sorted((tmp_path / "work").glob("*/seed-*/.lock"))
            time.sleep(0.1)
        assert len(locks) == 2, "two cells should be running"
        time.sleep(0.5)  # let each worker finish writing its lock
        pids = [json.loads(p.read_text())["pid"] for p in locks]

        # A second bench on the same work dir, while the cells run: those two are busy, not run twice.
        cells = matrix([load_definition(definition)])
        busy = [run_cell(c) for c in cells if c.run_dir in {p.parent for p in locks}]
        assert [r.status for r in busy] == ["failed", "failed"]
        assert all("is being run by process" in r.error for r in busy)
    finally:
        bench.send_signal(signal.SIGKILL)
        bench.wait()

    deadline = time.time() + 30
    alive = pids
    while time.time() < deadline and alive:
        alive = [p for p in pids if _alive(p)]
        time.sleep(0.2)
    assert not alive, f"orphaned bench workers still running: {alive}"


def _alive(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_ctrl_c_ends_the_bench_and_its_workers_without_leaks(tmp_path):
    """Ctrl-C (SIGINT to the whole process group) while two cells train: the bench exits 130 at once with one
    line, its workers end (a worker would otherwise survive its KeyboardInterrupt and train its cell on, and the
    bench wait for it), and no 'leaked semaphore' warning or traceback is printed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    definition = _slow_definition(tmp_path)
    env = dict(os.environ, IMREC_LOAD_PLUGINS="")
    bench = subprocess.Popen([sys.executable, "-m", "imrec", "bench", "run", str(definition), "--jobs", "2"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.time() + 120
        locks = []
        while time.time() < deadline and len(locks) < 2:
            locks = sorted((tmp_path / "work").glob("*/seed-*/.lock"))
            time.sleep(0.1)
        assert len(locks) == 2, "two cells should be running"
        time.sleep(0.5)
        pids = [json.loads(p.read_text())["pid"] for p in locks]
        os.killpg(bench.pid, signal.SIGINT)
        _, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 130, err
    assert "leaked semaphore" not in err and "Traceback" not in err, err
    assert "imrec: interrupted" in err
    assert not [p for p in pids if _alive(p)], "bench workers outlived the interrupt"
