"""The model's component slots, declared once: everything else that names a slot is derived from or checked
against :data:`SLOTS`.

Derived here: the register hooks (:mod:`imrec.hookspecs`), the registry's kinds (:mod:`imrec.registry`), the
model's slots and how it builds them (:mod:`imrec.model`). Checked by tests against it: the recipe language's
slot constants (``tests/core/test_slots.py``) and docs/hooks.md (its table of kinds and one section per hook).
What adding a slot takes: docs/hooks.md, "Adding a slot".

This module imports only :mod:`imrec.interfaces` (no torch, no numpy): every command imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .interfaces import Aligner, Encoder, Fuser, Head, Recoverer


@dataclass(frozen=True)
class Slot:
    """One slot of the model.

    ``name`` is the word in recipes (``model.<name>``), loss names (``<name>.<loss>``), parameter paths, errors
    and ``imrec list <name>``; ``protocol`` is what its factories build; ``hook`` the plugin hook that registers
    them. ``required``: every model has one; otherwise a recipe may leave it out. ``bypassable``: a training
    phase may run without it (``bypass: [<name>]``) although the model has one. ``context``: the arguments the
    core injects into a factory whose signature names them (a recipe may not set them); ``provides``: context
    this slot's component gives to the slots after it, context name → the component's attribute.
    """

    name: str
    protocol: type
    hook: str
    required: bool
    bypassable: bool
    context: tuple[str, ...]
    description: str
    provides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# Context known before any component is built: from the dataset's spec (imrec.interfaces.DatasetSpec).
DATA_CONTEXT: tuple[str, ...] = ("modalities", "task")

# In the order a batch passes through them (imrec.model.IMModel.forward).
SLOTS: tuple[Slot, ...] = (
    Slot("encoder", Encoder, "register_encoders", required=True, bypassable=False, context=("modalities",),
         description="raw features of every modality → tokens of a common width",
         provides=MappingProxyType({"d_model": "out_dim"})),
    Slot("recoverer", Recoverer, "register_recoverers", required=False, bypassable=True,
         context=("modalities", "d_model"), description="fill in the tokens of missing modalities"),
    Slot("fuser", Fuser, "register_fusers", required=True, bypassable=False, context=("modalities", "d_model"),
         description="tokens of all modalities → one vector",
         provides=MappingProxyType({"dim": "out_dim", "in_dim": "out_dim"})),
    Slot("aligner", Aligner, "register_aligners", required=False, bypassable=True, context=("dim",),
         description="fused vector → aligned vector (toward the complete-data one)"),
    Slot("head", Head, "register_heads", required=True, bypassable=False, context=("in_dim", "task"),
         description="vector → prediction, plus the task loss"),
)

COMPONENT_SLOTS: tuple[str, ...] = tuple(s.name for s in SLOTS)
REQUIRED_SLOTS: tuple[str, ...] = tuple(s.name for s in SLOTS if s.required)
OPTIONAL_SLOTS: tuple[str, ...] = tuple(s.name for s in SLOTS if not s.required)
BYPASSABLE_SLOTS: tuple[str, ...] = tuple(s.name for s in SLOTS if s.bypassable)
CONTEXT_ARGS: dict[str, tuple[str, ...]] = {s.name: s.context for s in SLOTS}


def slot(name: str) -> Slot:
    """The slot called ``name``."""
    for s in SLOTS:
        if s.name == name:
            return s
    raise KeyError(f"no slot {name!r}; slots: {', '.join(COMPONENT_SLOTS)}")
