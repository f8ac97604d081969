"""A content-addressed store of downloaded and copied release files, keyed by sha256.

Nothing unverified is kept. Bytes are streamed into a temporary file in this run's quarantine
directory (``<root>/quarantine/run-<host>-<pid>-<random>/``, same file system), hashed on the way,
and renamed to ``<hex>`` there once complete. Only when the caller has verified them (the source
verdict for tarballs and signatures, the signed ``InRelease`` for Debian indexes) does
:meth:`Cache.admit` move them to ``<root>/sha256/<hex>``, fsynced, with :func:`os.replace`. The run's
quarantine is removed when it ends (:meth:`Cache.quarantine`, also on Ctrl-C); one left by a killed
process is swept by the next run. A download killed half-way therefore never leaves an entry under a
digest, and a hostile or captive-portal response never grows the cache.

A verified release file (tarball, signature) is also recorded by name: ``<root>/names/<filename>`` holds
its digest, so the cache is a local location like ``--from`` (:class:`CachedReleaseFiles`), tried
before any network location. Lookups by name re-hash the entry like any other.

The verified entries are bounded in total size (:data:`DEFAULT_MAX_CACHE_BYTES`, or
``$CPYTHON_VERIFY_CACHE_MAX_BYTES``): after each admission the least recently used entries are
evicted (use is the modification time, refreshed by every lookup and admission), never one that the
current run has looked up or admitted.

Every lookup re-hashes the entry (about 20 ms for a CPython tarball): a corrupt or tampered entry is
deleted and reported as absent, never used. The digest in a :class:`~verify.source.models.FetchedFile` is
therefore always the digest of the bytes a later stage reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from verify.common import faults
from verify.common.cachecheck import KindCheck
from verify.common.errors import FetchError, OperationalError
from verify.common.fsutil import (
    cache_root,
    open_regular_file,
    sha256_file,
    unlink_if_writable,
    write_atomic,
    write_failure,
)
from verify.common.locking import LOCK_SUFFIX, Staging, StagingError, remove_path
from verify.common.locking import abandoned as lock_abandoned
from verify.source.locations.interface import SourceLocation
from verify.source.models import FetchedFile
from verify.source.releases import Version

DEFAULT_MAX_CACHE_BYTES = 2 * 1024 * 1024 * 1024
"""Total size of the verified entries under ``sha256/`` (about sixty CPython tarballs with their
signatures and Debian indexes); least recently used entries are evicted beyond it."""
MAX_CACHE_BYTES_SETTING = "CPYTHON_VERIFY_CACHE_MAX_BYTES"
"""The environment variable that overrides :data:`DEFAULT_MAX_CACHE_BYTES` (a number of bytes)."""
STALE_QUARANTINE_SECONDS = 7 * 24 * 3600
"""A quarantine directory of another host (a shared cache) older than this is swept as abandoned."""

_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_PLAIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$")
"""A release file's name as the name index stores it: one path component, never ``.``/``..`` or hidden."""
_NAME_RECORD_BYTES = 128
_CHUNK = 1024 * 1024
_RUN_RE = re.compile(r"^run-(?P<host>.+)-(?P<pid>\d+)-[^-]+$")
_ABANDONED_TEMP_SECONDS = 3600
"""A name record's temporary file is written and renamed in microseconds: one this old was abandoned."""
PARTIAL_PREFIX = "partial-"
"""A file being written (a download, a copy) before it is renamed to its digest; held by its writer."""


