"""Walking an installation: where its standard library is, its regular files, and the directories inside
the stdlib that are not the stdlib."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from verify.audit.layout import LIBRARY_DIRS, STDLIB_MARKERS, THIRD_PARTY_DIRS, stdlib_candidates
from verify.audit.model import AuditError

EXPECTED_EXTRA_DIRS: Final = frozenset({"site-packages", "dist-packages"})
"""Third-party locations inside the stdlib directory: their contents are expected extras."""


def _walk(root: Path) -> Iterator[tuple[str, os.DirEntry[str], os.stat_result]]:
    """Every entry below ``root`` but directories, as (relative POSIX path, entry, lstat); never follows links."""
    pending = [("", os.fspath(root))]
    while pending:
        relative_dir, absolute = pending.pop()
        with os.scandir(absolute) as listing:
            children = list(listing)
        for child in children:
            relative = f"{relative_dir}/{child.name}" if relative_dir else child.name
            info = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                pending.append((relative, child.path))
            else:
                yield relative, child, info


def regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files below ``root`` (relative POSIX path, lstat), symlinks not followed."""
    for relative, _entry, info in _walk(root):
        if stat.S_ISREG(info.st_mode):
            yield relative, info


def tree_entries(root: Path) -> Iterator[tuple[str, str | None]]:
    """Regular files and symlinks below ``root``: (relative POSIX path, link target or None). Never follows links."""
    if not root.is_dir() or root.is_symlink():
        return
    for relative, entry, info in _walk(root):
        if stat.S_ISREG(info.st_mode):
            yield relative, None
        elif stat.S_ISLNK(info.st_mode):
            yield relative, os.fspath(Path(entry.path).readlink())


def _absolute_parts(link: str, install_prefix: str) -> list[str] | None:
    base = install_prefix.rstrip("/") + "/"
    return link[len(base) :].split("/") if link.startswith(base) else None


def resolve_link(prefix: Path, install_prefix: str, relative: str, target: str, *, hops: int = 16) -> str | None:
    """Where the link ``relative`` (to ``target``) leads, relative to ``prefix``; None when it leaves the prefix.

    ``install_prefix`` is where the prefix lives on the system it was built for (``/usr``): an absolute
    target is read against it, never against this machine's root. Every component is checked for
    links on the way, so a link to a linked directory cannot lead out of the prefix either.
    """
    if target.startswith("/"):
        start = _absolute_parts(target, install_prefix)
        if start is None:
            return None
        remaining = start
    else:
        remaining = relative.split("/")[:-1] + target.split("/")
    resolved: list[str] = []
    while remaining:
        part = remaining.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        candidate = [*resolved, part]
        path = prefix.joinpath(*candidate)
        if path.is_symlink():
            hops -= 1
            if hops < 0:
                return None
            link = os.fspath(path.readlink())
            if link.startswith("/"):
                absolute = _absolute_parts(link, install_prefix)
                if absolute is None:
                    return None
                resolved, remaining = [], absolute + remaining
            else:
                remaining = link.split("/") + remaining
            continue
        resolved = candidate
    return "/".join(resolved) if resolved else None


# --- the library directory -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LibraryDir:
    """Where the standard library is under a prefix: ``PREFIX/NAME/pythonX.Y``."""

    name: str
    """``lib`` or ``lib64`` (:data:`verify.audit.layout.LIBRARY_DIRS`)."""
    notes: tuple[str, ...] = ()
    """Why this one, when the other library directory has a ``pythonX.Y`` too; links not followed."""


def library_listings(prefix: Path, series: str) -> dict[str, frozenset[str]]:
    """The names in each ``LIBDIR/pythonX.Y`` under ``prefix`` that is a real directory, by library directory.

    A library directory or ``pythonX.Y`` that is a symbolic link is left out: the audit never reads the
    standard library through a link (Arch's ``lib64 -> lib`` is the same directory; a root's
    ``lib64 -> usr/lib64`` belongs to the ``usr`` prefix; anything else may lead out of the input).
    """
    listings: dict[str, frozenset[str]] = {}
    for libdir in LIBRARY_DIRS:
        directory = prefix / libdir / f"python{series}"
        if directory.parent.is_symlink() or directory.is_symlink() or not directory.is_dir():
            continue
        try:
            listings[libdir] = frozenset(entry.name for entry in directory.iterdir())
        except OSError:
            continue
    return listings


