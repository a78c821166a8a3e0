"""A run killed with SIGKILL mid-training resumes to exactly the results of an uninterrupted run."""

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
TINY = TESTS / "recipes" / "tiny_rohydr.yaml"
# A learning-rate schedule too, so resuming must restore the scheduler's state (a reset would change the lr).
OVERRIDES = ["train.phases.recover.epochs=6", "seeds=[5]", "device=cpu",
             "train.phases.recover.optimizers.main.scheduler={name: StepLR, step_size: 1, gamma: 0.7}"]


def _env():
    return dict(os.environ, IMREC_LOAD_PLUGINS="", OMP_NUM_THREADS="1")


def _run(*args):
    out = subprocess.run([sys.executable, "-m", "imrec", *args], capture_output=True, text=True, env=_env(),
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


def _results(run_dir: Path):
    return json.loads((run_dir / "seeds" / "5" / "test.json").read_text())["conditions"]


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    reference = _run("run", str(TINY), f"output_dir={tmp_path / 'a'}", "--quiet", *OVERRIDES)

    out_dir = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "imrec", "run", str(TINY), f"output_dir={out_dir}", "--quiet",
                             *OVERRIDES], env=_env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Kill as soon as the second epoch of the recovery phase has been recorded: mid-phase, mid-run.
    deadline = time.time() + 240
    metrics = None
    while time.time() < deadline and proc.poll() is None:
        found = list(out_dir.glob("tiny_rohydr/*/seeds/5/metrics.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 4:
            metrics = found[0]
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = metrics.parents[2]
    assert not (run_dir / "seeds" / "5" / "test.json").exists()
    assert (run_dir / "seeds" / "5" / "state.pt").exists()

    # The killed process left its lock behind (it names a dead pid). While a live process holds the directory a
    # resume is refused and changes nothing; the killed run's own stale lock is simply taken over.
    stale = (run_dir / ".lock").read_text()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": platform.node(), "started": "t"}))
        busy = subprocess.run([sys.executable, "-m", "imrec", "run", "--resume", str(run_dir), "--quiet"],
                              capture_output=True, text=True, env=_env(), cwd=REPO, timeout=120)
        assert busy.returncode != 0 and f"being run by process {sleeper.pid}" in busy.stderr
        assert "Traceback" not in busy.stderr and not (run_dir / "seeds" / "5" / "test.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    (run_dir / ".lock").write_text(stale)

    resumed = _run("run", "--resume", str(run_dir), "--quiet")
    assert resumed == run_dir and not (run_dir / ".lock").exists()
    assert _results(resumed) == _results(reference)
    lines = [json.loads(l) for l in (run_dir / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    assert [(l["phase"], l["epoch"]) for l in lines] == [("pretrain", 0), ("pretrain", 1)] + [
        ("recover", e) for e in range(6)]
    ref_lines = [json.loads(l) for l in (reference / "seeds" / "5" / "metrics.jsonl").read_text().splitlines()]
    assert [l["valid"] for l in lines] == [l["valid"] for l in ref_lines]
    lrs = [l["lr"]["main"] for l in lines if l["phase"] == "recover"]
    assert lrs == [l["lr"]["main"] for l in ref_lines if l["phase"] == "recover"]
    assert len(lrs) == 6 and all(abs(a - 2.0e-3 * 0.7**e) < 1e-12 for e, a in enumerate(lrs))

    # A finished run resumed again recomputes nothing and keeps its results.
    again = _run("run", "--resume", str(run_dir), "--quiet")
    assert _results(again) == _results(reference)


def test_resume_rejects_a_folder_that_is_not_a_run(tmp_path):
    out = subprocess.run([sys.executable, "-m", "imrec", "run", "--resume", str(tmp_path)], capture_output=True,
                         text=True, env=_env(), cwd=REPO, timeout=120)
    assert out.returncode == 2 and "not an imrec run directory" in out.stderr and "Traceback" not in out.stderr