class PendingEntry:
    """A file being written to a temporary path: bytes are hashed as they are written.

    Obtained from :meth:`Cache.pending` (or :func:`pending_file`); :meth:`commit` renames it to the
    path its digest names, anything else discards it.
    """

    def __init__(self, stream: BinaryIO, staging: Staging, target_for: Callable[[str], Path]) -> None:
        self._target_for = target_for
        self._stream = stream
        self._staging = staging
        self.temp_path = staging.path
        self._hash = hashlib.sha256()
        self.size = 0
        self.committed = False
        self.expected: int | None = None
        """The whole file's size, when the writer knows it: a full disk's message says what was needed."""

    def write(self, data: bytes) -> None:
        """Append ``data`` and fold it into the running digest.

        A full disk or a read-only location is a :class:`~verify.common.fsutil.WriteFailed` (one line naming the
        file), not an ``OSError``: a download loop must not retry it as if the network had failed.
        """
        try:
            self._stream.write(data)
        except OSError as error:
            raise write_failure(
                error, self.temp_path, f"storing a file after {self.size} bytes", needed=self.expected
            ) from None
        self._hash.update(data)
        self.size += len(data)
        faults.reached("download")

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
        """Make the bytes durable and rename them to their target (``<quarantine>/<hex>`` for the
        cache, where :meth:`Cache.admit` picks them up once verified); return that path."""
        try:
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise write_failure(error, self.temp_path, f"storing a download of {self.size} bytes") from None
        self._stream.close()
        target = self._target_for(self.sha256)
        self.temp_path.replace(target)  # atomic within one file system
        self._staging.committed()
        self.committed = True
        _fsync_directory(target.parent)
        return target


@contextmanager
def pending_file(directory: Path, target_for: Callable[[str], Path]) -> Iterator[PendingEntry]:
    """A :class:`PendingEntry` in ``directory`` (created if needed) whose temporary file is removed
    unless it was committed; ``target_for(sha256)`` is where :meth:`PendingEntry.commit` puts it
    (on the same file system as ``directory``)."""
    try:
        staging, descriptor = Staging.file(directory, PARTIAL_PREFIX, mode=0o600)
    except StagingError as error:
        raise FetchError(error.message) from None
    stream = os.fdopen(descriptor, "w+b")
    entry = PendingEntry(stream, staging, target_for)
    try:
        yield entry
    finally:
        stream.close()
        if not entry.committed:
            staging.discard()


def max_cache_bytes() -> int:
    """The size bound of the verified entries: ``$CPYTHON_VERIFY_CACHE_MAX_BYTES`` or the default."""
    return size_bound_setting(MAX_CACHE_BYTES_SETTING, DEFAULT_MAX_CACHE_BYTES)


