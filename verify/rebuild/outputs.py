"""The install tree as data: the manifest a rebuild writes, and the file-by-file difference of two trees.

The manifest format belongs to ``verify.manifest`` (the manifest stage); :func:`write_manifest_for`
is the one call the rebuild makes. The ``--twice`` comparison here works on the two trees themselves
and classifies differences by the build's own kinds (sysconfigdata, config-script, ...), which the
generic manifest kinds do not separate.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.fsutil import sha256_file
from verify.manifest import Manifest, scan_tree, write_manifest


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One path of an install tree."""

    path: str
    kind: str
    """``file``, ``dir`` or ``symlink``."""
    mode: int
    size: int
    sha256: str | None
    target: str | None


@dataclass(frozen=True, slots=True)
class Difference:
    """One path that is not the same in two trees."""

    path: str
    kind: str
    """What sort of path: ``elf``, ``pyc``, ``sysconfigdata``, ``makefile``, ``config-script``, ``archive``, ``text``,
    ``directory``, ``symlink``, ``other``."""
    change: str
    """``content``, ``mode``, ``type``, ``only-in-first`` or ``only-in-second``."""


def snapshot_tree(root: Path, *, workers: int | None = None) -> dict[str, TreeEntry]:
    """Every path under ``root`` (relative, POSIX), with the sha256 of every regular file.

    Hashing is done in threads: ``hashlib`` releases the GIL, so two cores hash twice as fast.
    """
    found: list[tuple[str, os.stat_result, Path]] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(directory)
        for name in sorted(dirnames) + sorted(filenames):
            full = base / name
            found.append((full.relative_to(root).as_posix(), full.lstat(), full))
    regular = [full for _, info, full in found if stat.S_ISREG(info.st_mode)]
    with ThreadPoolExecutor(max_workers=workers or len(os.sched_getaffinity(0))) as pool:
        digests = dict(zip(regular, pool.map(sha256_file, regular), strict=True))
    entries: dict[str, TreeEntry] = {}
    for relative, info, full in found:
        if stat.S_ISLNK(info.st_mode):
            entry = TreeEntry(relative, "symlink", 0o777, 0, None, str(full.readlink()))
        elif stat.S_ISDIR(info.st_mode):
            entry = TreeEntry(relative, "dir", stat.S_IMODE(info.st_mode), 0, None, None)
        elif stat.S_ISREG(info.st_mode):
            entry = TreeEntry(relative, "file", stat.S_IMODE(info.st_mode), info.st_size, digests[full], None)
        else:
            entry = TreeEntry(relative, "special", stat.S_IMODE(info.st_mode), 0, None, None)
        entries[relative] = entry
    return entries


def classify(path: str, root: Path | None = None) -> str:
    """The kind of an installed file, from its name and (when ``root`` is given) its first bytes."""
    name = path.rsplit("/", 1)[-1]
    # Before the .pyc rule: sysconfigdata's own .pyc files differ exactly when it does.
    if name.startswith(("_sysconfigdata", "_sysconfig_vars")):
        return "sysconfigdata"
    if name.endswith(".pyc"):
        return "pyc"
    if name.startswith("python") and name.endswith("-config"):
        return "config-script"
    if name == "Makefile" or name.endswith(".mk"):
        return "makefile"
    if name.endswith(".a"):
        return "archive"
    if root is not None:
        try:
            with (root / path).open("rb") as stream:
                magic = stream.read(4)
        except OSError:
            magic = b""
        if magic == b"\x7fELF":
            return "elf"
    if name.endswith((".so", ".o")) or ".so." in name:
        return "elf"
    if name.endswith((".py", ".h", ".txt", ".pc", ".json", ".cfg", ".sh")):
        return "text"
    return "other"


def diff_trees(first: Path, second: Path) -> tuple[Difference, ...]:
    """Every path that differs between two install trees, sorted by path."""
    a, b = snapshot_tree(first), snapshot_tree(second)
    differences = []
    for path in sorted(a.keys() | b.keys()):
        left, right = a.get(path), b.get(path)
        if left == right:
            continue
        if left is None:
            change = "only-in-second"
        elif right is None:
            change = "only-in-first"
        elif left.kind != right.kind:
            change = "type"
        elif (left.sha256, left.target) != (right.sha256, right.target):
            change = "content"
        else:
            change = "mode"
        entry = left or right
        assert entry is not None
        kind = {"dir": "directory", "symlink": "symlink"}.get(entry.kind) or classify(path, first if left else second)
        differences.append(Difference(path=path, kind=kind, change=change))
    return tuple(differences)


def group_by_kind(differences: tuple[Difference, ...]) -> dict[str, list[str]]:
    """Differing paths grouped by file kind (kinds and paths sorted)."""
    groups: dict[str, list[str]] = {}
    for difference in differences:
        groups.setdefault(difference.kind, []).append(difference.path)
    return {kind: sorted(paths) for kind, paths in sorted(groups.items())}


def write_manifest_for(root: Path, inputs: Mapping[str, Any], path: Path) -> str:
    """Write the manifest (``verify.manifest``'s canonical format) of the install tree ``root``,
    with the build's ``inputs``, atomically to ``path``; return the sha256 of the file."""
    manifest = Manifest(inputs=dict(inputs), entries=scan_tree(root))
    return write_manifest(manifest, path)
