"""Small filesystem helpers shared by the stages: the one file hasher, the one atomic writer, the one cache root.

Every stage hashes files with :func:`sha256_file`, writes results with :func:`write_atomic` /
:func:`write_json_atomic`, and finds its cache directory under :func:`cache_root`, so the three
behave the same wherever they are used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from verify.common.errors import OperationalError

CACHE_SETTING = "CPYTHON_VERIFY_CACHE"
"""The environment variable naming the cache root (see :func:`cache_root`)."""

PUBLISHED_FILE_MODE = 0o644
"""The mode of every file :func:`write_atomic` writes, whatever the umask."""

PUBLISHED_DIRECTORY_MODE = 0o755
"""The mode of a result directory made by :func:`make_result_directory`, whatever the umask."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 (lower-case hex) of a file's bytes, streamed (``hashlib.file_digest``, which releases the GIL).

    Raises :class:`OSError` (``FileNotFoundError``, ``PermissionError``, ...) when the file cannot be
    read: each stage maps that to its own one-line error, because only the stage knows what the file
    was for.
    """
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def write_atomic(
    path: str | os.PathLike[str], data: bytes | Iterable[bytes], *, mode: int = PUBLISHED_FILE_MODE
) -> str:
    """Write ``data`` (bytes, or chunks streamed in order) to ``path`` atomically; return its sha256.

    The contract, for every result, manifest, verdict and attestation the tool writes:

    * Readers see the old file or the whole new one, never a part: the bytes go to a temporary file
      in the destination directory (so the rename stays on one filesystem), are fsynced, then
      renamed over ``path`` with :func:`os.replace`.
    * On any failure, including a full disk or an interrupt, the temporary file is removed and the
      old file (if any) is left as it was.
    * The file's mode is ``mode`` (default 0644) regardless of the umask: results are meant to be
      read by other users (a ``sudo rebuild`` followed by a non-root ``attest``), and mkstemp's
      0600 or a restrictive umask under sudo would lock them out.
    """
    destination = Path(path)
    digest = hashlib.sha256()
    try:
        descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".tmp")
    except OSError as error:
        raise _naming(error, destination) from error
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "wb") as stream:
            for chunk in (data,) if isinstance(data, bytes) else data:
                digest.update(chunk)
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(destination)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        named = _naming(error, destination, temporary)
        if named is error:
            raise
        raise named from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _naming(error: OSError, destination: Path, temporary: str | None = None) -> OSError:
    """``error`` naming ``destination``, the path the caller (and the user) gave, rather than the temporary file
    beside it that the user never asked for; the same class and errno, so callers' checks still hold."""
    if error.filename is not None and error.filename != temporary and temporary is not None:
        return error  # about another file (the data's source, say): its name is the right one
    return type(error)(error.errno, error.strerror, os.fspath(destination))


def json_bytes(data: Any) -> bytes:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8, one trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> str:
    """Write ``data`` as deterministic JSON (:func:`json_bytes`) with :func:`write_atomic`; return its sha256."""
    return write_atomic(path, json_bytes(data))


def make_result_directory(parent: Path, prefix: str) -> Path:
    """A new, uniquely named directory in ``parent`` (created if needed), mode 0755 regardless of the umask.

    For staging a result that is renamed into place when complete: ``tempfile.mkdtemp`` makes 0700
    directories, which would hide the published result from every other user.
    """
    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    directory.chmod(PUBLISHED_DIRECTORY_MODE)
    return directory


def cache_root(explicit: Path | None = None) -> Path:
    """The root of every cache the tool keeps (downloads, environments, rebuilds).

    In order: ``explicit`` (a ``--cache`` option), ``$CPYTHON_VERIFY_CACHE``,
    ``$XDG_CACHE_HOME/cpython-verify`` (only when absolute: the XDG spec says relative values are
    invalid and must be ignored), ``~/.cache/cpython-verify``. Each cache is a fixed subdirectory of
    this root, so one setting moves them all.
    """
    if explicit is not None:
        return explicit
    configured = os.environ.get(CACHE_SETTING)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "cpython-verify"


class NotARegularFile(OSError):
    """The path names a FIFO, socket or device, where only a regular file makes sense."""


def open_regular_file(path: str | os.PathLike[str], *, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for reading only if it is (or, with ``follow_symlinks``, a symlink leads to) a regular file.

    Untrusted locations can hold a FIFO (opening it would wait for a writer forever) or a link to
    ``/dev/zero`` (reading it never ends). O_NONBLOCK makes the open return at once, and the type is checked
    on the open descriptor, so a file swapped after a check cannot slip through. Raises FileNotFoundError as
    ``open`` does, IsADirectoryError for a directory and :class:`NotARegularFile` for anything else; without
    ``follow_symlinks``, a symbolic link as the last component is refused (O_NOFOLLOW) with an ``OSError``
    whose errno is ELOOP.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP and not follow_symlinks:
            raise OSError(errno.ELOOP, "a symbolic link (not followed)", os.fspath(path)) from None
        raise
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


def replace_directory(staging: Path, target: Path) -> None:
    """Put a complete ``staging`` directory where ``target`` is, in two renames on one filesystem.

    There is no atomic directory swap: the old directory is renamed aside first, so at every instant
    ``target`` is the whole old directory, nothing, or the whole new one; the old one is then removed.
    The caller decides whether ``target`` may be replaced at all.
    """
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class WriteFailed(OperationalError):
    """Writing to disk failed (a full disk, a read-only location, a quota): one line naming the path, what
    was being written and, when known, how much room it needed."""


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_failure(error: OSError, path: str | os.PathLike[str], what: str, *, needed: int | None = None) -> WriteFailed:
    """The one-line error for ``error`` met while writing ``path`` for ``what`` (``downloading X``).

    For a full disk it says how much was needed (``needed`` bytes, when the caller knows) and how much
    is free where ``path`` lives.
    """
    reason = error.strerror or str(error)
    detail = what
    if error.errno in _NO_ROOM:
        free = free_bytes(Path(path))
        parts = [f"needs {human_bytes(needed)}"] if needed is not None else []
        if free is not None:
            parts.append(f"{human_bytes(free)} free there")
        if parts:
            detail = f"{what}: {', '.join(parts)}"
    return WriteFailed(f"cannot write {os.fspath(path)}: {reason} ({detail})")


def is_write_failure(error: BaseException) -> bool:
    """True for the OSErrors of a full disk, a quota or a read-only location (not a bug, not a missing file)."""
    return isinstance(error, OSError) and error.errno in (_NO_ROOM | {errno.EROFS, errno.EACCES, errno.EPERM})


def free_bytes(path: Path) -> int | None:
    """Bytes free for this user on the file system of ``path`` (or of its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            info = os.statvfs(candidate)
        except OSError:
            continue
        return info.f_bavail * info.f_frsize
    return None


def human_bytes(count: int) -> str:
    """``1.5 MiB``-style sizes for messages."""
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def tree_bytes(path: Path) -> int:
    """The bytes of the regular files under ``path`` (what a partial build had written)."""
    total = 0
    for directory, _dirnames, filenames in os.walk(path):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size  # noqa: PTH118
    return total


def unlink_if_writable(path: Path) -> bool:
    """Remove ``path`` (absent is fine); False where it cannot be removed (a read-only cache keeps it)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
