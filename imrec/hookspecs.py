"""The hooks a plugin implements. Each is a register-callback: the core passes ``register(name, factory)``.

Names are namespaced (``"rohydr.hddm"``). A hook implementation may accept a subset of the arguments, so hooks
can grow without breaking plugins. Every hook is documented in ``docs/hooks.md`` (a test keeps that true).
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("imrec")
hookimpl = pluggy.HookimplMarker("imrec")

Register = Callable[..., None]


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoder factories: ``register("ns.name", factory)``; factories build an ``Encoder``."""


@hookspec
def register_recoverers(register: Register) -> None:
    """Register recoverer factories (fill in missing modalities): ``register("ns.name", factory)``."""


@hookspec
def register_fusers(register: Register) -> None:
    """Register fuser factories (tokens of all modalities → one vector): ``register("ns.name", factory)``."""


@hookspec
def register_aligners(register: Register) -> None:
    """Register aligner factories (fused vector → aligned vector): ``register("ns.name", factory)``."""


@hookspec
def register_heads(register: Register) -> None:
    """Register head factories (vector → prediction, plus the task loss): ``register("ns.name", factory)``."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories, each building a ``Dataset``: ``register("ns.name", factory)``."""


@hookspec
def register_protocols(register: Register) -> None:
    """Register missing-modality protocol factories, each building a ``MissingProtocol``."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric factories, each building a ``Metric``: ``register("ns.name", factory)``."""


@hookspec
def register_loggers(register: Register) -> None:
    """Register experiment-tracking logger factories, each building a ``Logger``: ``register("ns.name", factory)``."""


@hookspec
def register_commands(subparsers: Any) -> None:
    """Add CLI sub-commands: ``subparsers`` is argparse's; set ``func=callable(args) -> int`` as the default."""
