"""The resolved recipe as flat ``dotted.key → value`` parameters, the form experiment trackers take."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

# The parts of a metrics.jsonl line that are per-epoch numbers: losses, VALID metrics, scheduled learning rates.
PARTS = ("train", "valid", "lr")
# The characters MLflow accepts in metric and parameter names; TensorBoard takes them too.
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")


def flat_params(recipe: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"phases": [{"epochs": 3}]}}`` → ``{"train.phases.0.epochs": 3}``. Leaves stay numbers, bools
    and strings; ``None`` becomes ``"null"`` and an empty list or mapping its JSON text, so every key the recipe
    has is visible."""
    out: dict[str, Any] = {}
    items = recipe.items() if isinstance(recipe, Mapping) else enumerate(recipe)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (Mapping, list, tuple)) and len(value):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, (Mapping, list, tuple)):
            out[name] = json.dumps(value)
        else:
            out[name] = "null" if value is None else value
    return out


def metric_key(*parts: str) -> str:
    """A tracker-safe name: ``parts`` joined by ``/``, where the last part (a metric or loss name) keeps no ``/``
    of its own (``recovery_mse/text`` → ``recovery_mse.text``: MLflow's file store makes a folder of every
    ``/``, and ``recovery_mse`` is a metric too); ``=`` becomes ``:`` (``random/mr=0.30`` → ``random/mr:0.30``)
    and any other character MLflow refuses becomes ``_``."""
    *head, last = parts
    return _UNSAFE.sub("_", "/".join([*head, last.replace("/", ".")]).replace("=", ":"))
