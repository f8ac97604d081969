"""The rebuild cache: one sealed, complete result directory per key, checked before it is served.

A key is the sha256 of the canonical JSON of everything that decides the output: the source digest,
the recipe's build section (environment name, profile, configure flags), the environment digest,
the build settings and the variations.

* **Complete or absent.** A result is built in a staging directory beside the entries
  (``.staging-KEY-*``, held by its builder through ``flock``: :class:`verify.common.locking.Staging`), sealed
  (:func:`verify.result.integrity.write_seal`) and renamed into place. A killed build leaves a staging
  directory nobody holds, which the next run (or ``cache check``) removes.
* **Checked before served.** :meth:`RebuildCache.lookup` checks an entry's seal, its record, its manifest
  and every path of its install tree against that manifest (at hash speed) before returning it. An entry
  that fails is removed, with a note (:meth:`RebuildCache.notes_for`) that the result carries, and built
  again: it is never used.
* **One builder per key.** Looking up and building a key happen under the key's lock
  (``.KEY.lock``): a second run of the same build waits (up to
  :data:`verify.common.limits.BUILD_LOCK_TIMEOUT_SECONDS`, naming the holder's pid) and then finds the entry
  the first one made; nothing is built twice into one entry.
* **Read-only.** A cache that cannot be written (restored read-only in CI, a read-only NFS share) takes
  no locks: it still serves its intact entries, and a build it does not have fails with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from verify.common import faults, fsutil
from verify.common.cachecheck import KindCheck
from verify.common.limits import BUILD_LOCK_TIMEOUT_SECONDS
from verify.common.locking import Staging, StagingError, TargetLock, lock_timeout, remove_path, swap_in, sweep_abandoned
from verify.result import ResultDir
from verify.result.integrity import check_result, write_seal

BUILD_LOGIC_VERSION = 2
"""Bumped whenever the build commands change, so old entries are not mistaken for new ones.
2: LTO builds map the build path in LDFLAGS too."""

STAGING_PREFIX = ".staging-"
"""Staging directories, and old entries renamed aside while a new one replaces them."""
FAILED = "failed"
"""Logs of failed builds (``failed-KEY16``), kept for people; not entries."""


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

    ``cache_root`` is the ``--cache`` option (or None); the root itself is :func:`verify.common.fsutil.cache_root`.
    """
    if explicit is not None:
        return explicit
    return fsutil.cache_root(cache_root) / "rebuilds"


