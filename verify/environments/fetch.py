"""Download locked ``.deb`` files into a cache keyed by sha256, checking every byte against the lock.

Downloads go through the one HTTP client (:class:`verify.source.locations.http.HttpClient`: timeouts, retries
with back-off, ``Range`` resume, https downgrades refused), capped at the size the lock pins. The
mirror is tried first; when it no longer serves a pinned version (Debian drops superseded versions
from its mirrors), the snapshot archive is tried if one is configured, and otherwise the error says
how to configure one. A file whose bytes differ from the pinned digest is never cached.

The cache is bounded like the download cache (:mod:`verify.source.locations.cache`): past
:data:`DEFAULT_MAX_DEB_CACHE_BYTES` (or ``$CPYTHON_VERIFY_DEB_CACHE_MAX_BYTES``) the least recently used
``.deb`` files are deleted after each addition, never one the current run has looked up or added. Old
locks' packages therefore go, and the packages of the environment being built stay.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from verify.common.cachecheck import KindCheck
from verify.common.errors import FetchError
from verify.common.fsutil import sha256_file, unlink_if_writable
from verify.common.locking import sweep_abandoned
from verify.environments.errors import PackageDigestMismatch, PackageUnavailable
from verify.environments.lock import LockedPackage
from verify.source.locations.apt_sources import SNAPSHOT_SETTING
from verify.source.locations.cache import (
    PARTIAL_PREFIX,
    PendingEntry,
    evict_least_recently_used,
    pending_file,
    record_use,
    size_bound_setting,
)
from verify.source.locations.http import BodyTooLarge, HttpClient

_CHUNK = 1 << 20
_ENTRY_RE = re.compile(r"^[0-9a-f]{64}\.deb$")

DEFAULT_MAX_DEB_CACHE_BYTES = 1 << 30
"""Total size of the cached ``.deb`` files: ``bookworm-cpython``'s 214 packages are 122 MiB, so about eight
locks' worth; least recently used files are deleted beyond it."""
MAX_DEB_CACHE_BYTES_SETTING = "CPYTHON_VERIFY_DEB_CACHE_MAX_BYTES"
"""The environment variable that overrides :data:`DEFAULT_MAX_DEB_CACHE_BYTES` (a number of bytes)."""

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


class DebCache:
    """``.deb`` files stored as ``<sha256>.deb``: a name is a promise about the bytes.

    One instance serves one run: it remembers the files the run uses, which eviction spares.
    """

    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        """``max_bytes`` bounds the cached files (default ``$CPYTHON_VERIFY_DEB_CACHE_MAX_BYTES``, else
        :data:`DEFAULT_MAX_DEB_CACHE_BYTES`)."""
        self.directory = directory
        self.max_bytes = (
            max_bytes
            if max_bytes is not None
            else size_bound_setting(MAX_DEB_CACHE_BYTES_SETTING, DEFAULT_MAX_DEB_CACHE_BYTES)
        )
        self._in_use: set[str] = set()

    def path_for(self, package: LockedPackage) -> Path:
        """Where ``package``'s bytes live once cached."""
        return self.directory / f"{package.sha256}.deb"

    def lookup(self, package: LockedPackage) -> Path | None:
        """The cached file if present and still intact; a damaged entry is deleted."""
        path = self.path_for(package)
        if not path.is_file():
            return None
        if sha256_file(path) != package.sha256:
            unlink_if_writable(path)  # never used; a read-only cache keeps it
            return None
        self._used(path)
        return path

    def add_verified(self, package: LockedPackage, source: Path) -> Path | None:
        """Copy a local file (e.g. one apt just downloaded) into the cache if its digest matches."""
        with self.pending(package) as entry, source.open("rb") as stream:
            # Hash the bytes as they are copied: the entry is exactly what was checked.
            while chunk := stream.read(_CHUNK):
                entry.write(chunk)
                if entry.size > package.size:
                    return None
            if (entry.size, entry.sha256) != (package.size, package.sha256):
                return None
            return self.admit(entry)

    def admit(self, entry: PendingEntry) -> Path:
        """Commit a checked pending entry under its package's name, then evict beyond the size bound."""
        path = entry.commit()
        self._used(path)
        self.evict()
        return path

    def evict(self) -> list[str]:
        """Delete least recently used ``.deb`` files until their total is within the size bound; files
        this run uses are kept even if that leaves the cache over the bound. Returns the names deleted."""
        return evict_least_recently_used(
            self.directory,
            max_bytes=self.max_bytes,
            is_entry=lambda name: _ENTRY_RE.match(name) is not None,
            in_use=self._in_use,
        )

    def _used(self, path: Path) -> None:
        self._in_use.add(path.name)
        record_use(path)

    def sweep(self) -> list[Path]:
        """Remove the partial downloads of runs that were killed (no live process holds them)."""
        return sweep_abandoned(self.directory, PARTIAL_PREFIX)

    def check_all(self) -> KindCheck:
        """Re-hash every cached ``.deb`` against the digest its name promises; remove the damaged ones and
        abandoned partial downloads."""
        report = KindCheck("debs", str(self.directory))
        for path in self.sweep():
            report.remove(path, "partial download abandoned by a run that did not finish")
        if not self.directory.is_dir():
            return report
        for path in sorted(self.directory.iterdir()):
            if not _ENTRY_RE.match(path.name):
                if not path.name.startswith(PARTIAL_PREFIX):
                    report.kept.append((str(path), "not a cached .deb"))
                continue
            report.checked += 1
            try:
                intact = sha256_file(path) == path.name.removesuffix(".deb")
            except OSError as error:
                report.damage(path, f"unreadable: {error.strerror or error}", removed=False)
                continue
            if not intact:
                report.damage(path, "its bytes are not the digest its name promises", removed=unlink_if_writable(path))
        return report

    def pending(self, package: LockedPackage) -> AbstractContextManager[PendingEntry]:
        """A temporary file in the cache directory that commits to ``package``'s name."""
        return pending_file(self.directory, lambda _sha256: self.path_for(package))


