"""Tidy records: one JSON object per run × seed × evaluation condition × metric, stored as JSONL.

A record is ``{board, method, recipe, dataset, seed, condition, protocol, metric, value, run_dir}``; ``value``
is the raw TEST value from the seed's ``test.json`` (accuracies as fractions; ``null`` if not finite). A file of
records is written atomically and sorted deterministically, so the same results always give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from .. import bounded_yaml

from ..errors import ImrecError
from ..runs import atomic_write_text

FIELDS = ("board", "method", "recipe", "dataset", "seed", "condition", "protocol", "metric", "value", "run_dir")
# Written only by boards that use them: the pinned arithmetic the cell ran with, and the configuration tuning
# chose for the method with the budget (docs/benchmarks.md).
OPTIONAL = ("settings", "config")
KEY = ("board", "method", "seed", "condition", "metric")


def condition_rate(condition: str) -> float | None:
    """The missing rate of a ``random/mr=<rate>`` condition, else None."""
    if condition.startswith("random/mr="):
        try:
            return float(condition.split("=", 1)[1])
        except ValueError:
            return None
    return None


def condition_order(condition: str) -> tuple[Any, ...]:
    """Sort key: random conditions by rate, then fixed subsets by size then name, then anything else."""
    rate = condition_rate(condition)
    if rate is not None:
        return (0, rate, condition)
    if condition.startswith("fixed/"):
        return (1, condition.count("+"), condition)
    return (2, 0, condition)


def sort_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    return (rec["board"], rec["method"], rec["seed"], condition_order(rec["condition"]), rec["metric"])


def _recipe_info(run_dir: Path) -> tuple[str, str]:
    path = run_dir / "recipe.yaml"
    try:
        data = bounded_yaml.load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, bounded_yaml.YAMLBoundsError) as exc:
        raise ImrecError(f"{run_dir} is not an imrec run directory (cannot read recipe.yaml: {exc}); pass the "
                         f"folder `imrec run` printed") from None
    if not isinstance(data, dict):
        raise ImrecError(f"{path}: holds no recipe (a YAML mapping); pass the folder `imrec run` printed")
    data_cfg = data.get("data") or {}
    return str(data.get("name", run_dir.name)), str(data_cfg.get("name", "")) if isinstance(data_cfg, dict) else ""


def seed_records(
    board: str,
    method: str,
    run_dir: Path,
    seed: int,
    metrics: Sequence[str] | None = None,
    shown_dir: str | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The records of one finished seed of a run directory (only ``metrics`` if given; else every numeric
    metric). ``shown_dir`` is the ``run_dir`` string to store (default: the path as given); ``extra`` adds
    :data:`OPTIONAL` fields to every record."""
    run_dir = Path(run_dir)
    recipe, dataset = _recipe_info(run_dir)
    path = run_dir / "seeds" / str(seed) / "test.json"
    try:
        test = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImrecError(f"{path}: cannot read the seed's TEST results ({str(exc)[:200]}); is the seed finished? "
                         f"If the file is damaged, delete {path.parent} and resume the run to recompute it") from None
    conditions = test.get("conditions") if isinstance(test, dict) else None
    protocols = test.get("protocols") if isinstance(test, dict) else None
    if not isinstance(conditions, dict) or not all(isinstance(v, dict) for v in conditions.values()):
        raise ImrecError(f"{path}: holds no TEST results ('conditions', a mapping of condition to metrics); delete "
                         f"{path.parent} and resume the run to recompute it")
    protocols = protocols if isinstance(protocols, dict) else {}
    out = []
    for condition, values in conditions.items():
        described = protocols.get(condition)
        protocol = (described if isinstance(described, dict) else {}).get("protocol", condition.split("/", 1)[0])
        for metric, value in values.items():
            if metrics is not None and metric not in metrics:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            out.append({
                "board": board, "method": method, "recipe": recipe, "dataset": dataset, "seed": int(seed),
                "condition": condition, "protocol": protocol, "metric": metric,
                "value": float(value) if math.isfinite(value) else None,
                "run_dir": shown_dir if shown_dir is not None else str(run_dir),
                **{k: v for k, v in (extra or {}).items() if k in OPTIONAL},
            })
    return out


def run_dir_records(
    run_dir: Path, board: str, method: str | None = None, metrics: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Records of every finished seed of an ordinary run directory; the method defaults to the recipe's name."""
    run_dir = Path(run_dir)
    recipe, _ = _recipe_info(run_dir)
    seeds_dir = run_dir / "seeds"
    seeds = sorted(int(p.name) for p in seeds_dir.iterdir() if p.name.lstrip("-").isdigit()) \
        if seeds_dir.is_dir() else []
    out = []
    for s in seeds:
        if (seeds_dir / str(s) / "test.json").exists():
            out += seed_records(board, method or recipe, run_dir, s, metrics)
    if not out:
        raise ImrecError(f"{run_dir}: no finished seed (no seeds/<seed>/test.json); resume it with "
                         f"`imrec run --resume {run_dir}` first")
    return out


def shown_path(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` (portable across machines and working directories), with '/'."""
    try:
        rel = os.path.relpath(Path(path).resolve(), Path(base).resolve())
    except ValueError:  # another drive on Windows
        rel = str(Path(path).resolve())
    return rel.replace(os.sep, "/")


def merge(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """All records, sorted; an identical record given twice is kept once, two different values for the same
    (board, method, seed, condition, metric) are an error (two runs of one cell that disagree)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for group in groups:
        for rec in group:
            key = tuple(rec[k] for k in KEY)
            if key in seen and seen[key] != rec:
                raise ImrecError(f"conflicting records for {dict(zip(KEY, key))}: {seen[key]['value']!r} "
                                 f"({seen[key]['run_dir']}) and {rec['value']!r} ({rec['run_dir']}); "
                                 f"merge records of one bench only once per cell")
            seen[key] = rec
    return sorted(seen.values(), key=sort_key)


def dumps(records: Iterable[dict[str, Any]]) -> str:
    """JSONL text: sorted records, fields in :data:`FIELDS` order, one per line."""
    lines = [json.dumps({**{k: rec[k] for k in FIELDS}, **{k: rec[k] for k in OPTIONAL if k in rec}},
                        ensure_ascii=False) for rec in sorted(records, key=sort_key)]
    return "".join(line + "\n" for line in lines)


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(Path(path), dumps(records))


def read_records(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    """Records from JSONL files (shards of one bench may be given together), merged and sorted."""
    groups = []
    for p in paths:
        p = Path(p)
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ImrecError(f"cannot read records {p}: {exc.strerror or exc}") from None
        group = []
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise ImrecError(f"{p}:{i}: not a JSON line ({exc})") from None
            missing = [k for k in FIELDS if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise ImrecError(f"{p}:{i}: a record needs the fields {', '.join(FIELDS)}; missing "
                                 f"{', '.join(missing)}")
            group.append(rec)
        groups.append(group)
    return merge(*groups)
