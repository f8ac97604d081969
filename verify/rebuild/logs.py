"""Build logs: kept per phase, capped in size, and their last lines shown when a phase fails."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOG_CAP = 8 * 1024 * 1024
"""Bytes kept per phase log: a CPython make log is ~1 MB, a runaway one must not fill the disk."""

_CUT_MARKER = b"\n[cpython-verify: %d bytes cut from the middle of this log]\n"


def cap_log(path: Path, cap: int = DEFAULT_LOG_CAP) -> int:
    """Shrink ``path`` to at most about ``cap`` bytes, keeping its head and its tail; return bytes cut.

    Both ends matter: the head says what was configured, the tail says why it stopped. The file is
    rewritten through a temporary file and ``os.replace`` so a crash cannot leave half a log.
    """
    size = path.stat().st_size
    if size <= cap:
        return 0
    head_size = cap // 4
    tail_size = cap - head_size
    cut = size - head_size - tail_size
    temporary = path.with_name(path.name + ".capping")
    with path.open("rb") as source, temporary.open("wb") as target:
        target.write(source.read(head_size))
        target.write(_CUT_MARKER % cut)
        source.seek(size - tail_size)
        target.write(source.read(tail_size))
    temporary.replace(path)
    return cut


def log_tail(path: Path, lines: int = 25, *, max_bytes: int = 64 * 1024) -> list[str]:
    """The last ``lines`` lines of a log (decoded leniently: build logs are not guaranteed UTF-8)."""
    try:
        with path.open("rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - max_bytes))
            data = stream.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:]
