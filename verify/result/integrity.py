"""Whether a result directory is finished and intact: the one check every reader makes before use.

A result directory (a rebuild cache entry, or a published ``rebuild --out`` / ``check --out`` result) is
built in a staging directory and renamed into place when complete, so a killed run never leaves one
half-made under its name. What is on disk can still be damaged later (a flipped bit, a truncated copy, a
hand edit, a cache restored from somewhere else), so it is checked whenever it is read, through a chain
of digests that ends in the bytes:

* ``seal.json`` (written last, just before the rename) holds the size and sha256 of every regular file of
  the result outside ``root/``: ``rebuild.json``, ``manifest.json``, ``source-verdict.json``, the logs,
  ``pgo-profile.tar``. A file under a subdirectory (``logs/``) that the seal does not list is a
  difference too: it would be published with the result. Files added at the top level afterwards
  (``check.json``, attestations) are not covered.
* ``rebuild.json`` records the sha256 of ``manifest.json`` (and of the PGO profile it trained);
* ``manifest.json`` records the type, mode, size, sha256 or target of every path under ``root/``.

:func:`check_result` lists what does not hold; :func:`open_finished` is the door readers use (``compare``,
``peers``, the rebuild cache): it raises :class:`ResultDirError` with the first problem; :func:`read_finished`
is the same door with what the check read (``attest`` signs those very bytes). A
result without ``seal.json`` (one written before results were sealed, or made by hand) is checked
through the rest of the chain; the rebuild cache requires the seal of its own entries.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

from verify.common.fsutil import sha256_file, write_json_atomic
from verify.common.jsonutil import validation_summary
from verify.manifest import Manifest, ManifestEntry, ManifestError, verify_tree
from verify.result.directory import ResultDir, ResultDirError, read_json_object
from verify.result.record import RebuildRecord, Sha256
from verify.source.models import SourceVerdict

SEAL_FORMAT: Final = "cpython-verify/seal/v1"
SEAL: Final = "seal.json"
MAX_LISTED_PROBLEMS: Final = 3


class SealedFile(BaseModel):
    """One file the seal covers: its path in the result, size and sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    path: str
    size: int
    sha256: Sha256


class Seal(BaseModel):
    """``seal.json``: every regular file of a result outside ``root/``, as it was when the result was finished."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    format: str = SEAL_FORMAT
    files: tuple[SealedFile, ...]


def seal_path(result: ResultDir) -> Path:
    """Where the seal of ``result`` is."""
    return result.path / SEAL


def _files_outside_root(result: ResultDir) -> tuple[list[str], list[str]]:
    """(regular files, anything else) outside ``root/`` and the seal, as relative POSIX paths, sorted."""
    files: list[str] = []
    others: list[str] = []
    pending = [("", os.fspath(result.path))]
    while pending:
        relative_dir, absolute_dir = pending.pop()
        with os.scandir(absolute_dir) as listing:
            children = list(listing)
        for child in children:
            relative = f"{relative_dir}/{child.name}" if relative_dir else child.name
            if relative in (ResultDir.ROOT, SEAL):
                continue
            mode = child.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                pending.append((relative, child.path))
            elif stat.S_ISREG(mode):
                files.append(relative)
            else:
                others.append(relative)
    return sorted(files), sorted(others)


def write_seal(result: ResultDir) -> str:
    """Seal a finished result (the last write before it is renamed into place); return the seal's sha256.

    Raises :class:`ResultDirError` if the result holds anything but regular files and directories
    outside ``root/`` (nothing the tool writes is).
    """
    files, others = _files_outside_root(result)
    if others:
        raise ResultDirError(f"{result.path}: {others[0]} is not a regular file; refusing to seal the result")
    sealed = []
    for relative in files:
        path = result.path / relative
        sealed.append(SealedFile(path=relative, size=path.stat().st_size, sha256=sha256_file(path)))
    return write_json_atomic(seal_path(result), Seal(files=tuple(sealed)).model_dump(mode="json"))


def read_seal(result: ResultDir) -> Seal | None:
    """The seal of ``result``, or None when it has none; :class:`ResultDirError` when it is unreadable."""
    path = seal_path(result)
    if not path.exists() and not path.is_symlink():
        return None
    data, raw = read_json_object(path, "seal")
    if data.get("format") != SEAL_FORMAT:
        raise ResultDirError(f"{path} is not a cpython-verify seal (format {data.get('format')!r})")
    try:
        return Seal.model_validate_json(raw)
    except ValidationError as error:
        raise ResultDirError(f"{path}: malformed seal: {validation_summary(error)}") from None


@dataclass(frozen=True, slots=True)
class FinishedResult:
    """A finished, intact result as its check read it: each file's typed value and the exact bytes that were
    checked, so that a reader who needs them (``attest``) uses these rather than reading the files again."""

    directory: ResultDir
    record: RebuildRecord
    record_bytes: bytes
    source_verdict: SourceVerdict
    source_verdict_bytes: bytes
    manifest: Manifest
    """The manifest ``root/`` was compared with (its sha256 is the one ``rebuild.json`` records)."""


def check_result(result: ResultDir, *, require_seal: bool = False, tree: bool = True) -> list[str]:
    """What keeps ``result`` from being a finished, intact rebuild result (empty: nothing).

    ``tree``: also compare every path under ``root/`` with ``manifest.json`` (hash speed). Stops at the
    first broken link of the chain: a manifest that is not the recorded one is not compared with the tree.
    """
    return _examine(result, require_seal=require_seal, tree=tree)[0]


def _examine(result: ResultDir, *, require_seal: bool, tree: bool) -> tuple[list[str], FinishedResult | None]:
    """:func:`check_result`'s problems, and (with ``tree``, when there are none) what it read."""
    try:
        record, record_bytes = result.read_record_with_bytes()
    except ResultDirError as error:
        return [error.message], None
    problems: list[str] = []
    try:
        seal = read_seal(result)
    except ResultDirError as error:
        return [error.message], None
    if seal is None and require_seal:
        problems.append(f"{seal_path(result)} is missing: the result was never finished (or predates seals)")
    if seal is not None:
        problems += _check_seal(result, seal)
    problems += _check_recorded_digests(result, record)
    if problems:
        return problems, None
    try:
        verdict, verdict_bytes = result.read_source_verdict()
    except ResultDirError as error:
        return [error.message], None
    if not tree:
        return problems, None
    try:
        manifest = result.read_manifest()
    except ManifestError as error:
        return [error.message], None
    if not result.root.is_dir():
        return [f"{result.root} is missing"], None
    problems += [f"root/{line}" for line in verify_tree(result.root, manifest.entries)]
    if problems:
        return problems, None
    return problems, FinishedResult(result, record, record_bytes, verdict, verdict_bytes, manifest)


