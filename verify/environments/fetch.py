"""Download locked ``.deb`` files into a cache keyed by sha256, checking every byte against the lock.

The mirror is tried first; when it no longer serves a pinned version (Debian drops superseded
versions from its mirrors), the snapshot archive is tried if one is configured, and otherwise the
error says how to configure one. A file whose bytes differ from the pinned digest is never cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from verify.environments.apt_sources import SNAPSHOT_SETTING
from verify.environments.errors import PackageDigestMismatch, PackageUnavailable
from verify.environments.lock import LockedPackage
from verify.fsutil import sha256_file

_CHUNK = 1 << 20
_TIMEOUT = (15, 60)  # connect, read (seconds): a stalled mirror must not hang a rebuild forever

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


class DebCache:
    """``.deb`` files stored as ``<sha256>.deb``: a name is a promise about the bytes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, package: LockedPackage) -> Path:
        """Where ``package``'s bytes live once cached."""
        return self.directory / f"{package.sha256}.deb"

    def lookup(self, package: LockedPackage) -> Path | None:
        """The cached file if present and still intact; a damaged entry is deleted."""
        path = self.path_for(package)
        if not path.is_file():
            return None
        if sha256_file(path) != package.sha256:
            path.unlink()
            return None
        return path

    def add_verified(self, package: LockedPackage, source: Path) -> Path | None:
        """Copy a local file (e.g. one apt just downloaded) into the cache if its digest matches."""
        if sha256_file(source) != package.sha256:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(package)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        with os.fdopen(handle, "wb") as out, source.open("rb") as inp:
            while chunk := inp.read(_CHUNK):
                out.write(chunk)
        Path(temporary).replace(target)
        return target


def fetch_debs(
    packages: Sequence[LockedPackage],
    cache: DebCache,
    *,
    mirror: str,
    snapshot: str | None,
    session: requests.Session | None = None,
    progress: Progress = _quiet,
) -> dict[LockedPackage, Path]:
    """Make every package available in ``cache``, downloading what is missing; return their paths."""
    owned = session is None
    session = session or requests.Session()
    try:
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
            paths[package] = _download(package, cache, mirror=mirror, snapshot=snapshot, session=session)
        return paths
    finally:
        if owned:
            session.close()


def _download(
    package: LockedPackage, cache: DebCache, *, mirror: str, snapshot: str | None, session: requests.Session
) -> Path:
    tried = []
    for base in [mirror, *([snapshot] if snapshot else [])]:
        url = f"{base.rstrip('/')}/{package.path}"
        result = _download_one(url, package, cache, session)
        if result is not None:
            return result
        tried.append(url)
    hint = (
        f"the snapshot archive {snapshot} does not have it either"
        if snapshot
        else f"set {SNAPSHOT_SETTING} (or --snapshot) to a snapshot archive URL dated at or after "
        "the lock's release_date"
    )
    raise PackageUnavailable(
        f"{package.name} {package.version} ({package.path}) is no longer served by {mirror}: {hint}"
    )


def _download_one(url: str, package: LockedPackage, cache: DebCache, session: requests.Session) -> Path | None:
    """Download ``url`` into the cache; None when the server does not have the file."""
    cache.directory.mkdir(parents=True, exist_ok=True)
    try:
        with session.get(url, stream=True, timeout=_TIMEOUT) as response:
            if response.status_code in (404, 410):
                return None
            if response.status_code != 200:
                raise PackageUnavailable(f"{url}: HTTP {response.status_code}")
            handle, temporary = tempfile.mkstemp(dir=cache.directory, suffix=".part")
            try:
                digest = hashlib.sha256()
                size = 0
                with os.fdopen(handle, "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        # Stop early on a server that sends more than the pinned size: no unbounded writes.
                        if size > package.size:
                            break
                        out.write(chunk)
                actual = digest.hexdigest()
                if size != package.size or actual != package.sha256:
                    raise PackageDigestMismatch(
                        f"{package.filename} from {url}: sha256 {actual} ({size} bytes) but the lock pins "
                        f"{package.sha256} ({package.size} bytes)"
                    )
                target = cache.path_for(package)
                Path(temporary).replace(target)
                return target
            finally:
                with contextlib.suppress(FileNotFoundError):
                    Path(temporary).unlink()
    except requests.RequestException as exc:
        raise PackageUnavailable(f"cannot download {url}: {type(exc).__name__}") from None
