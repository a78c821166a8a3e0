"""The bench matrix: one cell per (definition, method, seed), each a resumable run directory.

A cell's run directory is stable, ``<work_dir>/<method>/seed-<seed>``, so the matrix can be stopped and
started again at will: a finished cell (its ``seeds/<seed>/test.json`` exists) is never recomputed, an
interrupted one resumes from its ``state.pt`` through :func:`imrec.runner.run_recipe`. A cell directory that
was made by a *different* resolved recipe (the definition or a recipe changed since) is an error, never reused.

Cells run in worker processes (``jobs``), each with ``threads`` torch threads (a count or an
``imrec.threads.ThreadChoice``). Every cell is seeded by
its own seed alone, so the results do not depend on ``jobs`` or on the order in which cells finish.
"""

from __future__ import annotations

import json
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .. import bounded_yaml
from ..boundary import short_repr
from ..errors import ImrecError
from .definition import Definition, Method
from .workers import run_in_worker, stop_workers, thread_choice, worker_init


@dataclass(frozen=True)
class Cell:
    """One (board, method, seed) of the matrix and its run directory."""

    index: int
    board: str
    method: Method
    seed: int
    run_dir: Path
    overrides: tuple[str, ...]
    # The configuration tuning chose for the method (overrides after the method's own), and the settings the
    # board pins for the arithmetic (imrec.bench.settings.Arithmetic); both empty for a plain board.
    tuned: tuple[str, ...] = ()
    arithmetic: Any = None

    @property
    def label(self) -> str:
        return f"{self.board}/{self.method.name}/seed {self.seed}"

    def done(self) -> bool:
        return (self.run_dir / "seeds" / str(self.seed) / "test.json").exists()


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    status: str  # "done" (was finished already), "ran", "failed"
    seconds: float
    error: str | None = None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 ≤ i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ImrecError(f"--shard expects i/n (e.g. 0/4 for the first of four shards), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ImrecError(f"--shard {text}: need n ≥ 1 and 0 ≤ i < n")
    return i, n


def cell_dir(defn: Definition, method: Method, seed: int, work_dir: Path | None = None) -> Path:
    return Path(work_dir or defn.work_dir) / method.name / f"seed-{seed}"


def matrix(
    definitions: Sequence[Definition],
    only: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    shard: tuple[int, int] | None = None,
    work_dir: Path | None = None,
    tuned: dict[tuple[str, str], tuple[str, ...]] | None = None,
) -> list[Cell]:
    """The cells to run, in a fixed order (definition, method, seed as listed). ``only`` keeps those methods,
    ``seeds`` those seeds; ``shard=(i, n)`` then keeps the cells whose index in that list is ≡ i (mod n).
    ``work_dir`` (one definition only) replaces the definition's ``output.work_dir``. ``tuned`` maps (board,
    method) to the overrides its tuning chose (imrec.bench.tuning.chosen)."""
    if work_dir is not None and len(definitions) != 1:
        raise ImrecError("--work-dir applies to one definition; give each definition its own output.work_dir")
    for d in definitions:
        folder = Path(work_dir or d.work_dir)
        for parent in (folder, *folder.parents):
            if parent.exists():
                if not parent.is_dir():
                    raise ImrecError(f"work directory {folder}: {parent} is a file, not a folder; choose another "
                                     f"--work-dir (or output.work_dir in the definition)")
                break
    every_method = {m.name for d in definitions for m in d.methods}
    for name in only or ():
        if name not in every_method:
            from ..errors import suggest

            close = suggest(name, sorted(every_method))
            raise ImrecError(f"--only {name!r}: no such method" + (f"; did you mean {close!r}?" if close else "")
                             + f". Methods: {', '.join(sorted(every_method))}")
    every_seed = {s for d in definitions for s in d.seeds}
    for s in seeds or ():
        if s not in every_seed:
            raise ImrecError(f"--seeds {s}: not a seed of the definition(s): {sorted(every_seed)}")
    cells: list[Cell] = []
    for d in definitions:
        for m in d.methods:
            if only and m.name not in only:
                continue
            for s in d.seeds:
                if seeds and s not in seeds:
                    continue
                cells.append(Cell(len(cells), d.board, m, s, cell_dir(d, m, s, work_dir), d.overrides,
                                  tuple((tuned or {}).get((d.board, m.name), ())), d.arithmetic))
    if shard is not None:
        i, n = shard
        cells = [c for c in cells if c.index % n == i]
    return cells


def cell_recipe(cell: Cell) -> Any:
    """The cell's validated recipe: the method's recipe + board overrides + its own + this seed."""
    from ..config import load_recipe

    extra = [f"seeds=[{cell.seed}]", f"output_dir={json.dumps(str(cell.run_dir.parent))}"]
    if cell.arithmetic is not None:
        extra.append(f"deterministic={json.dumps(cell.arithmetic.deterministic)}")
    return load_recipe(cell.method.recipe, [*cell.overrides, *cell.method.overrides, *cell.tuned, *extra])


def _comparable(text: str) -> dict[str, Any]:
    data = bounded_yaml.load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("not a recipe (a YAML mapping)")
    data.pop("output_dir", None)  # where the cell lives is not part of the experiment
    data.pop("log", None)  # nor which experiment trackers watched it
    data.pop("threads", None)  # nor how many threads computed it
    return data


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:  # elements are named by their 'name' (phases, steps), as overrides address them
                name = x.get("name") if isinstance(x, dict) and isinstance(y, dict) and x.get("name") == y.get("name") else None
                return _first_difference(x, y, f"{path}.{name if isinstance(name, str) else i}")
    return f"{path or '<root>'}: {short_repr(a, 80)} then, {short_repr(b, 80)} now"


def check_cell_dir(cell: Cell, recipe: Any) -> None:
    """Refuse a cell directory made by a different resolved recipe (the definition or a recipe changed)."""
    from ..config import to_yaml

    stored = cell.run_dir / "recipe.yaml"
    if not stored.exists():
        return
    try:
        before = _comparable(stored.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:  # bounds errors are ValueErrors
        raise ImrecError(f"{cell.label}: {stored} is unreadable ({str(exc)[:200]}); delete {cell.run_dir} to "
                         f"recompute the cell") from None
    now = _comparable(to_yaml(recipe))
    if before != now:
        raise ImrecError(
            f"{cell.label}: {cell.run_dir} was run with a different recipe ({_first_difference(before, now)}); "
            f"the definition or the recipe changed since. Delete that folder to recompute the cell, or run the "
            f"board with another --work-dir"
        )


def stale_reason(cell: Cell) -> str | None:
    """Why ``cell``'s directory does not hold results of the cell's current recipe (None: it does, or it holds
    nothing yet). Results are keyed by the resolved recipe that produced them: a changed definition, method
    recipe or override makes the stored results stale, and they are neither reused nor published."""
    try:
        check_cell_dir(cell, cell_recipe(cell))
    except ImrecError as exc:
        return str(exc)
    return None


def run_cell(cell: Cell, threads: Any = 1, reporter: Any = None) -> CellResult:
    """Run (or resume, or skip) one cell. Exceptions become a ``failed`` result with the message."""
    start = time.perf_counter()
    try:
        recipe = cell_recipe(cell)
        check_cell_dir(cell, recipe)
        if cell.done():
            return CellResult(cell, "done", 0.0)
        _run(cell, recipe, threads, reporter)
        return CellResult(cell, "ran", time.perf_counter() - start)
    except ImrecError as exc:
        return CellResult(cell, "failed", time.perf_counter() - start, str(exc))
    except Exception as exc:  # a bug, a crash in a component, an OS error: keep the other cells going, say why
        from ..boundary import debug_enabled, describe

        text = describe(exc)
        if debug_enabled():
            text = traceback.format_exc() + text
        return CellResult(cell, "failed", time.perf_counter() - start, text)


def _run(cell: Cell, recipe: Any, threads: Any, reporter: Any) -> None:
    import torch

    from ..config import to_yaml
    from ..progress import Reporter
    from ..runner import run_recipe
    from ..runs import atomic_write_json, atomic_write_text

    if not (cell.run_dir / "recipe.yaml").exists():
        (cell.run_dir / "seeds").mkdir(parents=True, exist_ok=True)
        atomic_write_json(cell.run_dir / "overrides.json", list(recipe.overrides))
        atomic_write_text(cell.run_dir / "recipe.yaml", to_yaml(recipe))
    import dataclasses

    from ..threads import apply_threads, applied

    choice = thread_choice(threads)
    previous = torch.get_num_threads(), torch.get_float32_matmul_precision(), applied()
    if cell.arithmetic is not None:  # the board pins the arithmetic: its thread count wins over --threads
        choice = dataclasses.replace(choice, threads=cell.arithmetic.threads, source="board arithmetic")
        torch.set_float32_matmul_precision(cell.arithmetic.float32_matmul_precision)
    apply_threads(choice)  # also what the cell's environment.json records
    try:
        run_recipe(recipe, cell.run_dir, reporter or Reporter(enabled=False))
    finally:
        torch.set_num_threads(previous[0])
        torch.set_float32_matmul_precision(previous[1])
        if previous[2] is not None:
            apply_threads(previous[2])


def run_matrix(
    cells: Sequence[Cell],
    jobs: int = 1,
    threads: Any = 1,
    log: Callable[[str], None] | None = None,
) -> list[CellResult]:
    """Run ``cells`` with ``jobs`` worker processes (``jobs == 1``: in this process). Returns one result per
    cell, in cell order; failed cells do not stop the others."""
    if jobs < 1:
        raise ImrecError(f"--jobs must be ≥ 1, got {jobs}")
    log = log or (lambda line: print(line, flush=True))
    todo = [c for c in cells if not c.done()]
    results: dict[int, CellResult] = {c.index: CellResult(c, "done", 0.0) for c in cells if c.done()}
    for c in cells:
        if c.done():
            # A finished cell is still checked against the definition: a changed recipe must not pass silently.
            try:
                check_cell_dir(c, cell_recipe(c))
            except ImrecError as exc:
                results[c.index] = CellResult(c, "failed", 0.0, str(exc))
                log(f"{c.label}: FAILED\n{exc}")
    n_done = len(cells) - len(todo)
    log(f"bench: {len(cells)} cells, {n_done} finished already, {len(todo)} to run with {jobs} job(s) × "
        f"{getattr(threads, 'threads', threads)} thread(s)")
    start = time.perf_counter()
    finished = 0

    def report(res: CellResult) -> None:
        nonlocal finished
        finished += 1
        results[res.cell.index] = res
        elapsed = time.perf_counter() - start
        state = f"{res.seconds:.0f} s" if res.status == "ran" else res.status.upper()
        left = len(todo) - finished
        # Cells left × the mean time of the cells that finished, shared among the workers: a rough ETA.
        eta = f", about {elapsed / finished * left / 60:.1f} min left" if left else ""
        log(f"[{finished}/{len(todo)}] {res.cell.label}: {state} (elapsed {elapsed / 60:.1f} min{eta})")
        if res.error:
            log(res.error.rstrip())

    if jobs == 1:
        for i, c in enumerate(todo):
            log(f"[{i + 1}/{len(todo)}] {c.label}: running…")  # a cell takes minutes: say which one is running
            report(run_cell(c, threads))
    elif todo:
        ctx = get_context("spawn")  # a clean interpreter per worker: no forked torch thread pools
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=worker_init,
                                 initargs=(threads,)) as pool:
            pending: set[Future] = {pool.submit(run_in_worker, c, threads) for c in todo}
            try:
                while pending:
                    complete, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in complete:
                        report(fut.result())
            except BaseException:
                stop_workers(pool)  # the executor then fails every unfinished future (a cancel would race it)
                raise
    return [results[c.index] for c in cells]


def definition_records(
    defn: Definition, work_dir: Path | None = None, only: Sequence[Cell] | None = None
) -> tuple[list[dict[str, Any]], list[Cell]]:
    """Tidy records of every finished cell of ``defn`` (or of the cells ``only``) for its metrics, and the cells
    not finished. ``run_dir`` is stored relative to the definition's folder, so records do not depend on the
    machine or the working directory."""
    from .records import merge, seed_records, shown_path

    if only is not None:
        cells = list(only)
    else:
        tuned = None
        if defn.tune is not None:  # a tuned method's cells ran with the chosen overrides: part of their recipe
            from .tuning import chosen

            tuned = {(defn.board, m.name): chosen(defn, m, work_dir) or () for m in defn.methods}
        cells = matrix([defn], work_dir=work_dir, tuned=tuned)
    records, missing = [], []
    configs: dict[str, Any] = {}
    for c in cells:
        if not c.done() or stale_reason(c) is not None:  # a cell of another recipe is never published as this one
            missing.append(c)
            continue
        extra: dict[str, Any] = {}
        if defn.arithmetic is not None:
            extra["settings"] = cell_settings(c, defn.arithmetic)
        if defn.tune is not None:
            if c.method.name not in configs:
                from .tuning import record_config

                configs[c.method.name] = record_config(defn, c.method, work_dir)
            extra["config"] = configs[c.method.name]
        records += seed_records(defn.board, c.method.name, c.run_dir, c.seed, defn.metrics,
                                shown_dir=shown_path(c.run_dir, defn.base), extra=extra)
    return merge(records), missing


def cell_settings(cell: Cell, pinned: Any) -> dict[str, Any]:
    """The arithmetic a finished cell ran with (its environment.json), checked against what the board pins: a
    cell computed under other settings is an error, not a record."""
    path = cell.run_dir / "environment.json"
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImrecError(f"{cell.label}: cannot read {path} ({exc}); the cell's settings are unknown") from None
    ran = {"threads": env.get("threads"),
           "deterministic": (env.get("determinism") or {}).get("torch.use_deterministic_algorithms"),
           "float32_matmul_precision": env.get("float32_matmul_precision", "highest")}
    want = pinned.describe()
    if ran != want:
        diff = ", ".join(f"{k} {ran[k]!r} (pinned {want[k]!r})" for k in want if ran[k] != want[k])
        raise ImrecError(f"{cell.label}: {cell.run_dir} ran with {diff}; its values would not reproduce under "
                         f"the board's settings. Delete that folder to recompute the cell")
    return {**ran, "torch": env.get("torch"), "device": env.get("device")}
