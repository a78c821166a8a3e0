"""Fetching, copying and verifying the files of a :class:`~imrec_data.manifest.Bundle`.

Every file is written to a temporary file beside its destination, its SHA-256 checked against the manifest,
and only then renamed into place: an interrupted or corrupted transfer never leaves a file that looks valid.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imrec.errors import DataError

from .manifest import BUNDLES, Bundle, FileEntry, folds_json

CHUNK = 1 << 20
TIMEOUT_S = 60
SDK_FOLD_NAMES = {"train": "standard_train_fold", "valid": "standard_valid_fold", "test": "standard_test_fold"}

# Called as data arrives, for progress bars: (bytes in this block, total bytes of the file if known).
Advance = Callable[[int, "int | None"], None]


@dataclass
class FileStatus:
    """Outcome for one file: ``ok``, ``fetched``, ``copied``, ``missing`` or ``mismatch`` (with detail)."""

    bundle: str
    name: str
    path: Path
    status: str
    detail: str = ""


def bundle_named(name: str) -> list[Bundle]:
    """The bundles ``name`` designates: a bundle name, its folder name, or ``all``."""
    if name == "all":
        return list(BUNDLES.values())
    for b in BUNDLES.values():
        if name in (b.name, b.folder, f"data.{b.name}"):
            return [b]
    raise DataError(
        f"no downloadable dataset named {name!r}; `imrec data get` knows: {', '.join(BUNDLES)}, all "
        f"(MMSA pickles and .csd files are not redistributable from a pinned source: see docs/data.md)"
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def open_url(url: str) -> tuple[BinaryIO, int | None]:
    """Open ``url`` for reading; returns the stream and its size if the server says. (Tests replace this.)"""
    import urllib.request  # here, not at the top: http/ssl/email cost ~50 ms on every `imrec` command

    response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 - https URLs from the manifest only
    size = response.headers.get("Content-Length")
    return response, int(size) if size and size.isdigit() else None


def _fetch(url: str, bundle: Bundle, advance: Advance | None) -> Iterator[bytes]:
    """Stream ``url``; a connection problem becomes a DataError naming the URL and the ``--from`` way out."""
    hint = (
        f"If this machine cannot reach the network, copy the files from a mirror instead: "
        f"`imrec data get {bundle.name} --from DIR`, where DIR holds {bundle.folder}/<file> "
        f"(the layout of the data directory)."
    )
    import urllib.error

    try:
        stream, size = open_url(url)
        with stream:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                if advance:
                    advance(len(block), size)
                yield block
    except urllib.error.HTTPError as exc:
        raise DataError(f"could not download {url}: HTTP {exc.code} {exc.reason}. {hint}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {url}: {reason}. {hint}") from exc


def parse_sdk_folds(text: str, where: str) -> dict[str, list[str]]:
    """The three fold lists of the SDK's ``cmu_*_std_folds.py``, read as literals (the code is never run)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise DataError(f"{where}: not the SDK folds module (not Python: {exc})") from exc
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = [str(v) for v in ast.literal_eval(node.value)]
            except (ValueError, TypeError):
                continue
    missing = [v for v in SDK_FOLD_NAMES.values() if v not in found]
    if missing:
        raise DataError(f"{where}: lacks the list(s) {missing}; not the SDK folds module")
    return {split: found[var] for split, var in SDK_FOLD_NAMES.items()}


def _write_checked(dest: Path, blocks: Iterator[bytes], entry: FileEntry, origin: str) -> None:
    """Write ``blocks`` to a temporary file beside ``dest``; rename it into place only if the SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    from imrec.runs import temp_file_beside  # with the umask's permissions, not mkstemp's 0600

    fd, tmp = temp_file_beside(dest, ".part")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f:
            for block in blocks:
                h.update(block)
                f.write(block)
        if h.hexdigest() != entry.sha256:
            raise DataError(
                f"{origin}: SHA-256 {h.hexdigest()} differs from the pinned {entry.sha256} for {entry.name}; "
                f"the file was not written. The source changed or the transfer was corrupted."
            )
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _copy_blocks(path: Path, advance: Advance | None) -> Iterator[bytes]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            if advance:
                advance(len(block), size)
            yield block


def get_file(
    bundle: Bundle, entry: FileEntry, data_dir: Path, source_dir: Path | None, advance: Advance | None = None
) -> FileStatus:
    """Put one file in ``<data_dir>/<folder>/``: skip it if its checksum already matches, else copy it from
    ``source_dir`` (a mirror laid out like the data directory) or download it from its pinned source."""
    dest = data_dir / bundle.folder / entry.name
    if dest.is_file() and sha256_file(dest) == entry.sha256:
        return FileStatus(bundle.name, entry.name, dest, "ok", "already present")
    replaced = " (replaced a file with the wrong checksum)" if dest.exists() else ""
    if source_dir is not None:
        src = source_dir / bundle.folder / entry.name
        if not src.is_file():
            raise DataError(f"--from: {src} not found; the mirror must hold {bundle.folder}/{entry.name}")
        _write_checked(dest, _copy_blocks(src, advance), entry, str(src))
        return FileStatus(bundle.name, entry.name, dest, "copied", f"from {src}{replaced}")
    url = entry.source.url
    if entry.transform == "sdk_folds":
        text = b"".join(_fetch(url, bundle, advance)).decode("utf-8", errors="replace")
        data = folds_json(entry.source, parse_sdk_folds(text, url))
        _write_checked(dest, iter([data]), entry, url)
    else:
        _write_checked(dest, _fetch(url, bundle, advance), entry, url)
    return FileStatus(bundle.name, entry.name, dest, "fetched", f"from {url}{replaced}")


def verify_bundle(bundle: Bundle, data_dir: Path) -> list[FileStatus]:
    """Recompute the checksum of every file of ``bundle`` in the data directory."""
    out = []
    for entry in bundle.files:
        path = data_dir / bundle.folder / entry.name
        if not path.is_file():
            out.append(FileStatus(bundle.name, entry.name, path, "missing"))
            continue
        got = sha256_file(path)
        if got == entry.sha256:
            out.append(FileStatus(bundle.name, entry.name, path, "ok"))
        else:
            out.append(FileStatus(bundle.name, entry.name, path, "mismatch", f"sha256 {got}, pinned {entry.sha256}"))
    return out
