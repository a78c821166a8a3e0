"""`imrec run` under torchrun (2 CPU processes, gloo): single-process semantics, one run directory, resume
after SIGKILL to exactly the uninterrupted results; and the rank shards of an epoch together are the
single-process batches."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imrec.loader import epoch_order

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
TINY = TESTS / "recipes" / "tiny_rohydr.yaml"
OVERRIDES = ["seeds=[5]", "device=cpu", "--quiet"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m", "imrec"]


def _env() -> dict[str, str]:
    return dict(os.environ, IMREC_LOAD_PLUGINS="", OMP_NUM_THREADS="1")


def _run(cmd: list[str]) -> Path:
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return Path(out.stdout.strip().splitlines()[-1])


def _test_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "seeds" / "5" / "test.json").read_text())["conditions"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One single-process and one 2-process run of the tiny recipe."""
    base = tmp_path_factory.mktemp("dist")
    single = _run([sys.executable, "-m", "imrec", "run", str(TINY), f"output_dir={base / 'single'}", *OVERRIDES])
    dist = _run([*TORCHRUN, "run", str(TINY), f"output_dir={base / 'dist'}", *OVERRIDES])
    return base, single, dist


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_two_processes_evaluate_the_same_conditions_and_metrics(runs):
    base, single, dist = runs
    a, b = _test_json(single), _test_json(dist)
    assert list(b) == list(a)  # same conditions, same order
    for cond in a:
        assert set(b[cond]) == set(a[cond]), cond
        assert all(math.isfinite(v) for v in b[cond].values()), (cond, b[cond])
    env = json.loads((dist / "environment.json").read_text())
    assert env["world_size"] == 2
    # Rank 0 alone writes: one run directory, one seed folder, the summary.
    assert [p.name for p in (base / "dist" / "tiny_rohydr").iterdir()] == [dist.name]
    assert json.loads((dist / "summary.json").read_text())["conditions_order"] == list(a)
    lines = [json.loads(l) for l in (dist / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    single_lines = [json.loads(l) for l in (single / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    assert [(l["phase"], l["epoch"]) for l in lines] == [(l["phase"], l["epoch"]) for l in single_lines]
    # Half the samples per process and batches of batch_size / 2: the same number of steps per epoch.
    assert [l["batches"] for l in lines] == [l["batches"] for l in single_lines]


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_killed_two_process_run_resumes_to_the_uninterrupted_results(runs):
    base, _, reference = runs
    out_dir = base / "killed"
    proc = subprocess.Popen([*TORCHRUN, "run", str(TINY), f"output_dir={out_dir}", *OVERRIDES], env=_env(), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # Kill launcher and workers (their own process group) once the first recovery epoch is recorded: mid-phase.
    deadline = time.time() + 120
    metrics = None
    try:
        while time.time() < deadline and proc.poll() is None:
            found = list(out_dir.glob("tiny_rohydr/*/seeds/5/metrics.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 3:
                metrics = found[0]
                break
            time.sleep(0.02)
        assert proc.poll() is None and metrics is not None, "the run finished (or failed) before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    run_dir = metrics.parents[2]
    assert (run_dir / "seeds" / "5" / "state.pt").exists() and not (run_dir / "seeds" / "5" / "test.json").exists()

    resumed = _run([*TORCHRUN, "run", "--resume", str(run_dir), "--quiet"])
    assert resumed == run_dir
    assert _test_json(resumed) == _test_json(reference)
    lines = [json.loads(l) for l in (run_dir / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(l) for l in (reference / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    assert [(l["phase"], l["epoch"], l["valid"]) for l in lines] == [(l["phase"], l["epoch"], l["valid"]) for l in ref]


@pytest.mark.parametrize("n", [96, 97])
def test_rank_shards_together_are_the_single_process_batches(n):
    batch, world = 32, 2
    whole = epoch_order(n, 3, 1, 4)
    shards = [epoch_order(n, 3, 1, 4, (r, world)) for r in range(world)]
    assert len(shards[0]) == len(shards[1]) == n // world
    per_rank = batch // world
    for b in range(math.ceil(len(shards[0]) / per_rank)):
        together = np.concatenate([s[b * per_rank : (b + 1) * per_rank] for s in shards])
        single = whole[b * batch : (b + 1) * batch][: len(together)]
        assert sorted(together.tolist()) == sorted(single.tolist())
