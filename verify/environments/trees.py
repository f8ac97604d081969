"""A rootfs as a list of entries, from its tarball or from a directory, and the differences between two.

The tarball is the pinned thing (its sha256 is the environment digest the lock names); a directory
unpacked from it (bwrap's root) or the root a sandbox shows must hold exactly its entries: same type,
permission bits, owner, size and sha256 for files, same target for links.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from verify.common.errors import OperationalError
from verify.environments.perturb import HOSTS_PATH, SANDBOX_TOOLS_DIR


class TreeError(OperationalError):
    """A rootfs tarball holds something a rootfs cannot (an unknown member type, a dangling hard link)."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file system entry as both sides describe it."""

    kind: str
    """As ``find -printf %y`` says: f, d, l, c, b, p, s."""
    mode: int
    """Permission bits, set-id and sticky bits included."""
    uid: int
    gid: int
    size: int | None = None
    """Regular files only (a directory's size depends on the file system)."""
    sha256: str | None = None
    target: str | None = None
    """Symbolic links only."""


_TAR_KINDS = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b",
              tarfile.FIFOTYPE: "p", tarfile.LNKTYPE: "f", tarfile.REGTYPE: "f", tarfile.AREGTYPE: "f",
              tarfile.CONTTYPE: "f"}  # fmt: skip


class _HashingReader:
    """A file wrapper that hashes every byte read through it (the tarball is read once)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.digest.update(data)
        return data


def tarball_tree(tarball: Path) -> tuple[str, dict[str, TreeEntry]]:
    """The tarball's sha256 and its entries by absolute path (``/usr/bin/make``), read in one pass."""
    entries: dict[str, TreeEntry] = {}
    with tarball.open("rb") as raw:
        reader = _HashingReader(raw)
        with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                path = absolute(member.name)
                kind = _TAR_KINDS.get(member.type)
                if kind is None:
                    raise TreeError(f"{tarball}: member {member.name!r} has an unsupported type {member.type!r}")
                base = TreeEntry(kind=kind, mode=member.mode & 0o7777, uid=member.uid, gid=member.gid)
                if member.type == tarfile.LNKTYPE:
                    linked = entries.get(absolute(member.linkname))
                    if linked is None:
                        raise TreeError(f"{tarball}: hard link {member.name!r} to a missing {member.linkname!r}")
                    entries[path] = dataclasses.replace(base, size=linked.size, sha256=linked.sha256)
                elif kind == "f":
                    stream = archive.extractfile(member)
                    digest = hashlib.file_digest(stream, "sha256") if stream else hashlib.sha256()
                    entries[path] = dataclasses.replace(base, size=member.size, sha256=digest.hexdigest())
                elif kind == "l":
                    entries[path] = dataclasses.replace(base, target=member.linkname)
                else:
                    entries[path] = base
        # tarfile stops at the end-of-archive marker: hash the padding after it too.
        while reader.read(1 << 20):
            pass
    return reader.digest.hexdigest(), entries


def absolute(name: str) -> str:
    """A member name (``./usr/bin``, ``usr/bin``, ``./``) as an absolute path (``/usr/bin``, ``/``)."""
    return str(PurePosixPath("/", name.removeprefix("./")))


_STAT_KINDS = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l", stat.S_IFCHR: "c", stat.S_IFBLK: "b",
               stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}  # fmt: skip


def directory_tree(root: Path) -> dict[str, TreeEntry]:
    """The entries under ``root`` by absolute path inside it, files hashed (links are not followed)."""
    entries: dict[str, TreeEntry] = {}
    for directory, subdirectories, files in os.walk(root):
        relative = "/" + os.path.relpath(directory, root).removeprefix(".").lstrip("/")
        if relative == "/":
            entries["/"] = _entry(Path(directory))
        for name in [*subdirectories, *files]:
            entries[str(PurePosixPath(relative, name))] = _entry(Path(directory, name))
    return entries


def _entry(path: Path) -> TreeEntry:
    info = path.lstat()
    base = TreeEntry(kind=_STAT_KINDS.get(stat.S_IFMT(info.st_mode), "?"), mode=stat.S_IMODE(info.st_mode),
                     uid=info.st_uid, gid=info.st_gid)  # fmt: skip
    if base.kind == "f":
        with path.open("rb") as stream:
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
        return dataclasses.replace(base, size=info.st_size, sha256=digest)
    if base.kind == "l":
        return dataclasses.replace(base, target=str(path.readlink()))
    return base


def differences(
    expected: Mapping[str, TreeEntry],
    found: Mapping[str, TreeEntry],
    *,
    hidden: Callable[[str], bool] = lambda path: False,
    allowed_extra: Callable[[str, TreeEntry], bool] = lambda path, entry: False,
) -> list[str]:
    """What ``found`` has that ``expected`` does not, and the reverse, one phrase each.

    ``hidden`` paths (under a mount the sandbox put there) are not compared; ``allowed_extra`` entries
    (a runner's own mount points) may be present without being expected. ``/`` need not be expected:
    a tarball need not hold its own root.
    """
    problems = []
    for path, want in expected.items():
        if hidden(path):
            continue
        got = found.get(path)
        if got is None:
            problems.append(f"{path} is missing")
        elif got != comparable(want):
            problems.append(f"{path} differs: {_difference(comparable(want), got)}")
    for path, got in found.items():
        if path not in expected and path != "/" and not hidden(path) and not allowed_extra(path, got):
            problems.append(f"{path} is not in the tarball")
    return problems


def comparable(entry: TreeEntry) -> TreeEntry:
    """``entry`` as every side can show it: only a regular file has a size."""
    return entry if entry.kind == "f" else dataclasses.replace(entry, size=None)


def _difference(want: TreeEntry, got: TreeEntry) -> str:
    parts = []
    for name in (entry_field.name for entry_field in dataclasses.fields(TreeEntry)):
        wanted, seen = getattr(want, name), getattr(got, name)
        if wanted != seen:
            if name == "mode":
                wanted, seen = oct(wanted), oct(seen)
            parts.append(f"{name} {seen} (tarball: {wanted})")
    return ", ".join(parts)


def runner_addition(path: str, entry: TreeEntry) -> bool:
    """An entry a runner adds to the root file system (the tarball is unchanged): the empty mount points
    bwrap's unpacked copy gets (``/etc/hosts``, ``/run/cpython-verify``), and the ``/etc/mtab`` link to
    the mount table that container engines create."""
    if path == HOSTS_PATH:
        return entry.kind == "f" and entry.size == 0
    if path == "/etc/mtab":
        return entry.kind == "l" and entry.target in ("/proc/mounts", "/proc/self/mounts", "../proc/self/mounts")
    return path == SANDBOX_TOOLS_DIR and entry.kind == "d"


def summarize(problems: list[str], limit: int = 3) -> list[str]:
    """The first ``limit`` problems and how many more there are."""
    return problems[:limit] + ([f"{len(problems) - limit} more"] if len(problems) > limit else [])


__all__ = [
    "TreeEntry",
    "TreeError",
    "absolute",
    "comparable",
    "differences",
    "directory_tree",
    "runner_addition",
    "summarize",
    "tarball_tree",
]
