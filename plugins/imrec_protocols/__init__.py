"""Built-in imrec plugin: missing-modality protocols (``protocols.*``). Definitions: docs/protocols.md."""

from imrec import hookimpl

from .fixed_subsets import FixedSubsets
from .frame_drop import FrameDrop
from .imder_batch import ImderBatch
from .random_missing import RandomMissing

__all__ = ["FixedSubsets", "FrameDrop", "ImderBatch", "RandomMissing"]


@hookimpl
def register_protocols(register):
    register("protocols.random", RandomMissing)
    register("protocols.imder-batch", ImderBatch)
    register("protocols.fixed", FixedSubsets)
    register("protocols.frame", FrameDrop)
