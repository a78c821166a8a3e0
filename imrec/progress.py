"""Progress display: rich bars (epochs, batches, live loss and VALID metric, time left) on a terminal, plain lines
otherwise; each epoch's line ends with the phase's time left, and TEST evaluation reports each condition."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


def duration(seconds: float) -> str:
    """``42 s``, ``3.4 min``, ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _fmt(losses: Mapping[str, float], limit: int = 3) -> str:
    items = [(k, v) for k, v in losses.items() if not k.startswith("step.")][:limit]
    return " ".join(f"{k}={v:.4g}" for k, v in items)


class Reporter:
    """Receives trainer events. ``live=None`` chooses rich bars only when stderr is a terminal."""

    def __init__(self, console: Console | None = None, live: bool | None = None, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and (self.console.is_terminal if live is None else live)
        self.progress: Progress | None = None
        self._task = None
        self.prefix = ""
        self._epoch_t0: float | None = None
        self._epoch_seconds: list[float] = []  # this phase's epochs timed in this process, for the time left

    def __enter__(self) -> "Reporter":
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=self.console,
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def phase_start(self, phase: str, epochs: int, note: str = "") -> None:
        """A phase begins (or resumes): its epoch timings start afresh; ``note`` is printed if given."""
        self._epoch_seconds = []
        if note:
            self.message(f"{self.prefix}{note}")

    def epoch_start(self, phase: str, epoch: int, epochs: int, batches: int) -> None:
        self._epoch_t0 = time.perf_counter()
        if self.progress is not None:
            desc = f"{self.prefix}{phase} {epoch + 1}/{epochs}"
            if self._task is None:
                self._task = self.progress.add_task(desc, total=batches, info="")
            else:
                self.progress.reset(self._task, total=batches, description=desc)

    def batch_end(self, batch: int, losses: Mapping[str, float]) -> None:
        if self.progress is not None and self._task is not None:
            self.progress.update(self._task, completed=batch, info=_fmt(losses))

    def epoch_end(self, phase: str, epoch: int, epochs: int, losses: Mapping[str, float], metric: str,
                  value: float, improved: bool) -> None:
        if self._epoch_t0 is not None:
            self._epoch_seconds.append(time.perf_counter() - self._epoch_t0)
            self._epoch_t0 = None
        if not self.enabled:
            return
        line = (f"{self.prefix}{phase} epoch {epoch + 1}/{epochs}  {_fmt(losses, 4)}  valid {metric}={value:.4f}"
                f"{'  *' if improved else ''}")
        if self._epoch_seconds:
            per = sum(self._epoch_seconds) / len(self._epoch_seconds)
            left = per * (epochs - epoch - 1)
            # "at most": early stopping may end the phase sooner.
            line += f"  [{duration(per)}/epoch" + (f", phase ≤ {duration(left)} left]" if left > 0 else "]")
        if self.progress is not None:
            self.progress.console.print(line, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        if self.enabled:
            if self.progress is not None:
                self.progress.console.print(text, highlight=False)
            else:
                print(text, file=sys.stderr, flush=True)

    def evaluated(self, split: str, index: int, total: int, condition: str, seconds: float, elapsed: float) -> None:
        """Condition ``index`` (1-based) of ``total`` scored on ``split``; with the time left for the others."""
        if not self.enabled:
            return
        from .display import show_condition

        left = elapsed / index * (total - index)
        self.message(f"{self.prefix}{split.upper()} {index}/{total} {show_condition(condition)}: {duration(seconds)}"
                     + (f" ({duration(left)} left)" if index < total else ""))