def is_key(name: str) -> bool:
    """True for an entry's name: 64 lower-case hex digits."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class RebuildCache:
    """Result directories keyed by :func:`cache_key`, under one root.

    One instance serves one run: it holds the locks of the keys it is building and remembers the notes
    of the entries it found damaged.
    """

    def __init__(self, root: Path, *, on_wait: Callable[[str], None] | None = None) -> None:
        """``on_wait`` is told (once per wait) when another process holds a key this run needs."""
        self.root = root
        self._on_wait = on_wait
        self._locks: dict[str, TargetLock] = {}
        self._staging: dict[Path, Staging] = {}
        self._notes: dict[str, list[str]] = {}

    def entry(self, key: str) -> Path:
        """Where the result of ``key`` lives once committed."""
        return self.root / key

    def lock_path(self, key: str) -> Path:
        """The lock file of ``key`` (``.KEY.lock``), present only while a run holds it."""
        return self.root / f".{key}.lock"

    def notes_for(self, key: str) -> tuple[str, ...]:
        """What this run met in the entry of ``key``: damage found, the entry removed and built again."""
        return tuple(self._notes.get(key, ()))

    def lookup(self, key: str) -> Path | None:
        """The entry of ``key`` once it has passed its check (seal, record, manifest, every file of the
        install tree), else None.

        Waits while another process builds or checks ``key``. On a miss the key stays claimed by this
        run (so nobody else starts the same build) until :meth:`commit` or :meth:`discard`, or
        :meth:`release`. A damaged entry is removed (unless the cache is read-only), noted, never returned.
        """
        lock = self._claim(key)
        entry = self.entry(key)
        if not os.path.lexists(entry):
            return None
        problems = check_result(ResultDir(entry), require_seal=True) if entry.is_dir() else ["not a directory"]
        if not problems:
            if lock.held:
                self.release(key)
            return entry
        reason = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
        if lock.held:
            remove_path(entry)
            self._note(key, f"the cached rebuild {entry} failed its check and was removed, never used: {reason}")
        else:
            self._note(
                key,
                f"the cached rebuild {entry} failed its check and was not used (the cache is "
                f"read-only, so it stays): {reason}",
            )
        return None

    def staging(self, key: str) -> Path:
        """A fresh directory on the cache's filesystem for building ``key`` (claims ``key`` if needed)."""
        lock = self._claim(key)
        if not lock.held:
            raise StagingError(
                f"the rebuild cache {self.root} is read-only: it serves the builds it holds, and it holds no "
                f"intact entry for this one ({key[:16]}…); give a writable --rebuild-cache or --cache"
            )
        try:
            staging = Staging.directory(self.root, f"{STAGING_PREFIX}{key}-")
        except StagingError as error:
            raise StagingError(f"cannot build into the rebuild cache: {error.message}") from None
        self._staging[staging.path] = staging
        return staging.path

    def commit(self, staging: Path, key: str) -> Path:
        """Seal a complete ``staging`` directory and rename it into place as the entry of ``key``
        (replacing an old one); then release ``key``."""
        owned = self._staging.pop(staging)
        try:
            write_seal(ResultDir(staging))
            faults.reached("commit")
            swap_in(owned, self.entry(key), aside_prefix=f"{STAGING_PREFIX}{key}-old-", point="commit")
        except BaseException:
            owned.discard()
            raise
        finally:
            self.release(key)
        return self.entry(key)

    def discard(self, staging: Path) -> None:
        """Remove a staging directory (after a failure or a cancellation) and release its key."""
        owned = self._staging.pop(staging, None)
        if owned is not None:
            owned.discard()
        else:
            remove_path(staging)
        key = staging.name[len(STAGING_PREFIX) :][:64]
        if is_key(key):
            self.release(key)

    def release(self, key: str) -> None:
        """Let other processes look up or build ``key`` again."""
        lock = self._locks.pop(key, None)
        if lock is not None:
            lock.release()

    def _claim(self, key: str) -> TargetLock:
        lock = self._locks.get(key)
        if lock is None:
            lock = TargetLock(
                self.lock_path(key),
                what=f"the rebuild cache entry {key[:16]}…",
                timeout=lock_timeout(BUILD_LOCK_TIMEOUT_SECONDS),
                on_wait=self._on_wait,
            )
            lock.acquire()
            self._locks[key] = lock
            if lock.held:
                # A killed build's staging directory (hundreds of MB for CPython) goes at the next run,
                # whatever that run builds: only staging directories no live process holds are removed.
                sweep_abandoned(self.root, STAGING_PREFIX)
        return lock

    def _note(self, key: str, note: str) -> None:
        self._notes.setdefault(key, []).append(note)

    def check_all(self, *, tree: bool = True) -> KindCheck:
        """Check every entry as :meth:`lookup` does and remove the damaged ones; remove abandoned staging.

        An entry whose key another process holds is left alone (it is being built or checked).
        """
        report = KindCheck("rebuilds", str(self.root))
        if not self.root.is_dir():
            return report
        for path in sweep_abandoned(self.root, STAGING_PREFIX):
            report.remove(path, "staging abandoned by a run that did not finish")
        for path in sorted(self.root.iterdir()):
            if path.name == FAILED or path.name.startswith("."):
                continue
            if not is_key(path.name):
                report.kept.append((str(path), "not a rebuild cache entry"))
                continue
            lock = TargetLock(self.lock_path(path.name), what=path.name, timeout=0)
            if not lock.try_acquire() and not lock.read_only:
                report.in_use.append(str(path))
                continue
            try:
                report.checked += 1
                problems = ["not a directory"]
                if path.is_dir():
                    problems = check_result(ResultDir(path), require_seal=True, tree=tree)
                if problems:
                    if lock.held:
                        remove_path(path)
                    report.damage(path, "; ".join(problems[:3]), removed=lock.held)
            finally:
                lock.release()
        return report


__all__ = ["BUILD_LOGIC_VERSION", "RebuildCache", "cache_key", "rebuild_cache_dir"]
