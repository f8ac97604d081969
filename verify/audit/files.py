"""Walking an installation: its regular files, and the directories inside the stdlib that are not the stdlib."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

EXPECTED_EXTRA_DIRS: Final = frozenset({"site-packages", "dist-packages"})
"""Third-party locations inside the stdlib directory: their contents are expected extras."""


def regular_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files below ``root`` (relative POSIX path, lstat), symlinks not followed."""
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
            elif stat.S_ISREG(info.st_mode):
                yield relative, info
