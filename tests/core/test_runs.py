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
