"""Recipes: read YAML, merge ``extends`` parents, apply command-line overrides, validate, resolve.

A recipe is plain YAML turned into the typed dataclasses of :mod:`imrec.config.recipe`. Validation collects
every problem before raising one :class:`~imrec.errors.RecipeError`; each problem names the file, the dotted key
path (usable as an override path: list elements are addressed by ``name`` or index), what was found, what was
expected and the allowed values. Component arguments are checked by binding them to the registered factory's
signature *without* building anything.

One concern per module, each readable alone:

=====================  ==========================================================================================
``recipe``             the typed recipe: dataclasses, every key with its type (``KEYS``), slot constants
``dialect``            the YAML dialect (duplicate keys refused, ``1e-3`` a float)
``loading``            files, ``extends:`` and ``changes:``; :func:`load_recipe`, :func:`recipe_from_dict`
``overrides``          the override language (``a.b=v``, ``~a.b``, list elements by name, ``SLOT=name``)
``checker``            what validation shares (problems, mappings, typed values, components)
``check_recipe``       validation of the top level, ``model``, ``eval``, ``log``
``check_train``        validation of ``train``, phases, optimisers, ``select``
``check_steps``        validation of steps and loss names
``checks``             checks of single values; what validation reads from registered components
``hints``              YAML values against type annotations (match, coerce, describe)
``signatures``         component arguments against factory signatures; :func:`bind_component`
``resolved``           serialisation: ``Recipe.resolved`` and :func:`to_yaml`
``json_schema``        ``imrec schema``: the JSON Schema of recipe files, for editors
``factory_params``     a component's arguments, types and defaults, read from source (no torch) for the schema
=====================  ==========================================================================================

A new recipe key: declare it with its type in ``recipe.KEYS`` (and a field of its dataclass), read it in the
``check_*`` function of its section, write it in ``resolved.py``; ``imrec schema`` and the "unknown key" messages
follow from ``KEYS``. A new component kind in a recipe: a ``Component(kind)`` marker in ``KEYS``.

The schema (``?`` = optional, with its default)::

    name?: <file stem>            description?: ""
    data: {name: <dataset>, ...its arguments}
    model: {encoder, fuser, head, recoverer?: null, aligner?: null}      # each {name: ..., ...arguments}
    train:
      batch_size?: 32             eval_batch_size?: 256       early_stop?: null
      protocol?: {name: <protocol>, ...}   (the default of every phase that names none)
      select?: {metric: loss, mode: min}   (mode defaults to the metric's direction)
      phases:                     # at least one
        - {name?: phase<i>, epochs, min_steps?: null, protocol?, early_stop?, select?, freeze?: [], init_from?: null,
           reuse_forward?: true, bypass?: [],
           optimizers: {<name>: {name: adam|adamw|sgd, lr, weight_decay?: 0, betas?: null, momentum?: 0,
                                 params?: <every configured slot, if it is the phase's only optimizer>}},
           steps: [{name?: step<i>, losses: {task_gt|task_rec|<slot>.<aux>: weight},
                    optimizer?: <the only one>, update?: null, clip_grad_value?: null,
                    clip_grad_norm?: null, when?: always|missing}]}
    eval?: {conditions?: [{name: random, rates: [0.0]}], metrics?: null, recovery_metrics?: true}
    seeds?: [1111]                device?: auto|cpu|cuda|cuda:N     deterministic?: true     output_dir?: runs

``extends: parent.yaml`` (relative to the recipe's file) deep-merges the recipe over its parent, then the
recipe's ``changes:`` (a list of overrides) apply; command-line overrides are described in
:func:`apply_overrides`.
"""

from __future__ import annotations

from .loading import deep_merge, load_recipe, recipe_from_dict
from .overrides import apply_overrides
from .recipe import (
    CONTEXT_ARGS,
    ComponentConfig,
    EvalConfig,
    OptimizerConfig,
    PhaseConfig,
    Recipe,
    SelectConfig,
    StepConfig,
    TrainConfig,
)
from .resolved import to_yaml
from .signatures import bind_component, build_component

__all__ = [
    "ComponentConfig",
    "OptimizerConfig",
    "StepConfig",
    "SelectConfig",
    "PhaseConfig",
    "TrainConfig",
    "EvalConfig",
    "Recipe",
    "load_recipe",
    "recipe_from_dict",
    "apply_overrides",
    "deep_merge",
    "to_yaml",
    "bind_component",
    "build_component",
    "CONTEXT_ARGS",
]
