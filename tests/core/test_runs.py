"""imrec.runs.run_lock: one process per run directory; locks of dead processes are taken over."""

import json
import platform
import subprocess
import sys

import pytest

from imrec.errors import ImrecError
from imrec.runs import LOCK_NAME, run_lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_holder_is_refused_and_the_lock_is_released(tmp_path):
    with run_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["host"] == platform.node() and isinstance(holder["pid"], int)
        with pytest.raises(ImrecError, match=r"is being run by process \d+ on this machine"):
            with run_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_NAME).exists()
    with run_lock(tmp_path):  # free again
        pass


def test_live_process_elsewhere_blocks(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": platform.node(), "started": "x"}))
        with pytest.raises(ImrecError, match=f"process {sleeper.pid}.*delete"):
            with run_lock(tmp_path):
                pass
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == sleeper.pid  # not removed
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("content", ["dead", "garbage"])
def test_stale_lock_is_taken_over(tmp_path, content):
    text = json.dumps({"pid": _dead_pid(), "host": platform.node()}) if content == "dead" else "{not json"
    (tmp_path / LOCK_NAME).write_text(text)
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != -1
    assert not (tmp_path / LOCK_NAME).exists()


def test_lock_from_another_host_is_not_guessed_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example", "started": "x"}))
    with pytest.raises(ImrecError, match="host 'elsewhere.example'"):
        with run_lock(tmp_path):
            pass


def test_source_commit_names_the_checkout_that_runs(monkeypatch):
    """imrec.runs.source_commit: the git commit of imrec's own checkout, "+dirty" with uncommitted changes to
    tracked files; None where git cannot tell (not a checkout, no git)."""
    from pathlib import Path

    import imrec
    from imrec.runs import source_commit

    package = Path(imrec.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True)
    if head.returncode != 0:
        assert source_commit() is None
    else:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=package,
                               capture_output=True, text=True).stdout.strip()
        assert source_commit() == head.stdout.strip() + ("+dirty" if dirty else "")

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert source_commit() is None
