"""Where datasets live on disk, and the message a user gets when they are not there."""

from __future__ import annotations

import os
from pathlib import Path

from imrec.errors import DataError, DataNotFoundError

ENV_VAR = "IMREC_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/imrec/data"


def data_dir() -> Path:
    """The data directory: ``$IMREC_DATA_DIR`` if set, else ``~/.cache/imrec/data`` (user and vars expanded)."""
    raw = os.environ.get(ENV_VAR) or DEFAULT_DATA_DIR
    return Path(os.path.expandvars(os.path.expanduser(raw)))


def resolve(path: str | os.PathLike[str] | None, default_folder: str) -> Path:
    """``path`` expanded, or ``<data dir>/<default_folder>`` when ``path`` is None."""
    if path is None:
        return data_dir() / default_folder
    return Path(os.path.expandvars(os.path.expanduser(str(path))))


def data_dir_note() -> str:
    """How the data directory was chosen, for error messages."""
    if os.environ.get(ENV_VAR):
        return f"{ENV_VAR}={os.environ[ENV_VAR]}"
    return f"{ENV_VAR} is not set, so the default {DEFAULT_DATA_DIR} is used"


def missing_files_error(dataset: str, missing: list[Path], how_to_get: str, param: str = "root") -> DataError:
    """A DataError naming every file looked for, the variable to set and how to get the data."""
    listed = "\n".join(f"    {p}" for p in missing)
    return DataNotFoundError(
        f"{dataset}: data not found; looked for:\n{listed}\n"
        f"  Data directory: {data_dir()} ({data_dir_note()}).\n"
        f"  To get it: {how_to_get}\n"
        f"  Or point to an existing copy: set {ENV_VAR}, or give the dataset's `{param}` parameter in the recipe."
    )
