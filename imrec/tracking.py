"""Experiment tracking: the recipe's ``log:`` loggers (plugins, hook ``register_loggers``), fed by the runner.

The run directory stays the record of a run; loggers copy what it holds to the tools users watch training in.
:class:`Loggers` fans every event out to each configured logger and computes the run-wide epoch axis, so a
logger never has to know the recipe's phases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import Recipe, build_component
from .interfaces import Logger


def epoch_offsets(recipe: Recipe) -> dict[str, int]:
    """Phase name → step of its first epoch: earlier phases count with their full ``epochs``, so a step does not
    depend on early stopping and a resumed run logs each epoch at the step an uninterrupted one would."""
    offsets, total = {}, 0
    for phase in recipe.train.phases:
        offsets[phase.name] = total
        total += phase.epochs
    return offsets


class Loggers:
    """The configured loggers of one run, called in order; empty (every call a no-op) when none is set."""

    def __init__(self, loggers: Sequence[Logger], offsets: Mapping[str, int]):
        self.loggers = list(loggers)
        self.offsets = dict(offsets)

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def start(self, run_dir: Path, recipe: Mapping[str, Any], resumed: bool) -> None:
        for logger in self.loggers:
            logger.start(Path(run_dir), recipe, resumed)

    def epoch(self, seed: int, record: Mapping[str, Any]) -> None:
        """One finished epoch: ``record`` is exactly the line written to the seed's ``metrics.jsonl``."""
        step = self.offsets.get(record["phase"], 0) + int(record["epoch"])
        for logger in self.loggers:
            logger.log_epoch(seed, step, record)

    def test(self, seed: int, conditions: Mapping[str, Mapping[str, float]]) -> None:
        for logger in self.loggers:
            logger.log_test(seed, conditions)

    def finish(self, summary: Mapping[str, Any] | None, status: str) -> None:
        errors = []
        for logger in self.loggers:  # every tracker is closed, even when one of them fails to
            try:
                logger.finish(summary, status)
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others were closed
                errors.append(exc)
        if errors:
            raise errors[0]


NO_LOGGERS = Loggers([], {})


def build_loggers(recipe: Recipe, enabled: bool = True) -> Loggers:
    """The recipe's ``log:`` loggers, built (a missing extra fails here, before anything trains). ``enabled``
    False (every rank but 0 of a distributed run) gives none: only one process reports a run."""
    if not enabled or not recipe.log:
        return NO_LOGGERS
    return Loggers([build_component("logger", cfg) for cfg in recipe.log], epoch_offsets(recipe))