def fetch_debs(
    packages: Sequence[LockedPackage],
    cache: DebCache,
    *,
    mirror: str,
    snapshot: str | None,
    client: HttpClient | None = None,
    progress: Progress = _quiet,
) -> dict[LockedPackage, Path]:
    """Make every package available in ``cache``, downloading what is missing; return their paths."""
    owned = client is None
    client = client or HttpClient.quiet()
    try:
        cache.sweep()
        paths: dict[LockedPackage, Path] = {}
        missing = []
        for package in packages:
            cached = cache.lookup(package)
            if cached is None:
                missing.append(package)
            else:
                paths[package] = cached
        if missing:
            progress(f"downloading {len(missing)} of {len(packages)} .deb files")
        for package in missing:
            paths[package] = _download(package, cache, mirror=mirror, snapshot=snapshot, client=client,
                                       progress=progress)  # fmt: skip
        return paths
    finally:
        if owned:
            client.close()


def _download(
    package: LockedPackage,
    cache: DebCache,
    *,
    mirror: str,
    snapshot: str | None,
    client: HttpClient,
    progress: Progress = _quiet,
) -> Path:
    """The package from the mirror, else the snapshot archive. A location that fails operationally
    (down, or slower than the speed floor) is noted and the next one tried; a wrong digest is not
    (the lock says what the bytes must be, and a location serving others is a finding)."""
    bases = [mirror, *([snapshot] if snapshot else [])]
    failure: PackageUnavailable | None = None
    for index, base in enumerate(bases):
        url = f"{base.rstrip('/')}/{package.path}"
        try:
            result = _download_one(url, package, cache, client)
        except PackageUnavailable as error:
            if index == len(bases) - 1:
                raise
            progress(f"{package.filename}: {error.message}; trying {bases[index + 1]}")
            failure = error
            continue
        if result is not None:
            return result
    if failure is not None:
        raise failure
    hint = (
        f"the snapshot archive {snapshot} does not have it either"
        if snapshot
        else f"set {SNAPSHOT_SETTING} (or --snapshot) to a snapshot archive URL dated at or after "
        "the lock's release_date"
    )
    raise PackageUnavailable(
        f"{package.name} {package.version} ({package.path}) is no longer served by {mirror}: {hint}"
    )


def _download_one(url: str, package: LockedPackage, cache: DebCache, client: HttpClient) -> Path | None:
    """Download ``url`` into the cache; None when the server does not have the file."""
    with cache.pending(package) as entry:
        try:
            # Capped at the pinned size: a server sending more is stopped early, never written unbounded.
            if client.fetch_into(url, entry, name=package.filename, max_bytes=package.size) is None:
                return None
        except BodyTooLarge:
            raise PackageDigestMismatch(
                f"{package.filename} from {url}: more than the {package.size} bytes the lock pins"
            ) from None
        except FetchError as error:
            raise PackageUnavailable(f"cannot download {error.message}") from None
        if (entry.size, entry.sha256) != (package.size, package.sha256):
            raise PackageDigestMismatch(
                f"{package.filename} from {url}: sha256 {entry.sha256} ({entry.size} bytes) but the lock pins "
                f"{package.sha256} ({package.size} bytes)"
            )
        return cache.admit(entry)