def _check_seal(result: ResultDir, seal: Seal) -> list[str]:
    problems = []
    listed = {item.path for item in seal.files}
    for item in seal.files:
        path = result.path / item.path
        try:
            info = path.lstat()
        except FileNotFoundError:
            problems.append(f"{item.path} is missing")
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{item.path} is not a regular file")
        elif info.st_size != item.size:
            problems.append(f"{item.path} has {info.st_size} bytes, sealed with {item.size}")
        elif sha256_file(path) != item.sha256:
            problems.append(f"{item.path} is not the file that was sealed (sha256 differs)")
    files, others = _files_outside_root(result)
    # Top-level files may be added after sealing (check.json, attestations); in subdirectories they
    # would be published as part of the result (a log nobody wrote).
    added = [path for path in files if "/" in path and path not in listed]
    problems += [f"{path} was added after the result was sealed" for path in added]
    problems += [f"{path} is not a regular file" for path in others]
    return problems


def _check_recorded_digests(result: ResultDir, record: RebuildRecord) -> list[str]:
    """``manifest.json`` and a trained ``pgo-profile.tar`` against the digests ``rebuild.json`` records."""
    manifest_sha256 = record.manifest_sha256
    problems = []
    try:
        actual = sha256_file(result.manifest_path)
    except OSError as error:
        return [f"cannot read {result.manifest_path}: {error.strerror or error}"]
    if actual != manifest_sha256:
        problems.append(
            f"manifest.json has sha256 {actual} but rebuild.json records {manifest_sha256}: the result was "
            "changed after the rebuild"
        )
    profile = record.pgo_profile
    if profile is not None and profile.file:
        path = result.path / profile.file
        try:
            digest = sha256_file(path)
        except OSError as error:
            problems.append(f"cannot read {path}: {error.strerror or error}")
        else:
            if digest != profile.sha256:
                problems.append(f"{profile.file} has sha256 {digest}, rebuild.json records {profile.sha256}")
    return problems


def differing_paths(recorded: Sequence[ManifestEntry], scanned: Sequence[ManifestEntry]) -> list[str]:
    """One line per path where a tree scanned now (``scanned``) is not its recorded manifest (``recorded``)."""
    before = {entry.path: entry for entry in recorded}
    now = {entry.path: entry for entry in scanned}
    problems = []
    for path in sorted(before.keys() | now.keys()):
        if path not in now:
            problems.append(f"root/{path}: missing")
        elif path not in before:
            problems.append(f"root/{path}: not in the manifest")
        elif before[path] != now[path]:
            problems.append(f"root/{path}: not as the manifest records it")
    return problems


def describe(path: Path, problems: list[str]) -> str:
    """One line: ``PATH is not a finished, intact rebuild result: FIRST (and N more)``."""
    shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    return f"{path} is not a finished, intact rebuild result: {shown}" + (f" (and {more} more)" if more > 0 else "")


def open_finished(path: Path, *, tree: bool = True) -> ResultDir:
    """The result directory at ``path``, checked by :func:`check_result`; :class:`ResultDirError` otherwise.

    Every reader of a result goes through here, so a directory a killed run left behind, or one changed
    since it was finished, is never taken for a finished result.
    """
    result = ResultDir.open(path)
    problems = check_result(result, tree=tree)
    if problems:
        raise ResultDirError(describe(path, problems))
    return result


def read_finished(path: Path) -> FinishedResult:
    """The result directory at ``path`` as :func:`open_finished` checks it (the tree compared with its
    manifest), with every file the check read; :class:`ResultDirError` otherwise."""
    result = ResultDir.open(path)
    problems, finished = _examine(result, require_seal=False, tree=True)
    if finished is None:
        raise ResultDirError(describe(path, problems))
    return finished
