"""How runs that share a cache (or an output directory) stay out of each other's way, and how a killed
run's leftovers are recognised: advisory locks and owned staging areas, both on ``flock(2)``.

The kernel releases an ``flock`` when its holder exits, however it exits (SIGKILL and power loss
included), so a lock file says whether its owner lives without trusting a pid that may be reused.

* :class:`TargetLock`: one lock file per thing being made or replaced (a rebuild's cache key, a rootfs
  digest, a result or site directory). A second process waits for it, saying once which pid holds it,
  up to a timeout (:data:`verify.common.limits.BUILD_LOCK_TIMEOUT_SECONDS` or
  :data:`verify.common.limits.PUBLISH_LOCK_TIMEOUT_SECONDS`, or ``$CPYTHON_VERIFY_LOCK_TIMEOUT``), then fails
  with one line naming that pid. On a read-only location no lock can be taken: the lock is then
  *unheld* and its user may only read complete, verified entries (:attr:`TargetLock.held`).
* :class:`Staging`: a file or directory being written before it is renamed into place, with a lock file
  beside it (``NAME.lock``) that its writer holds for as long as it lives. The lock file is made (and
  locked) before the staging area, and removed after it, so a staging area whose lock nobody holds
  belongs to no live process: :func:`sweep_abandoned` removes it (one with no lock file at all was made
  by an earlier version, and goes once it is :data:`LEGACY_STALE_SECONDS` old).
* :func:`replacing`: a directory replaced as a whole (a result, a status site), staged beside it and
  swapped in with two renames under its lock; a version a killed run left aside is put back first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from verify.common import faults
from verify.common.errors import OperationalError

LOCK_TIMEOUT_SETTING = "CPYTHON_VERIFY_LOCK_TIMEOUT"
"""The environment variable that overrides every lock timeout (a number of seconds)."""
LOCK_SUFFIX = ".lock"
LEGACY_STALE_SECONDS = 24 * 3600
"""A staging area without a lock file was made by an earlier version, which could not say whether its
writer lives: it is removed once this old (that version's own rule)."""
_POLL_SECONDS = 0.1
_HOLDER_BYTES = 256
_READ_ONLY_ERRORS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


class LockTimeout(OperationalError):
    """Another process held a lock for longer than the timeout."""


class StagingError(OperationalError):
    """A staging area could not be made (the location is read-only or full)."""


def lock_timeout(default: float) -> float:
    """``$CPYTHON_VERIFY_LOCK_TIMEOUT`` (seconds), else ``default``."""
    value = os.environ.get(LOCK_TIMEOUT_SETTING, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise OperationalError(f"{LOCK_TIMEOUT_SETTING}={value!r}: expected a number of seconds") from None
    if not seconds >= 0:
        raise OperationalError(f"{LOCK_TIMEOUT_SETTING}={value!r}: expected a number of seconds")
    return seconds


def is_read_only_error(error: OSError) -> bool:
    """True for the errors a read-only file system or a directory this user may not write gives."""
    return error.errno in _READ_ONLY_ERRORS


def _try_flock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_linked(descriptor: int, path: Path) -> bool:
    """True while ``path`` is the file open as ``descriptor`` (not removed, not replaced)."""
    try:
        named = path.lstat()
    except FileNotFoundError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(path: Path) -> str:
    """Who holds ``path``, as its holder wrote it (``pid N on HOST``), or ``an unknown process``."""
    try:
        with path.open("rb") as stream:
            words = stream.read(_HOLDER_BYTES).decode("ascii", "replace").split()
    except OSError:
        words = []
    if len(words) >= 2 and words[0].isdigit():
        return f"pid {words[0]} on {words[1]}"
    return "an unknown process"


def _write_holder(descriptor: int) -> None:
    # Best effort: a full disk must not stop a process that holds the lock from working.
    with contextlib.suppress(OSError):
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()} {socket.gethostname() or 'localhost'}\n".encode(), 0)


_held_in_this_process: dict[str, int] = {}
"""Lock files this process holds, and how many :class:`TargetLock` objects share each: flock(2) would make a
second open of the same file wait for the first, so a step that takes a lock its caller already holds
(``check`` holds its result directory while ``publish`` replaces it) shares it instead."""


class TargetLock:
    """An exclusive lock on one thing being made, in the lock file ``path`` (created if needed).

    Use as a context manager, or :meth:`acquire` and :meth:`release`. ``what`` names the thing in the
    messages (``the rebuild cache entry 3c85bd43…``). Within one process the lock is re-entrant: a second
    :class:`TargetLock` on the same file shares the first one's hold.
    """

    def __init__(self, path: Path, *, what: str, timeout: float, on_wait: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.what = what
        self.timeout = timeout
        self._on_wait = on_wait
        self._descriptor: int | None = None
        self._shared = False
        self.read_only = False
        """True when the lock could not be taken because its location cannot be written."""

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._descriptor is not None or self._shared

    def _key(self) -> str:
        return str(self.path.absolute())

    def _share(self) -> bool:
        """Share a hold another :class:`TargetLock` of this process has on the same file."""
        if self._key() in _held_in_this_process:
            _held_in_this_process[self._key()] += 1
            self._shared = True
        return self._shared

    def _took(self, descriptor: int) -> None:
        self._descriptor = descriptor
        _held_in_this_process[self._key()] = 1
        _write_holder(descriptor)

    def acquire(self) -> TargetLock:
        """Wait for the lock (up to the timeout); on a read-only location, return unheld.

        Raises :class:`LockTimeout` naming the holder's pid when the timeout passes.
        """
        if self.held or self._share():
            return self
        deadline = time.monotonic() + self.timeout
        told = False
        while True:
            descriptor = self._open()
            if descriptor is None:
                self.read_only = True
                return self
            if _try_flock(descriptor):
                if _still_linked(descriptor, self.path):
                    self._took(descriptor)
                    return self
                os.close(descriptor)  # removed by whoever held it last: take the new file
                continue
            os.close(descriptor)
            holder = _holder(self.path)
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"gave up after {self.timeout:g} s waiting for {self.what}: {holder} holds {self.path} "
                    f"(raise {LOCK_TIMEOUT_SETTING} to wait longer)"
                )
            if not told and self._on_wait is not None:
                self._on_wait(f"waiting for {self.what}: {holder} holds {self.path} (up to {self.timeout:g} s)")
                told = True
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))

    def try_acquire(self) -> bool:
        """Take the lock only if nobody holds it; True when taken (False on a read-only location too)."""
        if self.held or self._share():
            return True
        descriptor = self._open()
        if descriptor is None:
            self.read_only = True
            return False
        if _try_flock(descriptor) and _still_linked(descriptor, self.path):
            self._took(descriptor)
            return True
        os.close(descriptor)
        return False

    def release(self) -> None:
        """Let the next process in, removing the lock file (no litter beside a result).

        Removing it while still holding it is safe: a waiter that opened the old file finds, once it
        has the lock, that the file is no longer linked at :attr:`path`, and starts again on a new one.
        """
        if self._shared:
            self._shared = False
            if self._key() in _held_in_this_process:
                _held_in_this_process[self._key()] -= 1
            return
        if self._descriptor is not None:
            _held_in_this_process.pop(self._key(), None)
            if _still_linked(self._descriptor, self.path):
                with contextlib.suppress(OSError):
                    self.path.unlink()
            os.close(self._descriptor)
            self._descriptor = None

    def _open(self) -> int | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            if is_read_only_error(error):
                return None
            raise OperationalError(f"cannot create the lock file {self.path}: {error.strerror or error}") from None

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


