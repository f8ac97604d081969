"""The rebuild cache: one complete result directory per key, committed by a single rename.

A key is the sha256 of the canonical JSON of everything that decides the output: the source digest,
the recipe's build section (environment name, profile, configure flags), the environment digest,
the build settings and the variations. A result is built in a staging directory beside the cache
and renamed into place only when complete, so a killed build or a full disk can leave a stale
staging directory (removed later) but never a half-written entry under a key.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from verify import fsutil
from verify.fsutil import make_result_directory

BUILD_LOGIC_VERSION = 2
"""Bumped whenever the build commands change, so old entries are not mistaken for new ones.
2: LTO builds map the build path in LDFLAGS too."""

REQUIRED_FILES = ("rebuild.json", "manifest.json")
_STAGING_PREFIX = ".staging-"
_STALE_AFTER_SECONDS = 24 * 3600


def cache_key(
    *,
    source_sha256: str,
    build_section: Mapping[str, Any],
    environment_sha256: str,
    settings: Mapping[str, Any],
    variations: frozenset[str],
) -> str:
    """The cache key of one rebuild (64 hex digits). Pure: equal inputs, equal key."""
    material = {
        "logic": BUILD_LOGIC_VERSION,
        "source_sha256": source_sha256,
        "build": build_section,
        "environment_sha256": environment_sha256,
        "settings": settings,
        "variations": sorted(variations),
    }
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rebuild_cache_dir(cache_root: Path | None = None, explicit: Path | None = None) -> Path:
    """Where finished rebuilds are cached: ``explicit`` (``--rebuild-cache``), else ``<cache root>/rebuilds``.

    ``cache_root`` is the ``--cache`` option (or None); the root itself is :func:`verify.fsutil.cache_root`.
    """
    if explicit is not None:
        return explicit
    return fsutil.cache_root(cache_root) / "rebuilds"


class RebuildCache:
    """Result directories keyed by :func:`cache_key`, under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, key: str) -> Path:
        """Where the result of ``key`` lives once committed."""
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        """The committed result of ``key``, or None. An entry without its required files is ignored."""
        entry = self.entry(key)
        if all((entry / name).is_file() for name in REQUIRED_FILES):
            return entry
        return None

    def staging(self, key: str) -> Path:
        """A fresh private directory on the cache's filesystem for building ``key``."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_staging()
        # 0755, not mkdtemp's 0700: the committed entry is a result other users read.
        return make_result_directory(self.root, f"{_STAGING_PREFIX}{key[:16]}-")

    def commit(self, staging: Path, key: str) -> Path:
        """Move a complete ``staging`` directory into place as the entry of ``key`` (replacing an old one)."""
        entry = self.entry(key)
        old = None
        if entry.exists():
            # Rename the old entry aside first: there is no atomic directory swap, but at every
            # instant the key names either a complete old result, nothing, or the complete new one.
            old = Path(tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}old-", dir=self.root))
            entry.rename(old / "entry")
        staging.rename(entry)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return entry

    def discard(self, staging: Path) -> None:
        """Remove a staging directory (after a failure or a cancellation)."""
        shutil.rmtree(staging, ignore_errors=True)

    def _remove_stale_staging(self) -> None:
        # Staging directories of builds that were killed (SIGKILL, power loss) can never be
        # committed; remove them once they are old enough not to belong to a concurrent build.
        now = time.time()
        for path in self.root.glob(_STAGING_PREFIX + "*"):
            try:
                if now - path.stat().st_mtime > _STALE_AFTER_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                continue