def linked_library_dirs(prefix: Path, series: str, boundary: Path) -> list[tuple[str, bool]]:
    """Each ``LIBDIR`` or ``LIBDIR/pythonX.Y`` under ``prefix`` that is a symbolic link: (one line on where it
    leads, whether it stays inside ``boundary``). A loop or a link out of ``boundary`` is not inside."""
    found: list[tuple[str, bool]] = []
    inside_root = os.path.realpath(boundary)
    for libdir in LIBRARY_DIRS:
        for path in (prefix / libdir, prefix / libdir / f"python{series}"):
            if not path.is_symlink():
                if not path.is_dir():
                    break
                continue
            try:
                target = os.path.realpath(path, strict=True)
            except FileNotFoundError:
                break  # dangling: nothing is read through it
            except OSError as error:
                if error.errno == errno.ELOOP:
                    found.append((f"{path} is a symbolic link loop", False))
                break
            if os.path.commonpath([inside_root, target]) != inside_root:
                found.append((f"{path} is a symbolic link to {target}, outside {boundary}", False))
            else:
                found.append((f"{path} is a symbolic link to {target}", True))
            break
    return found


def find_library_dir(
    prefix: Path, series: str, *, boundary: Path | None = None, choice: str | None = None
) -> LibraryDir:
    """The library directory whose ``pythonX.Y`` holds the standard library under ``prefix``.

    ``boundary`` is the input the prefix lies in (default: the prefix); ``choice`` a library directory
    the user named (``--libdir``). With one ``pythonX.Y``, that one (as before ``lib64`` was known);
    with both, the one with more than site-packages, or with :data:`~verify.audit.layout.STDLIB_MARKERS`.
    Raises :class:`AuditError` when there is none, when both hold a standard library, or when the
    standard library could only be behind a link that loops or leads out of ``boundary``.
    """
    listings = library_listings(prefix, series)
    links = linked_library_dirs(prefix, series, boundary or prefix)
    holding = stdlib_candidates(listings)
    if choice is not None:
        if choice not in listings:
            raise AuditError(f"no standard library at {prefix / choice / f'python{series}'} (--libdir {choice})")
        name, reason = choice, "named by --libdir"
    elif len(holding) > 1:
        raise AuditError(
            f"both {prefix}/lib/python{series} and lib64/python{series} hold a standard library "
            "(os.py, lib-dynload): choose one with --libdir"
        )
    elif holding:
        name = holding[0]
        found = sorted(STDLIB_MARKERS & listings[name])
        reason = f"it holds {' and '.join(found)}" if found else "the only one with more than site-packages"
    elif hostile := [line for line, inside in links if not inside]:
        raise AuditError(f"no standard library under {prefix}: {hostile[0]}; refused")
    elif listings:
        # Nothing but site-packages (or nothing at all): audited all the same, every stdlib file missing.
        name = next(libdir for libdir in LIBRARY_DIRS if libdir in listings)
        reason = "neither holds more than site-packages"
    elif links:
        raise AuditError(
            f"no standard library under {prefix}: {links[0][0]}; audit the prefix it leads into (--prefix)"
        )
    else:
        raise AuditError(
            f"no standard library at {prefix}/lib/python{series} or lib64/python{series}: "
            f"is {prefix} a Python {series} prefix?"
        )
    notes = [f"{line}: not followed" for line, inside in links if not inside]
    for other in sorted(listings.keys() - {name}):
        held = (
            "only site-packages"
            if listings[other] <= THIRD_PARTY_DIRS
            else "a standard library too"
            if STDLIB_MARKERS & listings[other]
            else "no os.py nor lib-dynload"
        )
        notes.append(
            f"the standard library is {name}/python{series} ({reason}); {other}/python{series} holds "
            f"{held}: its site-packages are counted as third-party, its other files are out of scope"
        )
    return LibraryDir(name, tuple(notes))
