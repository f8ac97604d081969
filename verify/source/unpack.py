"""Tar extraction that refuses anything a CPython source tarball never contains.

A release tarball is a single top-level directory of regular files, directories and a few in-tree
symlinks. Everything else — absolute names, ``..``, links that leave the tree, device nodes, FIFOs,
a second top-level entry, more bytes or entries than the caps allow — is refused with
:class:`~verify.common.errors.UnsafeArchive` naming the offending entry.

The archive is read as a stream (``tarfile`` stream mode over our own decompressor): memory stays
bounded, every cap is checked before the entry's bytes are written, and a decompression bomb stops
at the cap instead of at the end of the bomb. tarfile's ``data`` filter is applied on top of these
checks as a second, independent floor.
"""

from __future__ import annotations

import copy
import gzip
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from verify.common.errors import OperationalError, UnsafeArchive

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
DEFAULT_MAX_ENTRIES = 100_000
MAX_METADATA_BYTES = 1024 * 1024
"""Largest pax / GNU long-name header accepted: tarfile reads these whole into memory."""

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_TAR_MAGIC = b"ustar"
_TAR_MAGIC_OFFSET = 257
# Per-entry overhead of the tar format: a 512-byte header plus up to 511 bytes of padding; pax and
# long-name headers add more, bounded by MAX_METADATA_BYTES each.
_ENTRY_OVERHEAD = 1024
_DRAIN_CHUNK = 1 << 20
_METADATA_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE)
# Errors the decompressors and tarfile raise on corrupt or truncated input.
_CORRUPT_ERRORS = (tarfile.ReadError, lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError)


class UnpackWriteError(OperationalError):
    """The archive was fine but its bytes could not be written (disk full, permissions)."""


class _LimitExceeded(Exception):
    """Raised below tarfile, where the archive's name is unknown; turned into UnsafeArchive above it."""


@dataclass(frozen=True, slots=True)
class UnpackLimits:
    """The caps a single archive read must stay under."""

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    """Sum of the sizes of the regular files."""
    max_entries: int = DEFAULT_MAX_ENTRIES

    @property
    def max_stream_bytes(self) -> int:
        """Decompressed bytes the whole tar stream may have: file data plus per-entry overhead."""
        return self.max_total_bytes + self.max_entries * _ENTRY_OVERHEAD + MAX_METADATA_BYTES


