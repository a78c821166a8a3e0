"""Built-in imrec plugin: the components of RoHyDR (Robust Hybrid Diffusion Recovery, arXiv 2505.17501).

Registered names (namespace ``rohydr.``): encoder ``conv1d``; recoverer ``hddm``; fuser ``mult``; aligners
``gan`` and ``mr``; heads ``regression`` and ``classification``. See docs/rohydr.md.

Factories are registered by name (``module:Class``) and imported when first used, as are the attributes below:
not when the plugin is loaded: loading every plugin is how the CLI finds its commands, and ``imrec --help`` must not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from imrec import hookimpl

# Public name → module that defines it.
_MODULES = {
    "ClassificationHead": ".classification",
    "Conv1dEncoder": ".encoder",
    "GANAligner": ".gan",
    "HDDM": ".hddm",
    "MRAligner": ".mr",
    "MulTFuser": ".mult",
    "RegressionHead": ".regression",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _lazy(name: str) -> str:
    """``name``'s factory as ``module:Name``: imported when a recipe builds or validates it, not before."""
    return f"{__name__}{_MODULES[name]}:{name}"


@hookimpl
def register_encoders(register):
    register("rohydr.conv1d", _lazy("Conv1dEncoder"))


@hookimpl
def register_recoverers(register):
    register("rohydr.hddm", _lazy("HDDM"))


@hookimpl
def register_fusers(register):
    register("rohydr.mult", _lazy("MulTFuser"))


@hookimpl
def register_aligners(register):
    register("rohydr.gan", _lazy("GANAligner"))
    register("rohydr.mr", _lazy("MRAligner"))


@hookimpl
def register_heads(register):
    register("rohydr.regression", _lazy("RegressionHead"))
    register("rohydr.classification", _lazy("ClassificationHead"))
