"""imrec-avgfill: registers the recoverer ``avgfill.mean`` with imrec."""

from imrec import hookimpl

from .recoverer import AverageFill


@hookimpl
def register_recoverers(register):
    register("avgfill.mean", AverageFill)