def size_bound_setting(variable: str, default: int) -> int:
    """A cache's size bound: the environment variable ``variable`` (a number of bytes), else ``default``."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isascii() or not value.isdigit():
        raise OperationalError(f"{variable}={value!r}: expected a number of bytes")
    return int(value)


def record_use(path: Path) -> None:
    """Make the cache entry at ``path`` the most recently used (its modification time is now)."""
    # Least recently used is judged by modification time (atime is unreliable). A read-only cache
    # still serves; it only cannot record the use.
    with contextlib.suppress(OSError):
        os.utime(path)


def evict_least_recently_used(
    directory: Path, *, max_bytes: int, is_entry: Callable[[str], bool], in_use: Collection[str]
) -> list[str]:
    """Delete the least recently used entries of ``directory`` (the files whose names ``is_entry``
    accepts) until their total size is within ``max_bytes``; names in ``in_use`` are kept even if that
    leaves the total over the bound. Returns the names deleted."""
    entries: list[tuple[float, int, Path]] = []
    try:
        with os.scandir(directory) as listing:
            for item in listing:
                if not is_entry(item.name):
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # evicted by a concurrent run
                entries.append((info.st_mtime, info.st_size, Path(item.path)))
    except FileNotFoundError:
        return []
    total = sum(size for _, size, _ in entries)
    evicted = []
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= max_bytes:
            break
        if path.name in in_use:
            continue
        path.unlink(missing_ok=True)
        total -= size
        evicted.append(path.name)
    return evicted


class Cache:
    """The content-addressed cache rooted at ``root`` (created on first use).

    One instance serves one run: it owns that run's quarantine and remembers the entries the run
    uses, which eviction spares.
    """

    def __init__(self, root: Path, *, max_bytes: int | None = None) -> None:
        """``max_bytes`` bounds the verified entries (default :func:`max_cache_bytes`)."""
        self.root = root
        self.max_bytes = max_bytes if max_bytes is not None else max_cache_bytes()
        self._run_quarantine: Path | None = None
        self._quarantine_staging: Staging | None = None
        self._in_use: set[str] = set()

    @classmethod
    def at(cls, explicit_root: Path | None = None) -> Cache:
        """The download cache: the cache root itself (:func:`verify.common.fsutil.cache_root`)."""
        return cls(cache_root(explicit_root))

    @property
    def _objects(self) -> Path:
        return self.root / "sha256"

    @property
    def _names(self) -> Path:
        return self.root / "names"

    @property
    def _temp(self) -> Path:
        # Where earlier versions wrote partial files; still swept by remove_stale_partials.
        return self.root / "tmp"

    @property
    def quarantine_root(self) -> Path:
        """The directory holding every run's quarantine."""
        return self.root / "quarantine"

    def path_for(self, sha256: str) -> Path:
        """Where the entry with digest ``sha256`` lives (whether or not it exists)."""
        if not _HEX_RE.match(sha256):
            raise ValueError(f"not a lower-case sha256 hex digest: {sha256!r}")
        return self._objects / sha256

    def lookup(self, sha256: str) -> Path | None:
        """The verified entry with digest ``sha256`` if present and intact; a corrupt entry is deleted.

        A hit counts as a use: the entry becomes the most recently used, and this run's.
        """
        path = self.path_for(sha256.lower())
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FetchError(f"cannot read cache entry {path}: {exc.strerror}") from None
        if actual != sha256.lower():
            # Disk corruption or tampering: the entry must never be served. Deleting it lets the
            # next fetch repair the cache from a real source (a read-only cache keeps it, unused).
            unlink_if_writable(path)
            return None
        self._used(path)
        return path

    def pending(self) -> AbstractContextManager[PendingEntry]:
        """A :class:`PendingEntry` in this run's quarantine, removed unless it was committed; its
        :meth:`~PendingEntry.commit` puts it at ``<quarantine>/<hex>``, not yet in the cache."""
        quarantine = self._quarantine_dir()
        return pending_file(quarantine, lambda sha256: quarantine / self.path_for(sha256).name)

    @contextmanager
    def quarantine(self) -> Iterator[Cache]:
        """Scope this run's quarantine: whatever was not admitted is deleted at the end, whether the
        run succeeded, failed, or was interrupted."""
        try:
            yield self
        finally:
            self.discard_quarantine()

    def is_quarantined(self, path: Path) -> bool:
        """True for a file in this run's quarantine (fetched, not admitted)."""
        return self._run_quarantine is not None and path.parent == self._run_quarantine

    def admit(self, fetched: FetchedFile) -> FetchedFile:
        """Move a verified file from the quarantine into the cache; return it with its new path.

        The caller vouches for the bytes (they verified). A file already in the cache (a lookup hit)
        is only marked as used. Evicts least recently used entries beyond the size bound afterwards.
        """
        target = self.path_for(fetched.sha256)
        if fetched.path == target:
            self._used(target)
            return fetched
        if not self.is_quarantined(fetched.path):
            raise ValueError(f"{fetched.path} is neither in this run's quarantine nor in the cache")
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
            fetched.path.replace(target)  # atomic within one file system
            _fsync_directory(target.parent)
        except OSError as exc:
            raise FetchError(f"cannot write to the cache {self.root}: {exc.strerror}") from None
        self._used(target)
        self.evict()
        return dataclasses.replace(fetched, path=target)

    def remember_name(self, fetched: FetchedFile) -> None:
        """Let later runs find the admitted release file ``fetched`` by its name (``names/<name>``).

        Only the name of a file whose verification succeeded is recorded (the caller vouches for it), and
        the entry is still re-hashed on every lookup; a stale name whose entry was evicted finds nothing.
        A cache that cannot be written still served this run: the name is simply not kept.
        """
        if not _PLAIN_NAME_RE.match(fetched.name) or fetched.path != self.path_for(fetched.sha256):
            return
        with contextlib.suppress(OSError):
            self._names.mkdir(parents=True, exist_ok=True)
            write_atomic(self._names / fetched.name, fetched.sha256.encode("ascii") + b"\n")

    def find_by_name(self, name: str) -> Path | None:
        """The verified entry last admitted under the release file name ``name``, intact; None if none is."""
        if not _PLAIN_NAME_RE.match(name):
            return None
        try:
            with open_regular_file(self._names / name) as stream:
                recorded = stream.read(_NAME_RECORD_BYTES).decode("ascii", "replace").strip()
        except OSError:
            return None
        return self.lookup(recorded) if _HEX_RE.match(recorded) else None

    def discard(self, fetched: FetchedFile) -> None:
        """Delete a quarantined file that failed verification (an entry in the cache is left alone)."""
        if self.is_quarantined(fetched.path):
            fetched.path.unlink(missing_ok=True)

    def discard_quarantine(self) -> None:
        """Delete this run's quarantine and everything in it."""
        if self._quarantine_staging is not None:
            self._quarantine_staging.discard()
            self._quarantine_staging = None
        if self._run_quarantine is not None:
            shutil.rmtree(self._run_quarantine, ignore_errors=True)
            self._run_quarantine = None
            with contextlib.suppress(OSError):
                self.quarantine_root.rmdir()  # only when empty: leave the cache as it was

    def evict(self) -> list[str]:
        """Delete least recently used verified entries until their total is within the size bound;
        entries this run uses are kept even if that leaves the cache over the bound. Returns the
        digests deleted."""
        return evict_least_recently_used(
            self._objects,
            max_bytes=self.max_bytes,
            is_entry=lambda name: _HEX_RE.match(name) is not None,
            in_use=self._in_use,
        )

    def _used(self, path: Path) -> None:
        self._in_use.add(path.name)
        record_use(path)

    def check_all(self) -> list[KindCheck]:
        """Re-hash every verified download, drop name records whose entry is gone or unreadable, and remove
        the quarantines no live process holds: ``downloads``, ``names``, ``quarantine``."""
        downloads = KindCheck("downloads", str(self._objects))
        if self._objects.is_dir():
            for path in sorted(self._objects.iterdir()):
                if not _HEX_RE.match(path.name):
                    downloads.kept.append((str(path), "not a cache entry"))
                    continue
                downloads.checked += 1
                try:
                    intact = sha256_file(path) == path.name
                except OSError as error:
                    downloads.damage(path, f"unreadable: {error.strerror or error}", removed=False)
                    continue
                if not intact:
                    downloads.damage(
                        path, "its bytes are not the digest its name promises", removed=unlink_if_writable(path)
                    )
        names = KindCheck("names", str(self._names))
        if self._names.is_dir():
            for path in sorted(self._names.iterdir()):
                if path.name.startswith("."):
                    # write_atomic's temporary file, left by a run killed while recording a name.
                    if path.name.endswith(".tmp") and time.time() - path.stat().st_mtime > _ABANDONED_TEMP_SECONDS:
                        path.unlink(missing_ok=True)
                        names.remove(path, "temporary file of a run that did not finish")
                    continue
                names.checked += 1
                try:
                    with open_regular_file(path) as stream:
                        recorded = stream.read(_NAME_RECORD_BYTES).decode("ascii", "replace").strip()
                except OSError:
                    recorded = ""
                if not _HEX_RE.match(recorded):
                    names.damage(path, "not a digest record", removed=unlink_if_writable(path))
                elif not self.path_for(recorded).is_file() and unlink_if_writable(path):
                    names.remove(path, f"its entry {recorded[:16]}… is gone (evicted or removed)")
        quarantine = KindCheck("quarantine", str(self.quarantine_root))
        if self.quarantine_root.is_dir():
            for directory in sorted(self.quarantine_root.iterdir()):
                if directory.name.endswith(LOCK_SUFFIX) or directory == self._run_quarantine:
                    continue
                if _abandoned(directory):
                    remove_path(directory)
                    Path(f"{directory}{LOCK_SUFFIX}").unlink(missing_ok=True)
                    quarantine.remove(directory, "quarantine of a run that is gone")
                else:
                    quarantine.in_use.append(str(directory))
        return [downloads, names, quarantine]

    def _quarantine_dir(self) -> Path:
        if self._run_quarantine is None:
            try:
                self.quarantine_root.mkdir(parents=True, exist_ok=True)
                self.remove_stale_partials(only_abandoned=True)
                prefix = f"run-{_host()}-{os.getpid()}-"
                # Held (flock) for as long as this process lives: any run, on any host sharing the
                # cache, can tell an abandoned quarantine from a live one.
                self._quarantine_staging = Staging.directory(self.quarantine_root, prefix, mode=0o700)
                self._run_quarantine = self._quarantine_staging.path
            except OSError as exc:
                raise FetchError(f"cannot write to the cache {self.root}: {exc.strerror}") from None
            except StagingError as error:
                raise FetchError(f"cannot write to the cache {self.root}: {error.message}") from None
        return self._run_quarantine

    def store_stream(
        self, source: BinaryIO, *, max_bytes: int | None = None, what: str = "file"
    ) -> tuple[Path, str, int]:
        """Copy ``source`` into the quarantine while hashing it in one pass; return (path, sha256, size).

        Because the copy and the digest come from the same read, the entry's bytes are exactly the
        hashed bytes even if the original changes meanwhile.
        """
        with self.pending() as entry:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                entry.expected = os.fstat(source.fileno()).st_size
            while chunk := source.read(_CHUNK):
                entry.write(chunk)
                if max_bytes is not None and entry.size > max_bytes:
                    raise FetchError(f"{what}: larger than the size cap of {max_bytes} bytes")
            size, digest = entry.size, entry.sha256
            path = entry.commit()
        return path, digest, size

    def remove_stale_partials(self, *, only_abandoned: bool = False) -> int:
        """Delete quarantines and temporary files left by killed runs; return how many were removed.

        With ``only_abandoned`` (done by every run before it starts its own quarantine), only the
        quarantines no live process holds are removed (:func:`_abandoned`). Without it, every quarantine
        but this run's is removed: only do that when no other cpython-verify process uses the cache.
        """
        removed = 0
        if not only_abandoned and self._temp.is_dir():
            for leftover in self._temp.glob("partial-*"):
                leftover.unlink(missing_ok=True)
                removed += 1
        if self.quarantine_root.is_dir():
            for directory in sorted(self.quarantine_root.iterdir()):
                if directory == self._run_quarantine or directory.name.endswith(LOCK_SUFFIX):
                    continue
                if only_abandoned and not _abandoned(directory):
                    continue
                remove_path(directory)
                Path(f"{directory}{LOCK_SUFFIX}").unlink(missing_ok=True)
                removed += 1
            for lock in self.quarantine_root.glob(f"run-*{LOCK_SUFFIX}"):
                # A lock whose quarantine is gone (its run was killed while removing it): drop it if unheld.
                target = Path(str(lock)[: -len(LOCK_SUFFIX)])
                if not target.exists() and lock_abandoned(lock):
                    lock.unlink(missing_ok=True)
        return removed


