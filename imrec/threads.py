"""How many CPU threads torch uses: chosen once per process, applied, printed and recorded in the run.

Order of precedence: ``--threads N`` on the command line, then ``$IMREC_THREADS``, then the recipe's
``threads:``, then ``$OMP_NUM_THREADS`` (a user who set it meant it), then the default.

The default never oversubscribes: the physical cores this process may use, divided among the processes imrec
itself runs side by side (torchrun's ``LOCAL_WORLD_SIZE``; ``imrec bench`` instead gives each worker 1 thread so
that its results do not depend on ``--jobs``), and no more than the cores other work leaves free, measured as the
machine's CPU use over a quarter of a second (``/proc/stat``; the 1-minute load average where there is none). The
load average alone lags by minutes: right after one job ends it still says "busy", and a second job started
then ran on 1 thread, 22 % slower than on 2 (benchmarks/threads.py on an idle 2-core machine). torch's own
default (every core, whatever else runs) made a training epoch 10–20× slower on a 2-core machine with one other
busy process, because OpenMP threads spin waiting for a core that is not theirs.

This module does not import torch until :func:`apply_threads`, so commands that never train stay fast.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

ENV_VAR = "IMREC_THREADS"
# Other work using at least this many cores counts as "the cores are busy" (warn, leave room).
BUSY_LOAD = 0.75
# How long the CPU use of other processes is sampled before choosing (this process sleeps meanwhile).
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count chosen, where it came from, and what the default was based on."""

    threads: int
    source: str  # "--threads", "$IMREC_THREADS", "recipe", "$OMP_NUM_THREADS" or "default"
    cores: int  # physical cores this process may use
    processes: int  # imrec processes sharing those cores (torchrun workers on this machine)
    load: float | None  # cores busy with other work when chosen (see busy_cores; None where the OS says nothing)

    @property
    def busy(self) -> bool:
        return self.load is not None and self.load >= BUSY_LOAD

    def describe(self) -> str:
        """One line for the start of a run, e.g. ``threads: 2 (default: 2 physical cores, load 0.10)``."""
        basis = f"{self.cores} physical core{'s' if self.cores != 1 else ''}"
        if self.processes > 1:
            basis += f" / {self.processes} processes"
        if self.load is not None:
            basis += f", load {self.load:.2f}"
        how = "default" if self.source == "default" else f"from {self.source}"
        return f"threads: {self.threads} ({how}; {basis})"

    def warning(self) -> str | None:
        """A warning when other processes use the cores, else None."""
        if not self.busy:
            return None
        free = self.cores - self.load  # type: ignore[operator]
        text = (f"warning: other processes are using {self.load:.2f} of the {self.cores} cores; timings will be "
                f"slower than on an idle machine")
        if self.source != "default" and self.threads * self.processes > max(free, 1.0) + 0.5:
            text += (f", and {self.threads} thread(s) per process oversubscribe the {max(free, 0):.1f} free "
                     f"core(s) (OpenMP threads then wait on each other: often several times slower)")
        elif self.source == "default":
            text += f"; using {self.threads} thread(s) to leave them room (--threads N to choose)"
        return text

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "busy": self.busy}


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return set(range(os.cpu_count() or 1))


def _cgroup_limit() -> int | None:
    """Whole CPUs allowed by a cgroup v2 quota (containers), or None without one."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def physical_cores() -> int:
    """Physical cores (not hyper-threads) among the CPUs this process may run on, within any cgroup quota."""
    cpus = _affinity()
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(cpu)))  # no topology (not Linux): count logical CPUs
    n = len(cores) or 1
    limit = _cgroup_limit()
    return min(n, limit) if limit else n


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from ``/proc/stat`` (Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal (guest is in user)
    return values[3] + (values[4] if len(values) > 4 else 0), sum(values)


def busy_cores() -> float | None:
    """CPUs busy with other work right now: the machine's CPU use over ``SAMPLE_SECONDS`` while this process
    sleeps, times its CPU count; where ``/proc/stat`` is missing, the 1-minute load average."""
    import time

    first = _cpu_times()
    if first is not None:
        time.sleep(SAMPLE_SECONDS)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            idle = (second[0] - first[0]) / (second[1] - first[1])
            return max(0.0, 1.0 - idle) * (os.cpu_count() or 1)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _positive(value: object, where: str) -> int:
    from .errors import ImrecError

    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ImrecError(f"{where}: the number of threads must be a whole number ≥ 1, got {value!r}")
    return n


def resolve_threads(flag: int | None = None, recipe: int | None = None, processes: int | None = None,
                    default: int | None = None) -> ThreadChoice:
    """The thread count for this process (see the module's docstring for the order).

    ``processes``: imrec processes sharing this machine's cores (default: torchrun's ``LOCAL_WORLD_SIZE``, else 1).
    ``default``: the caller's own default instead of the computed one (``imrec bench``: 1 per worker).
    """
    if processes is None:
        processes = _positive(os.environ.get("LOCAL_WORLD_SIZE", "1"), "$LOCAL_WORLD_SIZE")
    cores, load = physical_cores(), busy_cores()

    def choice(n: int, source: str) -> ThreadChoice:
        return ThreadChoice(n, source, cores, processes, None if load is None else round(load, 2))

    if flag is not None:
        return choice(_positive(flag, "--threads"), "--threads")
    if os.environ.get(ENV_VAR, "").strip():
        return choice(_positive(os.environ[ENV_VAR], f"${ENV_VAR}"), f"${ENV_VAR}")
    if recipe is not None:
        return choice(_positive(recipe, "recipe key 'threads'"), "recipe")
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return choice(_positive(os.environ["OMP_NUM_THREADS"], "$OMP_NUM_THREADS"), "$OMP_NUM_THREADS")
    if default is not None:
        return choice(default, "default")
    share = max(1, cores // processes)
    if load is not None:
        # Cores the others leave free, shared among our processes; rounding lets light background use (<0.5 of
        # a core) through, and one thread is always allowed.
        free = int(math.floor(max(cores - load, 0.0) + 0.5))
        share = max(1, min(share, free // processes))
    return choice(share, "default")


_applied: ThreadChoice | None = None


def apply_threads(choice: ThreadChoice) -> None:
    """Use ``choice`` for torch's intra-op pool in this process; remembered for ``environment.json``. (Worker
    processes imrec starts, e.g. ``imrec bench --jobs``, apply their own choice when they start.)"""
    global _applied
    import torch

    torch.set_num_threads(choice.threads)
    _applied = choice


@contextmanager
def using_threads(choice: ThreadChoice) -> Iterator[ThreadChoice]:
    """Apply ``choice`` for the body, then give torch (and :func:`applied`) back what they had: the Python API
    (``imrec.run``) chooses threads as the commands do without changing its caller's process for good."""
    global _applied
    import torch

    before, before_choice = torch.get_num_threads(), _applied
    apply_threads(choice)
    try:
        yield choice
    finally:
        torch.set_num_threads(before)
        _applied = before_choice


def applied() -> ThreadChoice | None:
    """The choice :func:`apply_threads` last applied in this process (None if it never ran)."""
    return _applied
