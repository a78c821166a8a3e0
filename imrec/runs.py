"""Run directories: layout, atomic writes, environment capture and the summary over seeds.

Layout (schema documented in ``docs/run-directory.md``)::

    runs/<recipe>/<YYYYmmdd-HHMMSS>-<id>/
      recipe.yaml            resolved recipe (what ran, defaults filled)
      overrides.json         the command-line overrides, verbatim
      environment.json       versions, plugins, device, seeds, determinism flags
      preprocessing.json     the feature transform the dataset applied (standardisation statistics, or null)
      seeds/<seed>/metrics.jsonl   one line per epoch: phase, epoch, train losses, VALID metrics
      seeds/<seed>/state.pt        resume state (deleted once the seed has finished)
      seeds/<seed>/best.pt         selected checkpoint, with its config
      seeds/<seed>/test.json       TEST results per evaluation condition
      summary.json           per condition and metric: mean, std (ddof=1), n over seeds
      .lock                  held by the process running the directory (pid, host); see run_lock
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Iterable, Mapping

import numpy as np

if TYPE_CHECKING:
    import torch

SUMMARY_SCHEMA = 1
DDOF = 1
LOCK_NAME = ".lock"


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process while it runs, so that two processes never write one run directory.

    A second ``imrec run --resume`` of the same directory, or a second ``imrec bench run`` reaching a cell
    another one is running, gets a clear error instead of interleaving epochs into the same files. The lock is
    ``run_dir/.lock`` (created with O_EXCL; pid, host, start time). A lock left by a killed process (same host,
    pid no longer alive; or an unreadable file) is taken over; one from another host is not, since its pid
    cannot be checked from here — the error says how to remove it.
    """
    from .errors import ImrecError

    path = Path(run_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": platform.node(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None or (holder.get("host") == me["host"] and not _alive(int(holder.get("pid", -1)))):
                path.unlink(missing_ok=True)  # left by a process that is gone
                continue
            where = "this machine" if holder.get("host") == me["host"] else f"host {holder.get('host')!r}"
            raise ImrecError(
                f"{run_dir} is being run by process {holder.get('pid')} on {where} (since {holder.get('started')}); "
                f"wait for it to finish or stop it. If that process no longer exists, delete {path}"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:
        raise ImrecError(f"could not take the lock {path}: another process keeps recreating it")
    try:
        yield
    finally:
        holder = _read_lock(path)
        if holder is not None and holder.get("pid") == me["pid"] and holder.get("host") == me["host"]:
            path.unlink(missing_ok=True)


_umask_lock = threading.Lock()


def file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the process's umask (read without changing it)."""
    with _umask_lock:  # os.umask can only be read by setting it: set it back at once, one thread at a time
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def temp_file_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``path``'s folder, but with the permissions a plain ``open()`` would give (mkstemp
    makes files 0600, so results, plots and downloads renamed from it were unreadable to the group)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    except (AttributeError, OSError):  # no fchmod (Windows): the file stays private, which is safe
        pass
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path)


