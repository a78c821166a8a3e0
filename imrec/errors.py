"""Errors a user can act on. The CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable


class ImrecError(Exception):
    """Base of every error imrec raises on purpose: its message says what is wrong and what to do."""

    exit_code = 2


@dataclass
class Problem:
    """One problem found in a recipe: where (file, dotted key path), what was found, what was expected."""

    file: str
    key: str
    message: str
    expected: str | None = None
    allowed: list[str] | None = None

    def __str__(self) -> str:
        # Parts are cut to a readable length: a recipe value can be megabytes long, its message never is.
        where = f"{self.file}: {_cut(self.key, 200)}" if self.key else self.file
        text = f"{where}: {_cut(self.message, 1000)}"
        if self.expected:
            text += f" (expected {_cut(self.expected, 500)})"
        if self.allowed:
            text += f"; allowed: {_cut(', '.join(map(str, self.allowed)), 1000)}"
        return text


def _cut(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RecipeError(ImrecError):
    """A recipe (or its overrides) is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in recipe"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class PluginError(ImrecError):
    """A plugin could not be loaded, or two plugins registered the same name."""


class UnknownComponentError(ImrecError):
    """A name that no loaded plugin registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        self.kind, self.name, self.known = kind, name, known
        shown = repr(name) if len(name) <= 80 else repr(name[:77] + "...")
        msg = f"unknown {kind} {shown}"
        close = suggest(name, known)
        if close:
            msg += f"; did you mean {close!r}?"
        msg += f" Registered {kind}s: {', '.join(known) if known else '(none)'}"
        super().__init__(msg)


class DataError(ImrecError):
    """Data is absent or malformed: the message names the file, what was expected and how to get it."""


class CheckpointError(ImrecError):
    """A checkpoint or resume file cannot be loaded: names the file, why, and what to do."""


class DataNotFoundError(DataError):
    """The data is not where the recipe points (as opposed to present but malformed): ``imrec validate`` then
    skips the checks that need the dataset's spec, and says so."""


class TrainingError(ImrecError):
    """Training cannot go on (e.g. a non-finite loss): names phase, step, epoch and loss term."""


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``name`` (also matching the part after the namespace), or None."""
    candidates = list(candidates)
    hit = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    if hit:
        return hit[0]
    short = {c.split(".", 1)[-1]: c for c in candidates}
    hit = difflib.get_close_matches(name.split(".", 1)[-1], list(short), n=1, cutoff=0.5)
    return short[hit[0]] if hit else None
