"""imrec.threads: where the thread count comes from, a default that never oversubscribes, the busy warning."""

from pathlib import Path

import pytest

from imrec import threads
from imrec.errors import ImrecError


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: ``set(cores, load)`` fixes the physical cores and the cores other work uses."""
    for var in ("IMREC_THREADS", "OMP_NUM_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)

    def set_(cores, load):
        monkeypatch.setattr(threads, "physical_cores", lambda: cores)
        monkeypatch.setattr(threads, "busy_cores", lambda: load)

    return set_


def test_default_uses_the_free_physical_cores(machine):
    machine(8, 0.1)
    c = threads.resolve_threads()
    assert (c.threads, c.source, c.busy) == (8, "default", False) and c.warning() is None
    assert c.describe() == "threads: 8 (default; 8 physical cores, load 0.10)"
    machine(8, 3.2)  # three busy cores: five left
    c = threads.resolve_threads()
    assert c.threads == 5 and c.busy and "leave them room" in c.warning()
    machine(2, 1.9)  # a 2-core machine with two busy processes: one thread, never zero
    assert threads.resolve_threads().threads == 1


def test_default_divides_the_cores_among_imrec_processes(machine, monkeypatch):
    machine(8, 0.0)
    assert threads.resolve_threads(processes=4).threads == 2
    assert threads.resolve_threads(processes=16).threads == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # torchrun: two workers on this machine
    c = threads.resolve_threads()
    assert c.threads == 4 and c.processes == 2 and "/ 2 processes" in c.describe()
    assert threads.resolve_threads(default=1).threads == 1  # imrec bench: 1 per worker


def test_precedence_flag_env_recipe_omp(machine, monkeypatch):
    machine(4, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert (threads.resolve_threads().threads, threads.resolve_threads().source) == (3, "$OMP_NUM_THREADS")
    assert threads.resolve_threads(recipe=2).source == "recipe"
    monkeypatch.setenv("IMREC_THREADS", "6")
    assert threads.resolve_threads(recipe=2).threads == 6
    c = threads.resolve_threads(flag=1, recipe=2)
    assert (c.threads, c.source) == (1, "--threads")


def test_an_explicit_count_that_oversubscribes_busy_cores_is_warned_about(machine):
    machine(2, 1.5)
    assert "oversubscribe" in threads.resolve_threads(flag=2).warning()
    assert "oversubscribe" not in threads.resolve_threads(flag=1).warning()


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_bad_counts_are_specific_errors(machine, monkeypatch, bad):
    machine(2, 0.0)
    monkeypatch.setenv("IMREC_THREADS", bad)
    with pytest.raises(ImrecError, match=r"\$IMREC_THREADS: the number of threads must be a whole number ≥ 1"):
        threads.resolve_threads()


def test_apply_sets_torch_and_is_remembered(machine):
    import torch

    machine(2, 0.0)
    before = torch.get_num_threads()
    try:
        choice = threads.resolve_threads(flag=1)
        threads.apply_threads(choice)
        assert torch.get_num_threads() == 1 and threads.applied() == choice
        assert threads.applied().as_dict()["source"] == "--threads"
    finally:
        torch.set_num_threads(before)


def test_physical_cores_is_positive_and_at_most_the_cpus():
    import os

    assert 1 <= threads.physical_cores() <= (os.cpu_count() or 1)


def test_busy_cores_is_the_cpu_use_now_not_a_lagging_average(monkeypatch):
    # Two samples of /proc/stat's (idle, total) jiffies: 1 of 4 CPUs idle over the window → 3 cores busy; the
    # 1-minute load average (which would still show a job that just ended) is not consulted.
    samples = iter([(1000, 4000), (1100, 4400)])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert threads.busy_cores() == pytest.approx(3.0)


def test_busy_cores_falls_back_to_the_load_average_without_proc_stat(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.25, 0.5, 0.1))
    assert threads.busy_cores() == 1.25


def test_cpu_times_reads_proc_stat_on_linux():
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc/stat is Linux's")
    idle, total = threads._cpu_times()
    assert 0 <= idle <= total and total > 0


def test_the_python_api_chooses_threads_like_the_cli_and_restores_them(machine, monkeypatch, tmp_path):
    import torch

    import imrec.api
    import imrec.runner

    machine(2, 0.0)
    seen = {}

    def fake_run_recipe(recipe, run_dir, reporter):
        seen["threads"], seen["applied"] = torch.get_num_threads(), threads.applied()
        raise RuntimeError("stop here")  # the choice is what is tested, not training

    monkeypatch.setattr(imrec.runner, "run_recipe", fake_run_recipe)
    before = torch.get_num_threads()
    torch.set_num_threads(2 if before == 1 else 1)
    try:
        expected_after = torch.get_num_threads()
        with pytest.raises(RuntimeError, match="stop here"):
            imrec.api.run(Path(__file__).parents[2] / "recipes" / "quickstart.yaml", threads=3)
        assert seen["threads"] == 3 and seen["applied"].source == "--threads"
        assert torch.get_num_threads() == expected_after  # the caller's process is given back its count
    finally:
        torch.set_num_threads(before)
