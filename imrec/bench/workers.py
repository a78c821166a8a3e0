"""The bench's worker processes: each with its torch threads, each ending when the bench process is gone, all
ended at once on Ctrl-C or an error (imrec.bench.matrix.run_matrix starts them)."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def thread_choice(threads: Any) -> Any:
    """A ThreadChoice (imrec.threads) for ``threads``: one already made by the bench CLI, or a bare count."""
    from ..threads import ThreadChoice, resolve_threads

    return threads if isinstance(threads, ThreadChoice) else resolve_threads(flag=int(threads))


def worker_init(threads: Any) -> None:
    """Set up a new worker: its threads; Ctrl-C left to the bench process; exit when that process is gone."""
    import signal

    from ..threads import apply_threads

    apply_threads(thread_choice(threads))
    # Ctrl-C reaches the whole process group; the bench process alone handles it (and ends the workers), so
    # workers print no KeyboardInterrupt of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent()


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (Ctrl-C or an error in the bench process). Cancelling futures is not enough: a
    cell already handed to a worker runs to its end, and ``shutdown(wait=True)`` would wait for it — a worker
    even survives its own KeyboardInterrupt (the executor's worker loop catches it and takes the next cell).
    Terminating and joining the workers before ``shutdown`` lets the executor close its queues, so no semaphore
    is left for the resource tracker to warn about. An interrupted cell resumes on the next ``bench run``."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=30)
    pool.shutdown(wait=True)


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """End this worker when the bench process that started it is gone (killed, crashed, Ctrl-C'd hard).

    Without this an orphaned worker trains its cell on, unseen, while a restarted bench runs the same cell; the
    run-directory lock (imrec.runs.run_lock) keeps the two apart, this stops the orphan wasting the CPU.
    """
    import os
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(3)  # the lock it leaves names a dead pid: the next runner takes it over

    threading.Thread(target=watch, name="imrec-bench-parent-watch", daemon=True).start()


def run_in_worker(cell: Any, threads: Any) -> Any:
    """Run one cell (imrec.bench.matrix.run_cell) in a worker; its CellResult goes back to the bench process."""
    from .matrix import run_cell

    return run_cell(cell, threads)
