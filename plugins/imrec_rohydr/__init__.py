"""Built-in imrec plugin: the components of RoHyDR (Robust Hybrid Diffusion Recovery, arXiv 2505.17501).

Registered names (namespace ``rohydr.``): encoder ``conv1d``; recoverer ``hddm``; fuser ``mult``; aligners
``gan`` and ``mr``; heads ``regression`` and ``classification``. See docs/rohydr.md.
"""

from __future__ import annotations

from imrec import hookimpl

from .classification import ClassificationHead
from .encoder import Conv1dEncoder
from .gan import GANAligner
from .hddm import HDDM
from .mr import MRAligner
from .mult import MulTFuser
from .regression import RegressionHead

__all__ = [
    "ClassificationHead",
    "Conv1dEncoder",
    "GANAligner",
    "HDDM",
    "MRAligner",
    "MulTFuser",
    "RegressionHead",
]


@hookimpl
def register_encoders(register):
    register("rohydr.conv1d", Conv1dEncoder)


@hookimpl
def register_recoverers(register):
    register("rohydr.hddm", HDDM)


@hookimpl
def register_fusers(register):
    register("rohydr.mult", MulTFuser)


@hookimpl
def register_aligners(register):
    register("rohydr.gan", GANAligner)
    register("rohydr.mr", MRAligner)


@hookimpl
def register_heads(register):
    register("rohydr.regression", RegressionHead)
    register("rohydr.classification", ClassificationHead)