class Staging:
    """A file or directory being written in ``parent``, held by this process until it is committed
    (renamed into place by the caller, then :meth:`committed`) or discarded (:meth:`discard`)."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self.lock_path = Path(f"{path}{LOCK_SUFFIX}")
        self._descriptor: int | None = descriptor

    @classmethod
    def directory(cls, parent: Path, prefix: str, *, mode: int = 0o755) -> Staging:
        """A new, empty staging directory ``parent/PREFIX<random>`` (mode ``mode`` whatever the umask)."""
        staging = cls._reserve(parent, prefix)
        try:
            staging.path.mkdir()
            staging.path.chmod(mode)
        except OSError as error:
            staging.discard()
            raise StagingError(f"cannot create {staging.path}: {error.strerror or error}") from None
        return staging

    @classmethod
    def file(cls, parent: Path, prefix: str, *, mode: int = 0o644) -> tuple[Staging, int]:
        """A new, empty staging file ``parent/PREFIX<random>`` opened for writing; returns it and the
        descriptor (the caller closes it)."""
        staging = cls._reserve(parent, prefix)
        try:
            descriptor = os.open(staging.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            os.fchmod(descriptor, mode)
        except OSError as error:
            staging.discard()
            raise StagingError(f"cannot create {staging.path}: {error.strerror or error}") from None
        return staging, descriptor

    @classmethod
    def name(cls, parent: Path, prefix: str) -> Staging:
        """A held, unused name ``parent/PREFIX<random>`` (nothing is created there): somewhere to rename
        an old directory aside to."""
        return cls._reserve(parent, prefix)

    @classmethod
    def _reserve(cls, parent: Path, prefix: str) -> Staging:
        """Make and lock ``PREFIX<random>.lock``; the staging area is its name without ``.lock``."""
        while True:
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StagingError(f"cannot create {parent}: {error.strerror or error}") from None
            try:
                descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=LOCK_SUFFIX, dir=parent)
            except FileNotFoundError:
                continue  # another run removed the (empty) parent just now: make it again
            except OSError as error:
                raise StagingError(f"cannot write to {parent}: {error.strerror or error}") from None
            lock_path = Path(name)
            # A sweeper may have seen the new, not yet locked file and removed it: then start again.
            if _try_flock(descriptor) and _still_linked(descriptor, lock_path):
                _write_holder(descriptor)
                return cls(Path(name[: -len(LOCK_SUFFIX)]), descriptor)
            os.close(descriptor)

    def committed(self) -> None:
        """The caller renamed :attr:`path` into place: drop the lock file and the lock."""
        with contextlib.suppress(FileNotFoundError):
            self.lock_path.unlink()
        self._release()

    def discard(self) -> None:
        """Remove the staging area, then its lock file, then let go of the lock."""
        remove_path(self.path)
        with contextlib.suppress(FileNotFoundError):
            self.lock_path.unlink()
        self._release()

    def _release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def remove_path(path: Path) -> None:
    """Remove a file, a symlink or a whole directory tree; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            path.unlink()