def _naming(exc: BaseException, path: Path) -> BaseException:
    """An OSError that names the file being written (a failed write or fsync names none): the user must know
    which file, and on which disk, could not be written."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        named = OSError(exc.errno, exc.strerror or str(exc), str(path))
        named.__cause__ = exc
        return named
    return exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import torch

    fd, tmp = temp_file_beside(path)
    try:
        # Through a Python file object, a failed write (a full disk) is an OSError naming the cause, not torch's
        # opaque "unexpected pos" RuntimeError.
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path)


def safe_torch_load(path: Path, map_location: Any = "cpu", fix: str | None = None,
                    required: Iterable[str] = ()) -> Any:
    """Load a checkpoint without executing code (``weights_only=True``); a file that cannot be loaded is a
    :class:`imrec.errors.CheckpointError` naming it, saying why and what to do (``fix``) — never torch's own
    advice to load it unsafely. ``required``: keys the loaded mapping must have."""
    import pickle
    import warnings
    import zipfile

    import torch

    from .errors import CheckpointError

    path = Path(path)
    fix = fix or "delete it (or restore it from a backup) and run again"
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found; {fix}") from None
    if size == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty (0 bytes: an interrupted write or a damaged disk); "
                              f"{fix}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path}: refused to load: the file is not a checkpoint imrec wrote — it is damaged, or it holds Python "
            f"objects other than tensors and plain data, which could run code when loaded; {fix}") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, AttributeError,
            ImportError, TypeError, KeyError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or damaged: "
                              f"{reason[:200]}); {fix}") from None
    missing = [k for k in required if not (isinstance(obj, dict) and k in obj)]
    if missing:
        raise CheckpointError(f"{path}: not an imrec checkpoint of this kind (no {', '.join(map(repr, missing))}); "
                              f"{fix}")
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def preprocessing_json(splits: Mapping[str, Any]) -> dict[str, Any]:
    """What ``preprocessing.json`` holds: the standardisation statistics the dataset attached to its splits
    (``Split.standardization``: modality → (mean, std), from TRAIN only), or ``{"standardize": null}``. A
    predictor applies ``(x - mean) / std`` with them to new data; ``imrec eval`` recomputes the same values."""
    train = splits.get("train")
    stats = train.standardization if train is not None else None
    if not stats:
        return {"standardize": None}
    return {"standardize": {"source": "train", "modalities": {
        name: {"mean": [float(v) for v in mean], "std": [float(v) for v in std]} for name, (mean, std) in stats.items()
    }}}


def new_run_dir(output_dir: str | Path, recipe_name: str) -> Path:
    from .boundary import os_error_message
    from .errors import ImrecError

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(output_dir) / recipe_name / f"{stamp}-{secrets.token_hex(3)}"
    try:
        path.mkdir(parents=True, exist_ok=False)
        (path / "seeds").mkdir()
    except OSError as exc:  # read-only, a file in the way, a full disk: say which output_dir, and how to change it
        raise ImrecError(f"cannot create the run directory under output_dir {str(output_dir)!r}: "
                         f"{os_error_message(exc)} (set another with output_dir=PATH)") from None
    return path


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files an atomic write left behind when its process was killed (``.<name>.*.tmp``
    anywhere in the run directory: its seed and per-rate folders too). Call only while holding the run's lock:
    then no write is in flight. Returns what was removed."""
    removed = []
    for tmp in sorted(Path(run_dir).rglob(".*.tmp")):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def seed_dir(run_dir: Path, seed: int) -> Path:
    d = Path(run_dir) / "seeds" / str(seed)
    d.mkdir(parents=True, exist_ok=True)
    return d


def environment(device: torch.device, seeds: Iterable[int], deterministic: bool) -> dict[str, Any]:
    import torch

    from . import __version__
    from .plugins import plugin_info

    info: dict[str, Any] = {
        "imrec": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        # How that number was chosen (imrec.threads): source, physical cores, processes, load average at start.
        "thread_choice": None if _thread_choice() is None else _thread_choice().as_dict(),
        "seeds": list(seeds),
        "determinism": {
            "requested": deterministic,
            "torch.use_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn.deterministic": torch.backends.cudnn.deterministic,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        },
        "plugins": [{k: p[k] for k in ("name", "version", "builtin", "module")} for p in plugin_info()],
        "source_commit": source_commit(),
        "argv": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return info


def _thread_choice() -> Any:
    from .threads import applied

    return applied()


def source_commit() -> str | None:
    """The git commit of the imrec checkout that runs, ``+dirty`` when tracked files have uncommitted changes;
    None outside a git checkout or without git. Numbers name their code with it: each run's environment.json,
    and the benchmarks' result pages."""
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=5)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def summarize(per_seed: Mapping[int, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Mean, std (ddof=1; ``None`` for a single seed) and n per condition and metric over seeds."""
    conditions: dict[str, dict[str, dict[str, Any]]] = {}
    cond_names: list[str] = []
    for res in per_seed.values():
        for c in res:
            if c not in cond_names:
                cond_names.append(c)
    for c in cond_names:
        metrics: dict[str, list[float]] = {}
        for res in per_seed.values():
            for m, v in res.get(c, {}).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    metrics.setdefault(m, []).append(float(v))
        conditions[c] = {}
        for m, vals in metrics.items():
            finite = [v for v in vals if math.isfinite(v)]
            n = len(finite)
            mean = float(np.mean(finite)) if n else None
            std = float(np.std(finite, ddof=DDOF)) if n > DDOF else None
            conditions[c][m] = {"mean": mean, "std": std, "n": n}
    return {
        "schema": SUMMARY_SCHEMA,
        "ddof": DDOF,
        "seeds": sorted(int(s) for s in per_seed),
        "conditions": conditions,
    }