def _host() -> str:
    """This host's name, safe in a directory name."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _abandoned(directory: Path) -> bool:
    """True for a quarantine no live process holds (its lock file, ``NAME.lock``, is unheld: any host);
    for one an earlier version made without a lock file: its process is gone (this host) or it is very
    old (any host)."""
    if Path(f"{directory}{LOCK_SUFFIX}").exists():
        return lock_abandoned(directory)
    match = _RUN_RE.match(directory.name)
    try:
        age = time.time() - directory.stat().st_mtime
    except FileNotFoundError:
        return False
    if match is None or match.group("host") != _host():
        return age > STALE_QUARANTINE_SECONDS
    try:
        os.kill(int(match.group("pid")), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class CachedReleaseFiles(SourceLocation):
    """The release files earlier verified runs admitted to the cache, found by name: a local location."""

    def __init__(self, cache: Cache) -> None:
        """Serve from ``cache``'s name index."""
        self._cache = cache

    @property
    def description(self) -> str:
        """``cache <root>``."""
        return f"cache {self._cache.root}"

    @property
    def is_local(self) -> bool:
        """Local disk only: tried with ``--from`` directories, before any network location."""
        return True

    def fetch(self, version: Version, filename: str) -> FetchedFile | None:
        """The verified entry recorded under ``filename`` (re-hashed as it is looked up); None if none."""
        path = self._cache.find_by_name(filename)
        if path is None:
            return None
        try:
            size = path.stat().st_size
        except OSError:
            return None  # evicted by a concurrent run since the lookup
        return FetchedFile(name=filename, path=path, sha256=path.name, size=size, origin=f"cache {path}")