def abandoned(path: Path) -> bool:
    """True for a staging area (or its lock file) that no live process holds; one without a lock file (an
    earlier version's) once it is older than :data:`LEGACY_STALE_SECONDS`."""
    lock_path = path if path.name.endswith(LOCK_SUFFIX) else Path(f"{path}{LOCK_SUFFIX}")
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return time.time() - _mtime(path) >= LEGACY_STALE_SECONDS
    except OSError:
        return False  # cannot tell (read-only): leave it
    try:
        return _try_flock(descriptor)
    finally:
        os.close(descriptor)


def sweep_abandoned(parent: Path, prefix: str) -> list[Path]:
    """Remove the staging areas ``parent/PREFIX*`` that no live process holds; return what was removed.

    Safe at any time, from any process: a staging area whose writer lives is never touched. Nothing is
    removed where nothing can be written.
    """
    removed: list[Path] = []
    try:
        names = sorted(child.name for child in parent.iterdir())
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        path = parent / name
        if name.endswith(LOCK_SUFFIX):
            target = Path(str(path)[: -len(LOCK_SUFFIX)])
            if target.name in names:
                continue  # judged with its staging area below
            if _remove_if_unheld(path, None):
                removed.append(path)
            continue
        if _remove_if_unheld(Path(f"{path}{LOCK_SUFFIX}"), path):
            removed.append(path)
    return removed


def _remove_if_unheld(lock_path: Path, target: Path | None) -> bool:
    """Remove ``target`` and then ``lock_path`` if nobody holds ``lock_path`` (or it is absent)."""
    try:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        # No lock file: this version makes it before the staging area and removes it after, so this is
        # an earlier version's staging area, whose writer may still be running: judged by its age.
        if target is None or time.time() - _mtime(target) < LEGACY_STALE_SECONDS:
            return False
        try:
            remove_path(target)
        except OSError:
            return False
        return not os.path.lexists(target)
    except OSError:
        return False
    try:
        if not (_try_flock(descriptor) and _still_linked(descriptor, lock_path)):
            return False
        try:
            if target is not None:
                remove_path(target)
            lock_path.unlink()
        except OSError:
            return False
        return target is None or not os.path.lexists(target)
    finally:
        os.close(descriptor)


