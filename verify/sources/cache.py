"""A content-addressed store of downloaded and copied release files, keyed by sha256.

Entries live at ``<root>/sha256/<hex>`` and are written only once their digest is known: bytes are
streamed into a temporary file in ``<root>/tmp`` (same file system), hashed on the way, fsynced, then
renamed into place with :func:`os.replace`. A download killed half-way therefore leaves at most a
temporary file, never an entry under a digest.

Every lookup re-hashes the entry (about 20 ms for a CPython tarball): a corrupt or tampered entry is
deleted and reported as absent, never used. The digest in a :class:`~verify.models.FetchedFile` is
therefore always the digest of the bytes a later stage reads.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from verify.errors import FetchError
from verify.fsutil import cache_root, sha256_file

_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class PendingEntry:
    """A file being written to a temporary path: bytes are hashed as they are written.

    Obtained from :meth:`Cache.pending` (or :func:`pending_file`); :meth:`commit` renames it to the
    path its digest names, anything else discards it.
    """

    def __init__(self, stream: BinaryIO, temp_path: Path, target_for: Callable[[str], Path]) -> None:
        self._target_for = target_for
        self._stream = stream
        self.temp_path = temp_path
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        """Append ``data`` and fold it into the running digest."""
        self._stream.write(data)
        self._hash.update(data)
        self.size += len(data)

    def reset(self) -> None:
        """Forget everything written so far (a server ignored ``Range``, or the file changed)."""
        self._stream.seek(0)
        self._stream.truncate()
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        """The digest of the bytes written so far."""
        return self._hash.hexdigest()

    def commit(self) -> Path:
        """Make the bytes durable and rename them to their target (``<root>/sha256/<hex>`` in the
        cache); return that path."""
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self._stream.close()
        target = self._target_for(self.sha256)
        self.temp_path.replace(target)  # atomic within one file system
        _fsync_directory(target.parent)
        return target


@contextmanager
def pending_file(directory: Path, target_for: Callable[[str], Path]) -> Iterator[PendingEntry]:
    """A :class:`PendingEntry` in ``directory`` (created if needed) whose temporary file is removed
    unless it was committed; ``target_for(sha256)`` is where :meth:`PendingEntry.commit` puts it
    (on the same file system as ``directory``)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix="partial-", dir=directory)
    except OSError as exc:
        raise FetchError(f"cannot write to {directory}: {exc.strerror}") from None
    temp_path = Path(name)
    stream = os.fdopen(descriptor, "w+b")
    try:
        yield PendingEntry(stream, temp_path, target_for)
    finally:
        stream.close()
        temp_path.unlink(missing_ok=True)


class Cache:
    """The content-addressed cache rooted at ``root`` (created on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def at(cls, explicit_root: Path | None = None) -> Cache:
        """The download cache: the cache root itself (:func:`verify.fsutil.cache_root`)."""
        return cls(cache_root(explicit_root))

    @property
    def _objects(self) -> Path:
        return self.root / "sha256"

    @property
    def _temp(self) -> Path:
        return self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        """Where the entry with digest ``sha256`` lives (whether or not it exists)."""
        if not _HEX_RE.match(sha256):
            raise ValueError(f"not a lower-case sha256 hex digest: {sha256!r}")
        return self._objects / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The entry with digest ``sha256`` if present and intact; a corrupt entry is deleted."""
        path = self.path_for(sha256.lower())
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FetchError(f"cannot read cache entry {path}: {exc.strerror}") from None
        if actual != sha256.lower():
            # Disk corruption or tampering: the entry must never be served. Deleting it lets the
            # next fetch repair the cache from a real source.
            path.unlink(missing_ok=True)
            return None
        return path

    def pending(self) -> AbstractContextManager[PendingEntry]:
        """A :class:`PendingEntry` whose temporary file is removed unless it was committed."""
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FetchError(f"cannot write to the cache {self.root}: {exc.strerror}") from None
        return pending_file(self._temp, self.path_for)

    def store_stream(
        self, source: BinaryIO, *, max_bytes: int | None = None, what: str = "file"
    ) -> tuple[Path, str, int]:
        """Copy ``source`` into the cache while hashing it in one pass; return (path, sha256, size).

        Because the copy and the digest come from the same read, the entry's bytes are exactly the
        hashed bytes even if the original changes meanwhile.
        """
        with self.pending() as entry:
            while chunk := source.read(_CHUNK):
                entry.write(chunk)
                if max_bytes is not None and entry.size > max_bytes:
                    raise FetchError(f"{what}: larger than the size cap of {max_bytes} bytes")
            size, digest = entry.size, entry.sha256
            path = entry.commit()
        return path, digest, size

    def remove_stale_partials(self) -> int:
        """Delete temporary files left by killed downloads; return how many were removed.

        Only call this when no other cpython-verify process is downloading into the same cache.
        """
        removed = 0
        if self._temp.is_dir():
            for leftover in self._temp.glob("partial-*"):
                leftover.unlink(missing_ok=True)
                removed += 1
        return removed


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
