"""Walking an installation: its regular files, and the directories inside the stdlib that are not the stdlib."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

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
    return link[len(base):].split("/") if link.startswith(base) else None


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