def swap_in(staging: Staging, target: Path, *, aside_prefix: str, point: str = "publish") -> None:
    """Rename the finished ``staging`` area to ``target``, replacing what is there; the caller holds
    ``target``'s lock.

    There is no atomic directory swap: an old ``target`` is first renamed aside (to a held name
    ``PARENT/ASIDE_PREFIX<random>``), so at every instant ``target`` is the whole old version, nothing,
    or the whole new one. A run killed between the two renames leaves the old version aside;
    :func:`recover_aside` puts it back. ``point`` is the :mod:`verify.common.faults` point between the renames.
    """
    aside = None
    if os.path.lexists(target):
        aside = Staging.name(target.parent, aside_prefix)
        target.rename(aside.path)
    faults.reached(point)
    staging.path.rename(target)
    staging.committed()
    if aside is not None:
        aside.discard()


def recover_aside(target: Path, *, aside_prefix: str) -> list[Path]:
    """With ``target``'s lock held: if ``target`` is missing and a run killed in :func:`swap_in` left its
    old version aside, put it back; remove every other abandoned aside. Returns what was removed."""
    parent = target.parent
    if not os.path.lexists(target):
        candidates = [
            path
            for path in sorted(parent.glob(f"{glob_escape(aside_prefix)}*"), key=_mtime, reverse=True)
            if not path.name.endswith(LOCK_SUFFIX) and path.is_dir() and abandoned(path)
        ]
        if candidates:
            candidates[0].rename(target)
            with contextlib.suppress(FileNotFoundError):
                Path(f"{candidates[0]}{LOCK_SUFFIX}").unlink()
    return sweep_abandoned(parent, aside_prefix)


def glob_escape(text: str) -> str:
    """``text`` with the characters glob gives a meaning escaped."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def directory_lock(
    target: Path, *, what: str, timeout: float, on_wait: Callable[[str], None] | None = None
) -> TargetLock:
    """The lock of a directory that is replaced as a whole (a result, a site): ``.NAME.lock`` beside it."""
    return TargetLock(target.parent / f".{target.name}{LOCK_SUFFIX}", what=what, timeout=timeout, on_wait=on_wait)


@contextlib.contextmanager
def replacing(
    target: Path, *, what: str, timeout: float, on_wait: Callable[[str], None] | None = None, point: str = "publish"
) -> Iterator[Path]:
    """Build a new version of the directory ``target`` and put it in place when the block ends.

    Yields an empty staging directory beside ``target`` (mode 0755). If the block raises, the staging
    directory is removed and ``target`` is left as it was; otherwise the staging directory replaces
    ``target`` (:func:`swap_in`). Throughout, ``target``'s lock (``.NAME.lock`` beside it) is held, so
    two runs replacing one directory take turns; first, a version a killed run left aside is put back and
    abandoned staging directories of ``target`` are removed. A read-only location is one line, exit 2.
    """
    parent, name = target.parent, target.name
    lock = directory_lock(target, what=what, timeout=timeout, on_wait=on_wait)
    lock.acquire()
    try:
        if not lock.held:
            raise StagingError(f"cannot write to {parent}: read-only (publishing {what})")
        recover_aside(target, aside_prefix=f".{name}.old-")
        sweep_abandoned(parent, f".{name}.staging-")
        _sweep_legacy_staging(parent, name)
        staging = Staging.directory(parent, f".{name}.staging-")
        try:
            yield staging.path
            swap_in(staging, target, aside_prefix=f".{name}.old-", point=point)
        except BaseException:
            staging.discard()
            raise
    finally:
        lock.release()


def _sweep_legacy_staging(parent: Path, name: str) -> None:
    """Remove what earlier versions left beside ``name`` when killed (``.NAME.<8 random>``, ``.NAME.old-PID``):
    with ``name``'s lock held, nobody is using them."""
    legacy = re.compile(rf"^\.{re.escape(name)}\.([a-z0-9_]{{8}}|old-[0-9]+)$")
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            if legacy.match(child.name) and child.is_dir() and not os.path.lexists(f"{child}{LOCK_SUFFIX}"):
                shutil.rmtree(child, ignore_errors=True)