def safe_unpack(
    tarball: Path,
    dest: Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    parts: tuple[str, ...] | None = None,
) -> Path:
    """Unpack ``tarball`` (``.tar.xz``, ``.tgz``, ``.tar.gz``) into the directory ``dest``.

    ``parts`` limits what is written to the entries whose path inside the top directory starts with
    one of these prefixes (``Lib/``, ``Makefile.pre.in``); every entry is still checked.

    Returns the archive's single top-level directory, ``dest / <top>``. ``dest`` is created if
    needed; ``dest / <top>`` must not exist yet. Extraction happens in a temporary directory inside
    ``dest`` and is renamed into place only when every entry passed, so a refused or corrupt archive
    leaves nothing behind. Raises :class:`UnsafeArchive` naming the offending entry.
    """
    limits = UnpackLimits(max_total_bytes=max_total_bytes, max_entries=max_entries)
    dest.mkdir(parents=True, exist_ok=True)
    # Same filesystem as the final location, so the closing rename is atomic.
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest))
    try:
        with _open_stream(tarball, limits, read_to_end=True) as archive:
            ledger = _Ledger(archive_name=tarball.name, limits=limits)
            for member in _checked_members(archive, ledger):
                inner = member.name.partition("/")[2]
                if parts is not None and inner and not member.isdir() and not inner.startswith(parts):
                    continue
                _extract_one(archive, member, staging, tarball.name)
        top = ledger.require_top()
        final = dest / top
        if final.exists() or final.is_symlink():
            # An occupied destination says nothing about the archive: an operational error (exit 2), not a
            # verification failure (exit 1).
            raise UnpackWriteError(f"{tarball.name}: cannot unpack: {final} already exists")
        (staging / top).rename(final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_member(
    tarball: Path,
    relative_path: str,
    *,
    max_bytes: int,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> bytes | None:
    """The bytes of the regular file ``<top>/<relative_path>`` in ``tarball``, or None if absent.

    Streams the archive without writing anything, applying the same checks as :func:`safe_unpack`
    to every entry read up to the one wanted (a hostile archive is refused, not searched). A member
    larger than ``max_bytes`` is refused rather than truncated.
    """
    wanted = posixpath.normpath(relative_path)
    if wanted.startswith(("/", "../")) or wanted in ("..", "."):
        raise ValueError(f"relative_path must be a path inside the tree, not {relative_path!r}")
    limits = UnpackLimits(max_total_bytes=max_total_bytes, max_entries=max_entries)
    # Not read to the end: a found member is returned at once (the whole file's signature is what
    # vouches for the bytes, and safe_unpack checks the compressed stream's integrity).
    with _open_stream(tarball, limits, read_to_end=False) as archive:
        ledger = _Ledger(archive_name=tarball.name, limits=limits)
        for member in _checked_members(archive, ledger):
            inner = member.name.partition("/")[2]
            if inner != wanted or not member.isreg():
                continue
            if member.size > max_bytes:
                raise UnsafeArchive(
                    f"{tarball.name}: entry {member.name!r} is {member.size} bytes, "
                    f"more than the {max_bytes}-byte limit"
                )
            try:
                extracted = archive.extractfile(member)
                assert extracted is not None  # a regular file always has a data stream
                data = extracted.read()
            except _CORRUPT_ERRORS as error:
                raise _corrupt(tarball.name, error) from None
            if len(data) != member.size:
                raise UnsafeArchive(f"{tarball.name}: entry {member.name!r} is truncated")
            return data
    return None


@dataclass(slots=True)
class _Ledger:
    """What has been seen so far in one archive: the running totals the caps are checked against."""

    archive_name: str
    limits: UnpackLimits
    entries: int = 0
    total_bytes: int = 0
    top: str | None = None
    names: set[str] = field(default_factory=set)
    regular_files: set[str] = field(default_factory=set)
    symlinks: set[str] = field(default_factory=set)

    def refuse(self, name: str, reason: str) -> UnsafeArchive:
        return UnsafeArchive(f"{self.archive_name}: refused entry {name!r}: {reason}")

    def require_top(self) -> str:
        if self.top is None:
            raise UnsafeArchive(f"{self.archive_name}: the archive is empty")
        return self.top

    def check(self, member: tarfile.TarInfo) -> None:
        """Raise :class:`UnsafeArchive` unless ``member`` is safe to extract after everything seen before."""
        raw = member.name
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise self.refuse(raw, f"more than {self.limits.max_entries} entries")
        name = self._normalized_name(raw)
        parts = name.split("/")
        if self.top is None:
            self.top = parts[0]
        elif parts[0] != self.top:
            raise self.refuse(raw, f"a second top-level entry besides {self.top!r}; expected exactly one directory")
        if len(parts) == 1 and not member.isdir():
            raise self.refuse(raw, "the top-level entry is not a directory")
        if name in self.names:
            raise self.refuse(raw, "appears twice in the archive")
        # A member under a symlink would be written wherever the link points, which a lexical check
        # of its own name cannot see.
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self.symlinks:
                raise self.refuse(raw, f"lies under the symlink {'/'.join(parts[:depth])!r}")
        self._check_type(member, name)
        self.names.add(name)

    def _normalized_name(self, raw: str) -> str:
        if not raw or "\x00" in raw:
            raise self.refuse(raw, "empty or NUL in name")
        if raw.startswith("/"):
            raise self.refuse(raw, "absolute path")
        parts = [part for part in raw.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.refuse(raw, "'..' in path")
        if not parts:
            raise self.refuse(raw, "names the archive root itself")
        return "/".join(parts)

    def _check_type(self, member: tarfile.TarInfo, name: str) -> None:
        if member.isreg():
            self.total_bytes += member.size
            if self.total_bytes > self.limits.max_total_bytes:
                raise self.refuse(
                    member.name,
                    f"{member.size} bytes would bring the archive past the {self.limits.max_total_bytes}-byte cap",
                )
            self.regular_files.add(name)
        elif member.isdir():
            pass
        elif member.issym():
            self._check_link_target(member, posixpath.join(posixpath.dirname(name), member.linkname))
            self.symlinks.add(name)
        elif member.islnk():
            target = self._check_link_target(member, member.linkname)
            # Stream mode can only link to a file already written, and a hard link to anything else
            # (a directory, a link) is never in a source tarball.
            if target not in self.regular_files:
                raise self.refuse(
                    member.name, f"hard link to {member.linkname!r}, which is not an earlier regular file"
                )
        elif member.ischr() or member.isblk():
            raise self.refuse(member.name, "device node")
        elif member.isfifo():
            raise self.refuse(member.name, "FIFO")
        else:
            raise self.refuse(member.name, f"unsupported entry type {member.type!r}")

    def _check_link_target(self, member: tarfile.TarInfo, joined: str) -> str:
        kind = "symlink" if member.issym() else "hard link"
        if not member.linkname or member.linkname.startswith("/"):
            raise self.refuse(member.name, f"{kind} to absolute or empty path {member.linkname!r}")
        target = posixpath.normpath(joined)
        if target == ".." or target.startswith("../") or target.split("/")[0] != self.top:
            raise self.refuse(member.name, f"{kind} to {member.linkname!r} points outside the tree")
        return target


class _CappedReader:
    """A read-only byte stream that fails once more than ``limit`` bytes have been read.

    It sits between the decompressor and tarfile, so a bomb hidden in metadata that no per-entry
    size check sees still stops at the cap.
    """

    def __init__(self, inner: lzma.LZMAFile | gzip.GzipFile | _PlainReader, limit: int) -> None:
        self._inner = inner
        self._remaining = limit
        self._limit = limit

    def read(self, size: int = -1) -> bytes:
        # Never ask for more than one byte past the cap: that byte is what proves the cap was exceeded.
        wanted = self._remaining + 1 if size < 0 else min(size, self._remaining + 1)
        data = self._inner.read(wanted)
        self._remaining -= len(data)
        if self._remaining < 0:
            raise _LimitExceeded(f"decompresses to more than {self._limit} bytes of tar data")
        return data


class _BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized pax / GNU long-name headers before tarfile reads them into memory."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _METADATA_TYPES and self.size > MAX_METADATA_BYTES:
            raise _LimitExceeded(f"a {self.size}-byte metadata header {self.name!r} (more than {MAX_METADATA_BYTES})")
        result: tarfile.TarInfo = super()._proc_member(tarfile_)  # type: ignore[misc]
        return result


BoundedTarInfo = _BoundedTarInfo
"""For callers that open an uncompressed tar in random-access mode (an image archive's outer tar)."""


@contextmanager
def _open_stream(tarball: Path, limits: UnpackLimits, *, read_to_end: bool) -> Iterator[tarfile.TarFile]:
    """Open ``tarball`` as a tar stream behind our decompressor and the decompressed-size cap.

    With ``read_to_end``, the compressed stream is read to its very end once the caller is done, so
    its integrity check (xz CRC, gzip CRC and length) is verified: tarfile stops at the tar
    end-of-archive marker and would otherwise accept a file whose compressed tail is cut off.
    """
    try:
        raw: BinaryIO = tarball.open("rb")
    except OSError as error:
        raise UnsafeArchive(f"{tarball.name}: cannot read: {error.strerror}") from None
    with raw, _open_raw_stream(raw, tarball.name, limits.max_stream_bytes, read_to_end=read_to_end) as archive:
        yield archive


@contextmanager
def _open_raw_stream(
    raw: BinaryIO, archive_name: str, max_stream_bytes: int, *, read_to_end: bool, allow_plain: bool = False
) -> Iterator[tarfile.TarFile]:
    """Open the byte stream ``raw`` as a tar stream behind our decompressor and a decompressed-size cap.

    ``raw`` needs ``read`` only, plus ``seek(0)`` right after opening to sniff the compression.
    ``allow_plain`` also accepts an uncompressed tar (image layers and ``.deb`` members may be one).
    """
    with _decompressor(raw, archive_name, allow_plain=allow_plain) as decompressed:
        capped = _CappedReader(decompressed, max_stream_bytes)
        try:
            with tarfile.open(
                # Stream mode only ever calls read(), which is all _CappedReader offers.
                fileobj=cast(IO[bytes], capped),
                mode="r|",
                tarinfo=_BoundedTarInfo,
                errorlevel=2,
            ) as archive:
                yield archive
            while read_to_end and capped.read(_DRAIN_CHUNK):
                pass
        except _LimitExceeded as error:
            raise UnsafeArchive(f"{archive_name}: refused: {error}") from None
        except _CORRUPT_ERRORS as error:
            raise _corrupt(archive_name, error) from None


def _decompressor(
    raw: BinaryIO, archive_name: str, *, allow_plain: bool = False
) -> lzma.LZMAFile | gzip.GzipFile | _PlainReader:
    """The decompressing reader for ``raw``, chosen by content: a misnamed file must not pick another path."""
    magic = raw.read(_TAR_MAGIC_OFFSET + len(_TAR_MAGIC))
    raw.seek(0)
    if magic.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(raw)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw)
    if allow_plain and magic[_TAR_MAGIC_OFFSET:].startswith(_TAR_MAGIC):
        return _PlainReader(raw)
    if magic.startswith(_ZSTD_MAGIC):
        raise UnsafeArchive(f"{archive_name}: zstd-compressed; only xz, gzip and plain tar are supported")
    kinds = "an xz, gzip or plain tar archive" if allow_plain else "an xz or gzip compressed tar archive"
    raise UnsafeArchive(f"{archive_name}: not {kinds}")


class _PlainReader:
    """An uncompressed stream behind the same interface as the decompressors (read, context manager)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def __enter__(self) -> _PlainReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _checked_members(archive: tarfile.TarFile, ledger: _Ledger) -> Iterator[tarfile.TarInfo]:
    """Every member of ``archive`` in order, each checked against what came before it."""
    while True:
        try:
            member = archive.next()
        except _CORRUPT_ERRORS as error:
            raise _corrupt(ledger.archive_name, error) from None
        if member is None:
            return
        ledger.check(member)
        yield member


HAS_EXTRACTION_FILTERS = hasattr(tarfile, "data_filter")
"""PEP 706's extraction filters exist (Python 3.11.4+). Debian 12's own python3 is 3.11.2 and has none."""


class RefusedMember(ValueError):
    """A member the ``data`` extraction policy refuses (a path or link leaving the destination, a device)."""


def extract_data_member(archive: tarfile.TarFile, member: tarfile.TarInfo, destination: Path) -> None:
    """Extract ``member`` under tarfile's ``data`` policy: nothing outside ``destination``, no device or
    FIFO, no set-id or group/other-write bits, no owner taken from the archive. Where the interpreter has
    PEP 706's filters, they apply it; on an older 3.11 the same rules are applied here. Raises
    :class:`RefusedMember`."""
    if HAS_EXTRACTION_FILTERS:
        try:
            archive.extract(member, destination, filter="data")
        except tarfile.FilterError as error:
            raise RefusedMember(str(error)) from None
        return
    archive.extract(_as_data(member, destination), destination)


def extract_all_data(
    archive: tarfile.TarFile, destination: Path, members: Iterable[tarfile.TarInfo] | None = None
) -> None:
    """:func:`extract_data_member` for ``members`` (default: every member), in order."""
    for member in archive.getmembers() if members is None else members:
        extract_data_member(archive, member, destination)


def _as_data(member: tarfile.TarInfo, destination: Path) -> tarfile.TarInfo:
    """A copy of ``member`` that the ``data`` policy lets through, or :class:`RefusedMember`."""
    root = destination.resolve()

    def inside(path: PurePosixPath) -> bool:
        return not path.is_absolute() and (root / path).resolve().is_relative_to(root)

    name = PurePosixPath(member.name)
    if not inside(name):
        raise RefusedMember(f"{member.name!r} would be extracted outside the destination")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise RefusedMember(f"{member.name!r} is a special file (device or FIFO)")
    link = PurePosixPath(member.linkname)
    # A symbolic link's target is relative to its own directory, a hard link's to the archive's root.
    if (member.issym() and not inside(name.parent / link)) or (member.islnk() and not inside(link)):
        raise RefusedMember(f"{member.name!r} is a link to {member.linkname!r}, outside the destination")
    data = copy.copy(member)
    data.uid, data.gid, data.uname, data.gname = os.getuid(), os.getgid(), "", ""
    mode = member.mode & 0o755
    data.mode = mode | 0o700 if member.isdir() else (mode | 0o600 if member.isfile() else mode)
    return data


def _extract_one(archive: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, archive_name: str) -> None:
    """Extract one already-checked member, with the ``data`` policy as the second line of defence."""
    try:
        extract_data_member(archive, member, staging)
    except RefusedMember as error:
        raise UnsafeArchive(f"{archive_name}: refused entry {member.name!r}: {error}") from None
    except _CORRUPT_ERRORS as error:
        raise _corrupt(archive_name, error) from None
    except OSError as error:
        # The disk, not the archive: full filesystem, permissions on dest.
        raise UnpackWriteError(f"{archive_name}: cannot write entry {member.name!r}: {error.strerror}") from None


def _corrupt(archive_name: str, error: BaseException) -> UnsafeArchive:
    reason = str(error) or type(error).__name__
    return UnsafeArchive(f"{archive_name}: corrupt or truncated archive: {reason}")


# --- a root file system from layers: images, packages, relocatable archives -----------------------

DEFAULT_MAX_LAYERS = 128
"""More layers than Docker or podman will build (127): a longer list is hostile, not an image."""
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"


@dataclass(slots=True)
class RootBuilder:
    """Unpacks tar streams one over the other into ``root``, as a container runtime applies image layers.

    The rules of :func:`safe_unpack` hold, adapted to a file system root: no absolute names, no
    ``..``, no member under a symlink, no hard link except to a file already unpacked, no device
    node or FIFO written (they are skipped and counted), a relative symlink that climbs out of the
    root is refused; absolute symlinks are kept as they are, since inside the image they point into
    it (the audit resolves them against the image, never against this machine). OCI whiteouts
    (``.wh.NAME``, ``.wh..wh..opq``) delete what lower layers put there. The caps count every layer
    together, and a decompression bomb stops at the cap.
    """

    root: Path
    limits: UnpackLimits = field(default_factory=UnpackLimits)
    max_layers: int = DEFAULT_MAX_LAYERS
    entries: int = 0
    total_bytes: int = 0
    layers: int = 0
    skipped_special: int = 0

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def add_layer(self, raw: BinaryIO, name: str) -> None:
        """Apply the tar stream ``raw`` (plain, gzip or xz) over what is already unpacked."""
        self.layers += 1
        if self.layers > self.max_layers:
            raise UnsafeArchive(f"{name}: refused: more than {self.max_layers} layers")
        remaining = self.limits.max_stream_bytes - self.total_bytes
        added: set[str] = set()
        with _open_raw_stream(raw, name, remaining, read_to_end=False, allow_plain=True) as archive:
            while True:
                try:
                    member = archive.next()
                except _CORRUPT_ERRORS as error:
                    raise _corrupt(name, error) from None
                if member is None:
                    return
                self._apply(archive, member, name, added)

    def _refuse(self, archive_name: str, member: str, reason: str) -> UnsafeArchive:
        return UnsafeArchive(f"{archive_name}: refused entry {member!r}: {reason}")

    def _normalized(self, archive_name: str, raw: str) -> str | None:
        if not raw or "\x00" in raw:
            raise self._refuse(archive_name, raw, "empty or NUL in name")
        if raw.startswith("/"):
            raise self._refuse(archive_name, raw, "absolute path")
        parts = [part for part in raw.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self._refuse(archive_name, raw, "'..' in path")
        return "/".join(parts) if parts else None

    def _parent_ready(self, archive_name: str, raw: str, name: str) -> Path:
        """Create the parent directories of ``name``; refuse when one of them is a link or a file."""
        parent = self.root
        for part in name.split("/")[:-1]:
            parent = parent / part
            if parent.is_symlink():
                raise self._refuse(archive_name, raw, f"lies under the symlink {part!r}")
            if parent.exists() and not parent.is_dir():
                raise self._refuse(archive_name, raw, f"lies under the non-directory {part!r}")
            if not parent.exists():
                parent.mkdir()
        return self.root / name

    def _clear(self, path: Path) -> None:
        """Remove whatever is at ``path`` (never following a link)."""
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def _apply(self, archive: tarfile.TarFile, member: tarfile.TarInfo, archive_name: str, added: set[str]) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise self._refuse(archive_name, member.name, f"more than {self.limits.max_entries} entries")
        name = self._normalized(archive_name, member.name)
        if name is None:
            return  # "./": the root itself
        base = name.rsplit("/", 1)[-1]
        if base.startswith(_WHITEOUT):
            self._whiteout(archive_name, member.name, name, base, added)
            return
        target = self._parent_ready(archive_name, member.name, name)
        if member.isdir():
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                self._clear(target)
            target.mkdir(exist_ok=True)
        elif member.isreg():
            self.total_bytes += member.size
            if self.total_bytes > self.limits.max_total_bytes:
                raise self._refuse(
                    archive_name,
                    member.name,
                    f"{member.size} bytes would bring the input past the {self.limits.max_total_bytes}-byte cap",
                )
            self._clear(target)
            self._write(archive, member, target, archive_name)
        elif member.issym():
            if not member.linkname:
                raise self._refuse(archive_name, member.name, "symlink with an empty target")
            if not member.linkname.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                if resolved == ".." or resolved.startswith("../"):
                    raise self._refuse(
                        archive_name, member.name, f"symlink to {member.linkname!r} points outside the root"
                    )
            self._clear(target)
            target.symlink_to(member.linkname)
        elif member.islnk():
            source_name = self._normalized(archive_name, member.linkname)
            source = self.root / source_name if source_name else self.root
            if source_name is None or source.is_symlink() or not source.is_file() or not self._inside(source):
                raise self._refuse(
                    archive_name,
                    member.name,
                    f"hard link to {member.linkname!r}, which is not an unpacked regular file",
                )
            self._clear(target)
            shutil.copyfile(source, target)
        elif member.ischr() or member.isblk() or member.isfifo():
            self.skipped_special += 1
            return
        else:
            raise self._refuse(archive_name, member.name, f"unsupported entry type {member.type!r}")
        added.add(name)

    def _inside(self, path: Path) -> bool:
        """True when no component of ``path`` below the root is a link (so it really lies in the root)."""
        current = self.root
        for part in path.relative_to(self.root).parts:
            current = current / part
            if current.is_symlink():
                return False
        return True

    def _whiteout(self, archive_name: str, raw: str, name: str, base: str, added: set[str]) -> None:
        directory = posixpath.dirname(name)
        parent = self.root / directory if directory else self.root
        if not self._inside(parent):
            raise self._refuse(archive_name, raw, "whiteout under a symlink")
        if base == _OPAQUE:
            if parent.is_dir():
                for child in list(parent.iterdir()):
                    child_name = f"{directory}/{child.name}" if directory else child.name
                    if child_name not in added:
                        self._clear(child)
            return
        hidden = base[len(_WHITEOUT) :]
        if hidden in ("", ".", "..") or "/" in hidden:
            raise self._refuse(archive_name, raw, "whiteout naming no file")
        self._clear(parent / hidden)

    def _write(self, archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path, archive_name: str) -> None:
        try:
            source = archive.extractfile(member)
            assert source is not None  # a regular file always has a data stream
            descriptor = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755 if member.mode & 0o111 else 0o644
            )
            with os.fdopen(descriptor, "wb") as out:
                written = 0
                while chunk := source.read(_DRAIN_CHUNK):
                    written += len(chunk)
                    out.write(chunk)
        except _CORRUPT_ERRORS as error:
            raise _corrupt(archive_name, error) from None
        except OSError as error:
            raise UnpackWriteError(f"{archive_name}: cannot write entry {member.name!r}: {error.strerror}") from None
        if written != member.size:
            raise UnsafeArchive(f"{archive_name}: entry {member.name!r} is truncated")
        # A .pyc header records its source's mtime: the layer's mtimes are part of what is audited.
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


class FileSlice:
    """``size`` bytes of an open file from ``offset``: a member of an ``ar`` archive, read in place."""

    def __init__(self, stream: BinaryIO, offset: int, size: int) -> None:
        self._stream = stream
        self._offset = offset
        self._size = size
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, never past the slice's end."""
        left = self._size - self._position
        wanted = left if size < 0 else min(size, left)
        if wanted <= 0:
            return b""
        self._stream.seek(self._offset + self._position)
        data = self._stream.read(wanted)
        self._position += len(data)
        return data

    def seek(self, position: int, whence: int = 0) -> int:
        """Only absolute positions inside the slice."""
        if whence != 0 or not 0 <= position <= self._size:
            raise OSError("FileSlice supports absolute seeks inside the slice only")
        self._position = position
        return position
