"""Small filesystem helpers shared by the stages."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], data: bytes | Iterable[bytes], *, mode: int = 0o644) -> str:
    """Write ``data`` (bytes, or chunks streamed in order) to ``path`` atomically; return its sha256.

    Readers see the old file or the whole new one, never a part: the bytes go to a temporary file in
    the destination directory (so the rename stays on one filesystem), are fsynced, then renamed over
    ``path``. On any failure, including a full disk or an interrupt, the temporary file is removed.
    ``mode`` replaces mkstemp's 0600: results, manifests and attestations are meant to be published.
    """
    destination = Path(path)
    digest = hashlib.sha256()
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            for chunk in (data,) if isinstance(data, bytes) else data:
                digest.update(chunk)
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


class NotARegularFile(OSError):
    """The path names a FIFO, socket or device, where only a regular file makes sense."""


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open ``path`` for reading only if it is (or a symlink leads to) a regular file.

    Untrusted locations can hold a FIFO (opening it would wait for a writer forever) or a link to
    ``/dev/zero`` (reading it never ends). O_NONBLOCK makes the open return at once, and the type is checked
    on the open descriptor, so a file swapped after a check cannot slip through. Raises FileNotFoundError as
    ``open`` does, IsADirectoryError for a directory and :class:`NotARegularFile` for anything else.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file (a FIFO, socket or device)", os.fspath(path))
        # Regular files ignore O_NONBLOCK: the descriptor reads as usual.
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of a regular file (see :func:`open_regular_file`): the caller compares
    the length with ``max_bytes`` to refuse a larger file with its own message."""
    with open_regular_file(path) as stream:
        return stream.read(max_bytes + 1)
