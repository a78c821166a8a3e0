"""The plugin tutorial works as written: install the example package, see its component, run a recipe with it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "imrec-avgfill"


@pytest.mark.slow  # trains through the CLI / in subprocesses: `-m "not slow"` skips it
def test_tutorial_example_installs_and_runs(tmp_path):
    target = tmp_path / "site"
    # The tutorial says `pip install -e .`; here the same package goes to a private folder so the test leaves the
    # environment untouched (same entry-point metadata, same discovery path).
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(EXAMPLE)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = dict(os.environ, PYTHONPATH=str(target), IMREC_LOAD_PLUGINS="avgfill")

    def imrec(*args):
        return subprocess.run([sys.executable, "-m", "imrec", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    plugins = imrec("plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    assert '"avgfill"' in plugins.stdout and "avgfill.mean" in plugins.stdout
    listed = imrec("list", "recoverer")
    assert "avgfill.mean" in listed.stdout
    run = imrec("run", str(EXAMPLE / "recipe.yaml"), f"output_dir={tmp_path / 'runs'}", "--quiet")
    assert run.returncode == 0, run.stderr
    run_dir = Path(run.stdout.strip().splitlines()[-1])
    assert (run_dir / "summary.json").exists()
    # swapping it into a shipped recipe by name, as the tutorial shows
    swapped = imrec("run", str(REPO / "tests" / "recipes" / "tiny_rohydr.yaml"), "--dry-run", "recoverer=avgfill.mean",
                    "~train.phases.recover.steps.unimodal")
    assert swapped.returncode == 0, swapped.stderr
    assert "avgfill.mean" in swapped.stdout
    # without the environment variable allowing it, tests' setting keeps third parties out
    env["IMREC_LOAD_PLUGINS"] = ""
    assert "avgfill.mean" not in imrec("list", "recoverer").stdout
