"""Component arguments against their factories' signatures: validation and building share this.

A component in a recipe is ``{name: <registered name>, **arguments}``. The arguments are bound to the
registered factory's signature *without* calling it: unknown arguments, wrong types (from the annotations) and
missing required arguments are problems; arguments the core injects (``CONTEXT_ARGS``) may not be set.
"""

from __future__ import annotations

import copy
import inspect
import typing
from typing import Any, Callable, Mapping, Sequence

from ..boundary import short_repr
from ..errors import Problem, RecipeError, UnknownComponentError, suggest
from ..plugins import get_registry
from ..registry import Entry
from .hints import coerce, describe, matches, type_problem
from .recipe import CONTEXT_ARGS, ComponentConfig


def keyword_params(factory: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """Parameters settable by keyword, and whether the factory takes ``**kwargs``; ({}, True) if unknowable."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}, True
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = {n: p for n, p in sig.parameters.items() if p.kind in kinds}
    return params, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def type_hints(factory: Any) -> dict[str, Any]:
    """Resolved annotations of the factory's parameters; string annotations that do not resolve are left out."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # one unresolvable annotation: resolve the others one by one
        pass
    raw = getattr(target, "__annotations__", None)
    namespace = dict(getattr(inspect.unwrap(target), "__globals__", {}))
    hints: dict[str, Any] = {}
    for name, ann in (raw.items() if isinstance(raw, dict) else ()):
        if isinstance(ann, str):
            try:
                ann = eval(ann, namespace)  # noqa: S307 — what typing.get_type_hints does, per annotation
            except Exception:
                continue
        hints[name] = ann
    return hints


def argument_problems(kind: str, entry: Entry, cfg: ComponentConfig, file: str, reserved: Sequence[str],
                      provided: Sequence[str]) -> list[Problem]:
    """Problems binding ``cfg.kwargs`` to ``entry``'s factory: arguments imrec injects (``reserved``), unknown
    arguments, wrong types, and required arguments neither the recipe nor ``provided`` supplies."""
    params, var_keyword = keyword_params(entry.factory)
    hints = type_hints(entry.factory)
    settable = [n for n in params if n not in reserved]
    problems = []
    for arg, value in cfg.kwargs.items():
        key = f"{cfg.key}.{arg}"
        if arg in reserved:
            problems.append(Problem(file, key, f"{arg!r} is injected by imrec into {kind} factories; remove it "
                                    "from the recipe"))
        elif arg not in params and not var_keyword:
            close = suggest(str(arg), settable)
            problems.append(Problem(file, key, f"unknown argument {arg!r} for {kind} {cfg.name!r}"
                                    + (f"; did you mean {close!r}?" if close else ""),
                                    allowed=settable or ["(it takes no arguments)"]))
        elif arg in hints and not matches(value, hints[arg]):
            problems.append(type_problem(file, key, value, hints[arg]))
    for name, param in params.items():
        if param.default is inspect.Parameter.empty and name not in cfg.kwargs and name not in provided:
            why = " (imrec injects it; the caller did not provide it)" if name in reserved else ""
            expected = describe(hints[name]) if name in hints else None
            problems.append(Problem(file, f"{cfg.key}.{name}", f"missing required argument of {kind} "
                                    f"{cfg.name!r}{why}", expected=expected))
    return problems


def unknown_problem(file: str, key: str, exc: UnknownComponentError, note: str = "") -> Problem:
    """An unregistered (or ambiguous bare) component name, with the closest registered one."""
    ambiguous = [n for n in exc.known if "." not in exc.name and n.split(".", 1)[1] == exc.name]
    if len(ambiguous) > 1:
        return Problem(file, key, f"{exc.kind} name {exc.name!r} is ambiguous; write it in full{note}",
                       allowed=ambiguous)
    message = f"unknown {exc.kind} {short_repr(exc.name)}"
    close = suggest(exc.name, exc.known)
    if close:
        message += f"; did you mean {close!r}?"
    if not exc.known:
        message += f"; no {exc.kind} is registered (is the plugin that provides it installed?)"
    return Problem(file, key, message + note, allowed=exc.known or None)


def bind_component(kind: str, cfg: ComponentConfig,
                   context: Mapping[str, Any] | None = None) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The registered factory of ``cfg`` and the keyword arguments to call it with: the recipe's arguments
    (lists turned into tuples and ints into floats where the signature asks for those) plus the ``context``
    entries the factory's signature names. Raises ``RecipeError`` if the arguments do not bind."""
    context = dict(context or {})
    entry = get_registry().resolve(kind, cfg.name)
    reserved = tuple(dict.fromkeys([*CONTEXT_ARGS.get(kind, ()), *context]))
    problems = argument_problems(kind, entry, cfg, "<recipe>", reserved=reserved, provided=tuple(context))
    if problems:
        raise RecipeError(problems)
    params, _ = keyword_params(entry.factory)
    hints = type_hints(entry.factory)
    kwargs = {k: coerce(copy.deepcopy(v), hints.get(k)) for k, v in cfg.kwargs.items()}
    kwargs.update({k: v for k, v in context.items() if k in params})
    return entry.factory, kwargs


def build_component(kind: str, cfg: ComponentConfig, **context: Any) -> Any:
    """Build ``cfg``'s component: its factory called with the recipe's arguments plus those of ``context``
    (``modalities``, ``d_model``, ``dim``, ``in_dim``, ``task``) that its signature names."""
    factory, kwargs = bind_component(kind, cfg, context)
    return factory(**kwargs)
