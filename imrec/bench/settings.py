"""A bench definition's board-wide settings: the arithmetic it pins for every cell and the tuning budget it gives
every method (the ``arithmetic`` and ``tune`` sections; :mod:`imrec.bench.definition` reads the rest), and the
check of unknown keys every section shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ImrecError, Problem, suggest

if TYPE_CHECKING:
    from .definition import Method

_ARITHMETIC_KEYS = ("threads", "deterministic", "float32_matmul_precision")
_PRECISIONS = ("highest", "high", "medium")
_TUNE_KEYS = ("trials", "seeds", "sampler_seed", "storage")
SPACE_SUFFIX = ".space.yaml"  # a method's search space: <recipe stem>.space.yaml beside its recipe


@dataclass(frozen=True)
class Arithmetic:
    """Settings that change a cell's floating-point results, pinned by the board for every cell and recorded in
    each of its records (``settings``): re-running a cell with them reproduces its values bit for bit."""

    threads: int
    deterministic: bool = True
    float32_matmul_precision: str = "highest"

    def describe(self) -> dict[str, Any]:
        return {"threads": self.threads, "deterministic": self.deterministic,
                "float32_matmul_precision": self.float32_matmul_precision}


@dataclass(frozen=True)
class TuneBudget:
    """The same tuning budget for every method: ``trials`` Optuna trials on VALID over the method's own search
    space (``<recipe stem>.space.yaml`` beside its recipe), each training ``seeds``, under the board's
    ``overrides`` (epoch caps, early stopping) like the cells."""

    trials: int
    seeds: tuple[int, ...]
    sampler_seed: int = 0
    storage: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"trials": self.trials, "seeds": list(self.seeds), "sampler_seed": self.sampler_seed}


def space_path(method: Method) -> Path:
    """Where a method's search space lives: next to its recipe, so a plugin shipping recipes ships spaces."""
    return method.recipe.with_name(method.recipe.stem + SPACE_SUFFIX)


def parse_arithmetic(raw: Any, add: Any) -> Arithmetic | None:
    """The ``arithmetic`` section; None when absent or invalid (each problem given to ``add``)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        add("arithmetic", f"found {raw!r}", expected="a mapping {threads: 1, deterministic?: true, "
                                                     "float32_matmul_precision?: highest}")
        return None
    unknown_keys(raw, "arithmetic", _ARITHMETIC_KEYS, add)
    threads = raw.get("threads")
    ok = True
    if not (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1):
        add("arithmetic.threads", "missing (required)" if threads is None else f"found {threads!r}",
            expected="a positive integer: torch threads per cell (the thread count changes the arithmetic)")
        ok = False
    deterministic = raw.get("deterministic", True)
    if not isinstance(deterministic, bool):
        add("arithmetic.deterministic", f"found {deterministic!r}", expected="true or false")
        ok = False
    precision = raw.get("float32_matmul_precision", "highest")
    if precision not in _PRECISIONS:
        add("arithmetic.float32_matmul_precision", f"found {precision!r}", allowed=list(_PRECISIONS))
        ok = False
    return Arithmetic(threads, deterministic, precision) if ok else None


def parse_tune(raw: Any, seeds: Sequence[int], methods: Sequence[Method], add: Any) -> TuneBudget | None:
    """The ``tune`` section (its seeds default to the board's first); None when absent or invalid. Every method
    needs its search space beside its recipe."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        add("tune", f"found {raw!r}", expected="a mapping {trials: N, seeds?: [...], sampler_seed?: 0, storage?: URL}")
        return None
    unknown_keys(raw, "tune", _TUNE_KEYS, add)
    ok = True
    trials = raw.get("trials")
    if not (isinstance(trials, int) and not isinstance(trials, bool) and trials >= 1):
        add("tune.trials", "missing (required)" if trials is None else f"found {trials!r}",
            expected="a positive integer: trials per method, the same for every method")
        ok = False
    tseeds = raw.get("seeds", list(seeds[:1]))
    if not (isinstance(tseeds, list) and tseeds and all(isinstance(x, int) and not isinstance(x, bool)
                                                         for x in tseeds)):
        add("tune.seeds", f"found {tseeds!r}", expected="a non-empty list of integers (default: the board's "
                                                         "first seed)")
        ok = False
    sampler_seed = raw.get("sampler_seed", 0)
    if not (isinstance(sampler_seed, int) and not isinstance(sampler_seed, bool)):
        add("tune.sampler_seed", f"found {sampler_seed!r}", expected="an integer")
        ok = False
    storage = raw.get("storage")
    if storage is not None and not (isinstance(storage, str) and "://" in storage):
        add("tune.storage", f"found {storage!r}", expected="an RDB URL Optuna accepts, e.g. "
                                                          "postgresql://user:password@host/db (default: one SQLite "
                                                          "file per method in its tune folder)")
        ok = False
    for m in methods:
        if not space_path(m).is_file():
            add(f"methods.{m.name}", f"no search space {space_path(m)}",
                expected=f"a tuned board needs one per method, beside its recipe ({m.recipe.stem}{SPACE_SUFFIX}; "
                         f"docs/tuning.md)")
    return TuneBudget(trials, tuple(tseeds), sampler_seed, storage) if ok else None


def check_spaces(file: str, methods: Sequence[Method], overrides: Sequence[str], problems: list[Problem]) -> None:
    """Each method's search space loaded and checked against its recipe with the board's overrides."""
    from ..tune.space import check_recipe, load_space

    for m in methods:
        try:
            check_recipe(load_space(space_path(m)), m.recipe, [*overrides, *m.overrides])
        except ImrecError as exc:
            problems.append(Problem(file, f"methods.{m.name}", f"its search space is invalid: {exc}"))


def unknown_keys(mapping: dict, key: str, allowed: Sequence[str], add: Any) -> None:
    """A problem for each key of ``mapping`` (the section at ``key``) not in ``allowed``, with the closest one."""
    for k in mapping:
        if k not in allowed:
            close = suggest(str(k), allowed)
            where = f"{key}.{k}" if key else str(k)
            add(where, f"unknown key {k!r}" + (f"; did you mean {close!r}?" if close else ""), allowed=allowed)
