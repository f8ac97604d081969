"""Small filesystem helpers shared by the stages."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


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
