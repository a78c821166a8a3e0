"""The hooks a plugin implements. Each is a register-callback: the core passes ``register(name, factory)``.

Names are namespaced (``"rohydr.hddm"``). A hook implementation may accept a subset of the arguments, so hooks
can grow without breaking plugins. Every hook is documented in ``docs/hooks.md`` (a test keeps that true).
The model slots' hooks (``register_encoders`` … ``register_heads``) are generated from :data:`imrec.slots.SLOTS`.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

from .slots import SLOTS, Slot

hookspec = pluggy.HookspecMarker("imrec")
hookimpl = pluggy.HookimplMarker("imrec")

Register = Callable[..., None]


def _slot_hook(slot: Slot) -> Callable[..., None]:
    """The register hook of a model slot, named ``slot.hook`` (imrec/slots.py declares the slots once)."""

    def hook(register: Register) -> None:
        pass

    hook.__name__ = hook.__qualname__ = slot.hook
    hook.__module__ = __name__
    article = "an" if slot.protocol.__name__[0] in "AEIOU" else "a"
    hook.__doc__ = (f"Register {slot.name} factories ({slot.description}): ``register(\"ns.name\", factory)``; "
                    f"a factory builds {article} ``{slot.protocol.__name__}``.")
    return hookspec(hook)


# One hook per slot, generated: pluggy finds hookspecs as module attributes, whatever defined them.
for _slot in SLOTS:
    globals()[_slot.hook] = _slot_hook(_slot)
del _slot


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
