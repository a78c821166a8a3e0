"""Progress display: rich bars (epochs, batches, live loss and VALID metric) on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


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

    def __enter__(self) -> "Reporter":
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"), console=self.console, transient=True,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def epoch_start(self, phase: str, epoch: int, epochs: int, batches: int) -> None:
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
        if not self.enabled:
            return
        line = (f"{self.prefix}{phase} epoch {epoch + 1}/{epochs}  {_fmt(losses, 4)}  valid {metric}={value:.4f}"
                f"{'  *' if improved else ''}")
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
