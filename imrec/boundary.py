"""The error boundary every command runs inside: whatever goes wrong becomes one message, not a traceback.

An :class:`~imrec.errors.ImrecError` already says what to do. Everything else is translated here: operating-system
errors (permissions, a full disk, a path that is a file) name the path and what to change; running out of memory
or recursion says which limit was hit; any other exception is a bug in imrec or in a plugin, and the message names
the plugin whose code raised it when it can tell. ``--traceback`` (or ``IMREC_DEBUG=1``) prints the full trace as
well, for bug reports.
"""

from __future__ import annotations

import errno
import os
import reprlib
import sys
import traceback
from types import TracebackType

DEBUG_ENV = "IMREC_DEBUG"
_MAX_MESSAGE = 400  # characters of an exception's own text kept in the one-line message

# errno → what the user can do about it.
_OS_ADVICE = {
    errno.EACCES: "check its permissions, or choose another location (e.g. output_dir=PATH)",
    errno.EPERM: "this location cannot be written here; choose another one (e.g. output_dir=PATH)",
    errno.EROFS: "the file system is read-only; choose another location (e.g. output_dir=PATH)",
    errno.ENOSPC: "the disk is full: free some space (or choose another output_dir), then resume the run with "
                  "`imrec run --resume RUN_DIR` — finished epochs are kept",
    errno.EDQUOT: "the disk quota is exhausted: free some space, then resume the run with `imrec run --resume RUN_DIR`",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EISDIR: "this path is a folder; a file was expected here",
    errno.EEXIST: "something already exists at this path; choose another one or remove it",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
}


def debug_enabled() -> bool:
    """True when the user asked for full tracebacks (``--traceback`` sets the variable for worker processes)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def short(value: object, limit: int = _MAX_MESSAGE) -> str:
    """``str(value)`` cut to ``limit`` characters (error messages never print unbounded text)."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: object, limit: int = 60) -> str:
    """A bounded ``repr``: containers and strings are cut *before* being rendered, so a huge value costs nothing."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = max(limit, 12)
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 6, 6, 6, 6
    return short(r.repr(value), limit)


def os_error_message(exc: OSError) -> str:
    """``<path>: <reason>; <what to do>`` for an operating-system error."""
    path = exc.filename if exc.filename is not None else None
    reason = exc.strerror or short(exc) or type(exc).__name__
    where = f"{path}: " if path is not None else ""
    if exc.filename2 is not None:
        where = f"{path} -> {exc.filename2}: "
    advice = _OS_ADVICE.get(exc.errno or -1)
    return f"{where}{reason}" + (f"; {advice}" if advice else "")


def _plugin_of(tb: TracebackType | None) -> str | None:
    """The loaded plugin whose code raised (the innermost frame inside a plugin's package), or None."""
    try:
        from .plugins import plugin_modules
    except Exception:  # pragma: no cover - the boundary must never fail itself
        return None
    owners = plugin_modules()
    found = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        top = module.split(".", 1)[0]
        if top in owners:
            found = owners[top]
        tb = tb.tb_next
    return found


def describe(exc: BaseException) -> str:
    """One message for ``exc`` (without the ``imrec: error:`` prefix); may span lines only for ImrecErrors that
    list several problems."""
    from .errors import ImrecError

    if isinstance(exc, ImrecError):
        return str(exc)
    if isinstance(exc, OSError):
        return os_error_message(exc)
    if isinstance(exc, MemoryError):
        return ("out of memory" + (f" ({short(exc)})" if str(exc) else "")
                + "; use smaller data, batch_size or model, or a machine with more memory")
    if isinstance(exc, RecursionError):
        return "input nested too deeply (Python's recursion limit was reached); simplify it"
    plugin = _plugin_of(exc.__traceback__)
    where = f"in plugin {plugin!r}" if plugin else "inside imrec"
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {os.path.basename(frame[0].filename)}:{frame[0].lineno}" if frame else ""
    text = short(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    hint = (f"; this is a bug {where}{at}. Run again with --traceback (or {DEBUG_ENV}=1) for the full trace and "
            f"report it")
    if plugin:
        hint += (f" to the plugin's authors; to run without it, leave it out of IMREC_LOAD_PLUGINS "
                 f"(comma-separated plugin names)")
    return f"{type(exc).__name__}" + (f": {text}" if text else "") + hint


def report(exc: BaseException, prog: str = "imrec") -> int:
    """Print ``exc`` for the user (and its traceback when debugging); return the exit code to use."""
    from .errors import ImrecError

    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"{prog}: error: {describe(exc)}", file=sys.stderr)
    if isinstance(exc, ImrecError):
        return exc.exit_code
    return 1
