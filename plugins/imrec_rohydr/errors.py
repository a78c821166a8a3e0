"""The error RoHyDR's components raise for an invalid setting a recipe can fix."""

from __future__ import annotations

from imrec.errors import ImrecError


class ComponentConfigError(ImrecError, ValueError):
    """A component's recipe keys are inconsistent (e.g. a width not divisible by the number of heads).

    It is an :class:`imrec.errors.ImrecError` (shown without a traceback) and a :class:`ValueError` (what
    code building the component by hand would expect).
    """
