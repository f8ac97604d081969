"""The install tree as data: one entry per path, plus the inputs that produced the tree.

A manifest records, for every path under an install root, its kind (detected from the bytes, never
from the name alone), permission bits, size, sha256 and link target, and for ``.pyc`` files their
PEP 552 header fields. Its JSON form is canonical: the same tree and inputs always give the same bytes,
so ``manifest_digest`` can stand for the whole tree in an attestation.

Canonical layout (documented in ``docs/manifest.md``)::

    {"format":"cpython-verify/manifest/v1","inputs":{...},"entries":[
    {"kind":"directory","mode":"0755","path":"opt"},
    ...
    {"kind":"text","mode":"0644","path":"opt/x","sha256":"...","size":3}
    ]}

One entry per line keeps diffs of two manifests readable and lets :func:`read_manifest` parse a
million entries line by line instead of building one huge JSON document in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any, Final, Literal

from pydantic import Field, ValidationError, model_validator

from verify.common.errors import OperationalError
from verify.common.fsutil import open_regular_file, sha256_file, write_atomic
from verify.common.strict import (
    OMITTED,
    Count,
    Omittable,
    OneOf,
    StrictModel,
    first_problem,
    load_json,
    parse_model,
    rule,
    table_error,
)
from verify.pyc import PycError, parse_header

MANIFEST_FORMAT: Final = "cpython-verify/manifest/v1"

# Kinds, as written in the manifest. ELF kinds follow the ELF header, not the file name.
DIRECTORY: Final = "directory"
SYMLINK: Final = "symlink"
ELF_EXECUTABLE: Final = "elf-executable"
"""ET_EXEC, or ET_DYN with a PT_INTERP program header (a position-independent executable)."""
ELF_SHARED_OBJECT: Final = "elf-shared-object"
"""ET_DYN without PT_INTERP: ``libpython3.so``, extension modules."""
ELF_RELOCATABLE: Final = "elf-relocatable"
"""ET_REL: ``.o`` files (``config-*/python.o``)."""
ELF_OTHER: Final = "elf-other"
STATIC_ARCHIVE: Final = "static-archive"
PYC: Final = "pyc"
SYSCONFIGDATA: Final = "sysconfigdata"
PYTHON_SOURCE: Final = "python-source"
TEXT: Final = "text"
BINARY: Final = "binary"
SPECIAL: Final = "special"
"""A device, FIFO or socket: never expected in an install tree, recorded so that it is noticed."""

KINDS: Final = frozenset(
    {
        DIRECTORY,
        SYMLINK,
        ELF_EXECUTABLE,
        ELF_SHARED_OBJECT,
        ELF_RELOCATABLE,
        ELF_OTHER,
        STATIC_ARCHIVE,
        PYC,
        SYSCONFIGDATA,
        PYTHON_SOURCE,
        TEXT,
        BINARY,
        SPECIAL,
    }
)
ELF_KINDS: Final = frozenset({ELF_EXECUTABLE, ELF_SHARED_OBJECT, ELF_RELOCATABLE, ELF_OTHER})
FILE_KINDS: Final = KINDS - {DIRECTORY, SYMLINK, SPECIAL}
TEXT_KINDS: Final = frozenset({TEXT, PYTHON_SOURCE, SYSCONFIGDATA})

MAX_ENTRIES: Final = 5_000_000
"""More entries than any install tree has (CPython: ~9,000); a larger manifest is refused, not read."""
MAX_LINE_BYTES: Final = 1 << 20
"""One entry line, or the header line with its inputs; longer lines are refused."""
MAX_WHOLE_DOCUMENT_BYTES: Final = 64 << 20
"""A manifest not in the canonical one-entry-per-line layout is parsed whole only up to this size."""

# How much of each file the kind detector reads: enough for an ELF header plus its program headers.
_HEAD_BYTES: Final = 4096
_BATCH_FILES: Final = 64
_ELF_MAGIC: Final = b"\x7fELF"
_AR_MAGIC: Final = b"!<arch>\n"
_ET_REL, _ET_EXEC, _ET_DYN = 1, 2, 3
_PT_INTERP: Final = 3


class ManifestError(OperationalError):
    """A manifest cannot be read, written or trusted: malformed JSON, unknown format, unsafe paths."""


@dataclass(frozen=True, slots=True)
class PycFields:
    """The PEP 552 header of a ``.pyc`` entry, as recorded in a manifest."""

    magic: int
    python_version: str
    invalidation: str
    """``timestamp``, ``checked-hash`` or ``unchecked-hash``."""
    mtime: int | None = None
    source_size: int | None = None
    source_hash: str | None = None
    """Hex of the 8-byte SipHash of the source (hash-based ``.pyc`` only)."""

    def describe(self) -> str:
        """One line for reports."""
        if self.invalidation == "timestamp":
            return f"{self.python_version} timestamp mtime={self.mtime} size={self.source_size}"
        return f"{self.python_version} {self.invalidation} {self.source_hash}"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One path of an install tree."""

    path: str
    """Relative, POSIX, normalised: no ``.``/``..`` components, no leading or trailing ``/``."""
    kind: str
    mode: int
    """Permission bits including setuid/setgid/sticky (``stat.S_IMODE``)."""
    size: int = 0
    """Bytes of a regular file; 0 for directories, symlinks and special files."""
    sha256: str | None = None
    """Hex digest of a regular file's bytes; None otherwise."""
    target: str | None = None
    """A symlink's target, exactly as stored (relative or absolute); None otherwise."""
    pyc: PycFields | None = None

    @property
    def is_file(self) -> bool:
        """True for regular files (everything that has a digest)."""
        return self.sha256 is not None


@dataclass(frozen=True, slots=True)
class Manifest:
    """An install tree as data, with the inputs that produced it."""

    format: str = MANIFEST_FORMAT
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """Source digest, recipe, environment digest, runner, flags, variations: whatever the producer knew."""
    entries: tuple[ManifestEntry, ...] = ()

    def by_path(self) -> dict[str, ManifestEntry]:
        """The entries keyed by path."""
        return {entry.path: entry for entry in self.entries}


# --------------------------------------------------------------------------- kind detection


def detect_kind(name: str, head: bytes) -> str:
    """The kind of a regular file named ``name`` whose first bytes are ``head``.

    The bytes decide; the name only separates kinds that are the same bytes to a parser (a
    ``_sysconfigdata*.py`` module is Python text that defines ``build_time_vars``).
    """
    if head.startswith(_ELF_MAGIC):
        return _elf_kind(head)
    if head.startswith(_AR_MAGIC):
        return STATIC_ARCHIVE
    if _looks_like_pyc(head):
        return PYC
    if not _is_text(head):
        return BINARY
    if name.startswith("_sysconfig_vars") and name.endswith(".json") and head.lstrip().startswith(b"{"):
        return SYSCONFIGDATA  # 3.14+: the same variables as sysconfigdata, as one JSON object
    if name.endswith(".py"):
        if name.startswith(("_sysconfigdata", "_sysconfig_vars")) and b"build_time_vars" in head:
            return SYSCONFIGDATA
        return PYTHON_SOURCE
    return TEXT


def _elf_kind(head: bytes) -> str:
    if len(head) < 52:
        return BINARY
    elf_class, data_encoding = head[4], head[5]
    if elf_class not in (1, 2) or data_encoding not in (1, 2):
        return BINARY
    endian = "<" if data_encoding == 1 else ">"
    (e_type,) = struct.unpack_from(endian + "H", head, 16)
    if e_type == _ET_EXEC:
        return ELF_EXECUTABLE
    if e_type == _ET_REL:
        return ELF_RELOCATABLE
    if e_type != _ET_DYN:
        return ELF_OTHER
    # A PIE executable and a shared library are both ET_DYN: only the former asks for an interpreter.
    if elf_class == 2:
        if len(head) < 64:
            return BINARY
        (phoff,) = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(endian + "I", head, 28)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 42)
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + 4 > len(head):
            break  # program headers beyond the part read: unusual layouts count as shared objects
        (p_type,) = struct.unpack_from(endian + "I", head, offset)
        if p_type == _PT_INTERP:
            return ELF_EXECUTABLE
    return ELF_SHARED_OBJECT


def _looks_like_pyc(head: bytes) -> bool:
    try:
        parse_header(head)
    except PycError:
        return False
    return True


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut off by the read limit is still text.
        return error.start >= len(head) - 3 and error.reason == "unexpected end of data"
    return True


def pyc_fields(head: bytes) -> PycFields | None:
    """The PEP 552 header fields of ``.pyc`` bytes, or None if they are not a readable ``.pyc``."""
    try:
        header = parse_header(head)
    except PycError:
        return None
    return PycFields(
        magic=header.magic,
        python_version=header.python_version,
        invalidation=header.kind,
        mtime=header.mtime,
        source_size=header.source_size,
        source_hash=header.source_hash.hex() if header.source_hash is not None else None,
    )


# --------------------------------------------------------------------------- scanning


def _scan_file(full: str, name: str) -> tuple[str, str, PycFields | None]:
    with open(full, "rb") as stream:
        head = stream.read(_HEAD_BYTES)
    digest = sha256_file(full)
    kind = detect_kind(name, head)
    return digest, kind, pyc_fields(head) if kind == PYC else None


def _scan_batch(files: list[tuple[str, str]]) -> list[tuple[str, str, PycFields | None]]:
    return [_scan_file(full, name) for full, name in files]


def _walk(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """Every path below ``root`` as (relative path, absolute path, lstat), without following links."""
    pending = [("", root)]
    while pending:
        relative_dir, absolute_dir = pending.pop()
        with os.scandir(absolute_dir) as listing:
            children = list(listing)
        for child in children:
            relative = f"{relative_dir}/{child.name}" if relative_dir else child.name
            info = child.stat(follow_symlinks=False)
            yield relative, child.path, info
            if stat.S_ISDIR(info.st_mode):
                pending.append((relative, child.path))


def scan_tree(root: Path, *, workers: int | None = None) -> tuple[ManifestEntry, ...]:
    """Describe every path under ``root`` (``root`` itself excluded), sorted by path.

    Symlinks are recorded, never followed. Regular files are read once each, in a thread pool:
    ``hashlib.file_digest`` releases the GIL, so hashing uses every core.
    Raises :class:`ManifestError` if ``root`` is not a directory.
    """
    if not root.is_dir():
        raise ManifestError(f"not a directory: {root}")
    found = sorted(_walk(os.fspath(root)), key=lambda item: item[0])
    files = [(full, relative.rsplit("/", 1)[-1]) for relative, full, info in found if stat.S_ISREG(info.st_mode)]
    pool_size = workers or max(2, len(os.sched_getaffinity(0)))
    # Batches, not one task per file: a future costs ~100 us, as much as hashing a small .py.
    batch = max(1, min(_BATCH_FILES, len(files) // (pool_size * 4) or 1))
    batches = [files[i : i + batch] for i in range(0, len(files), batch)]
    try:
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            scanned = (item for chunk in pool.map(_scan_batch, batches) for item in chunk)
            entries: list[ManifestEntry] = []
            for relative, full, info in found:
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISREG(info.st_mode):
                    digest, kind, pyc = next(scanned)
                    entries.append(ManifestEntry(relative, kind, mode, info.st_size, digest, None, pyc))
                elif stat.S_ISDIR(info.st_mode):
                    entries.append(ManifestEntry(relative, DIRECTORY, mode))
                elif stat.S_ISLNK(info.st_mode):
                    entries.append(ManifestEntry(relative, SYMLINK, mode, target=os.readlink(full)))  # noqa: PTH115 - str paths keep the walk cheap
                else:
                    entries.append(ManifestEntry(relative, SPECIAL, mode))
    except OSError as error:
        raise ManifestError(f"cannot read {error.filename or root}: {error.strerror or error}") from error
    return tuple(entries)


def _hash_batch(files: list[str]) -> list[str | None]:
    digests: list[str | None] = []
    for full in files:
        try:
            digests.append(sha256_file(full))
        except OSError:
            digests.append(None)  # vanished or unreadable: reported as changed
    return digests


def verify_tree(root: Path, entries: Iterable[ManifestEntry], *, workers: int | None = None) -> list[str]:
    """How the tree under ``root`` differs from ``entries`` (a manifest's); empty when it is exactly them.

    Compared for every path: present on both sides, its type (directory, symlink, regular file, other),
    permission bits, a symlink's target, and a regular file's size and then sha256. Kinds are not detected
    again (the bytes decide them, and the bytes are compared), so this runs at hash speed: every file is
    read once, in a thread pool, and files whose size already differs are not read at all. Symlinks are
    never followed. One line per difference, in path order.
    """
    expected = {entry.path: entry for entry in entries}
    try:
        found = sorted(_walk(os.fspath(root)), key=lambda item: item[0])
    except OSError as error:
        return [f"cannot read {error.filename or root}: {error.strerror or error}"]
    problems: dict[str, str] = {}
    to_hash: list[tuple[str, str, ManifestEntry]] = []
    for relative, full, info in found:
        entry = expected.pop(relative, None)
        if entry is None:
            problems[relative] = f"{relative}: not in the manifest"
            continue
        kind = _disk_kind(info.st_mode)
        wanted = _disk_kind_of(entry.kind)
        if kind != wanted:
            problems[relative] = f"{relative}: a {kind}, the manifest says {wanted}"
        elif stat.S_IMODE(info.st_mode) != entry.mode:
            mode = stat.S_IMODE(info.st_mode)
            problems[relative] = f"{relative}: mode {mode:04o}, the manifest says {entry.mode:04o}"
        elif kind == "symlink" and os.readlink(full) != entry.target:  # noqa: PTH115 - str paths, as in the walk
            problems[relative] = f"{relative}: links to {os.readlink(full)!r}, the manifest says {entry.target!r}"  # noqa: PTH115
        elif kind == "file" and info.st_size != entry.size:
            problems[relative] = f"{relative}: {info.st_size} bytes, the manifest says {entry.size}"
        elif kind == "file":
            to_hash.append((relative, full, entry))
    for relative in expected:
        problems[relative] = f"{relative}: missing"
    pool_size = workers or max(2, len(os.sched_getaffinity(0)))
    batch = max(1, min(_BATCH_FILES, len(to_hash) // (pool_size * 4) or 1))
    batches = [[full for _, full, _ in to_hash[i : i + batch]] for i in range(0, len(to_hash), batch)]
    with ThreadPoolExecutor(max_workers=pool_size) as pool:
        digests = [digest for chunk in pool.map(_hash_batch, batches) for digest in chunk]
    for (relative, _full, entry), digest in zip(to_hash, digests, strict=True):
        if digest != entry.sha256:
            shown = digest[:16] + "…" if digest else "unreadable"
            problems[relative] = f"{relative}: sha256 {shown}, the manifest says {(entry.sha256 or '')[:16]}…"
    return [problems[path] for path in sorted(problems)]


def _disk_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISREG(mode):
        return "file"
    return "special file"


def _disk_kind_of(kind: str) -> str:
    if kind == DIRECTORY:
        return "directory"
    if kind == SYMLINK:
        return "symlink"
    if kind in FILE_KINDS:
        return "file"
    return "special file"


# --------------------------------------------------------------------------- the JSON form's models
#
# The format's specification: the first line (or the document's top level) is a ManifestHeader, each entry
# an EntryDocument; write_manifest writes every line through them and read_manifest reads every line with
# them, and verify/schemas/manifest-v1.json is generated from ManifestDocument. In memory each entry is the
# slotted ManifestEntry above: a model per entry would hold ten times the memory (~1 KiB against ~90 bytes),
# and a manifest can hold millions. Paths and link targets are plain strings checked by Python rules:
# pydantic's string constraints refuse the lone surrogates that stand for undecodable bytes in file names.

_SHA256_PATTERN: Final = "^[0-9a-f]{64}$"
"""verify.source.names.SHA256_PATTERN (the manifest sits below the source stage)."""
_MODE: Final = re.compile(r"[0-7]{4}")
_SHA256: Final = re.compile(_SHA256_PATTERN.removeprefix("^").removesuffix("$"))
_INTERNED: Final = {kind: kind for kind in KINDS}
"""Each kind as one string object: a million entries share thirteen strings instead of holding one each."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _path_problem(text: str) -> str | None:
    problem = check_relative_path(text)
    return None if problem is None else f"{problem}: {_short(text)}"


def _mode_problem(text: str) -> str | None:
    return None if _MODE.fullmatch(text) else f"must be four octal digits (0644), not {_short(text)}"


def _sha256_problem(text: str) -> str | None:
    return None if _SHA256.fullmatch(text) else f"must be 64 lower-case hex digits, not {_short(text)}"


def _target_problem(text: str) -> str | None:
    return None if text and "\x00" not in text else f"must be a non-empty link target without NUL, not {_short(text)}"


class PycHeader(StrictModel):
    """A ``.pyc`` entry's PEP 552 header (:class:`verify.manifest.PycFields`)."""

    magic: int
    python_version: str
    invalidation: Literal["timestamp", "checked-hash", "unchecked-hash"]
    mtime: Omittable[Count] = OMITTED
    """A timestamp ``.pyc``'s source mtime (left out otherwise)."""
    source_size: Omittable[Count] = OMITTED
    """A timestamp ``.pyc``'s source size (left out otherwise)."""
    source_hash: Omittable[Annotated[str, Field(pattern=r"^[0-9a-f]*$")]] = OMITTED
    """Hex of the 8-byte SipHash of the source (hash-based ``.pyc`` only; left out otherwise)."""

    def fields(self) -> PycFields:
        """The header as the manifest value holds it."""
        return PycFields(
            self.magic, self.python_version, self.invalidation, self.mtime, self.source_size, self.source_hash
        )


class EntryDocument(StrictModel):
    """One path of the install tree, as one line of the manifest."""

    path: Annotated[str, rule(_path_problem)]
    """Relative, POSIX, normalised: no ``.``/``..`` or empty components, no leading or trailing ``/``."""
    kind: Annotated[str, OneOf(sorted(KINDS), "a manifest kind")]
    """Detected from the bytes (``elf-executable``, ``pyc``, ``text``...), never from the name alone."""
    mode: Annotated[str, rule(_mode_problem), Field(json_schema_extra={"pattern": "^[0-7]{4}$"})]
    """Permission bits, setuid/setgid/sticky included, as four octal digits."""
    size: Omittable[Count] = OMITTED
    """A regular file's bytes (only a regular file has one)."""
    sha256: Omittable[Annotated[str, rule(_sha256_problem), Field(json_schema_extra={"pattern": _SHA256_PATTERN})]] = (
        OMITTED
    )
    """A regular file's sha256 (only a regular file has one)."""
    target: Omittable[Annotated[str, rule(_target_problem), Field(json_schema_extra={"minLength": 1})]] = OMITTED
    """A symlink's target, exactly as stored (only a symlink has one)."""
    pyc: Omittable[PycHeader] = OMITTED
    """A ``.pyc`` file's header (only a ``pyc`` has one, and only when it is readable)."""

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> EntryDocument:
        if self.kind in FILE_KINDS:
            if self.sha256 is None or self.size is None:
                raise table_error(f"a {self.kind} file needs 'sha256' and 'size'")
        elif self.sha256 is not None or self.size is not None:
            raise table_error(f"a {self.kind} has no 'sha256' or 'size'")
        if self.kind == SYMLINK and self.target is None:
            raise table_error("a symlink needs a 'target'")
        if self.kind != SYMLINK and self.target is not None:
            raise table_error(f"a {self.kind} has no 'target'")
        if self.kind != PYC and self.pyc is not None:
            raise table_error(f"a {self.kind} has no 'pyc' header")
        return self

    @classmethod
    def of(cls, entry: ManifestEntry) -> EntryDocument:
        """The line of a manifest value's entry (built without validation: the value is the tool's own)."""
        pyc = entry.pyc
        return cls.model_construct(
            path=entry.path,
            kind=entry.kind,
            mode=f"{entry.mode:04o}",
            size=entry.size if entry.sha256 is not None else None,
            sha256=entry.sha256,
            target=entry.target,
            pyc=None
            if pyc is None
            else PycHeader.model_construct(
                magic=pyc.magic,
                python_version=pyc.python_version,
                invalidation=pyc.invalidation,
                mtime=pyc.mtime,
                source_size=pyc.source_size,
                source_hash=pyc.source_hash,
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """The line's object: every value is already JSON's (a plain dump is a third faster than a JSON-mode one)."""
        return self.model_dump()

    def entry(self) -> ManifestEntry:
        """The entry as the manifest value holds it."""
        return ManifestEntry(
            self.path,
            _INTERNED[self.kind],
            int(self.mode, 8),
            self.size or 0,
            self.sha256,
            self.target,
            None if self.pyc is None else self.pyc.fields(),
        )


class ManifestHeader(StrictModel):
    """The manifest's first line: its format and the inputs that produced the tree."""

    format: Literal["cpython-verify/manifest/v1"]
    inputs: dict[str, Any]
    """Source digest, recipe, environment, runner, settings, variations: whatever the producer knew (a rebuild
    writes its record's ``inputs`` here)."""


class ManifestDocument(ManifestHeader):
    """A whole manifest: the header's keys and one entry per path, sorted by path."""

    entries: tuple[EntryDocument, ...] = Field(strict=False)


# --------------------------------------------------------------------------- canonical JSON


def _canonical(value: Any) -> str:
    # ensure_ascii keeps the bytes identical whatever the locale and escapes undecodable file names
    # (surrogate escapes from os.fsdecode) instead of failing on them.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _lines(manifest: Manifest) -> Iterator[bytes]:
    header = ManifestHeader.model_construct(format=manifest.format, inputs=dict(manifest.inputs))
    try:
        first = _canonical(header.model_dump())
    except (TypeError, ValueError) as error:
        raise ManifestError(f"manifest inputs are not plain JSON data: {error}") from error
    # The header's keys, then the entries' list opened on the same line: sorted keys put "entries" first.
    yield (first[:-1] + ',"entries":[\n').encode("ascii")
    last = len(manifest.entries) - 1
    for index, entry in enumerate(manifest.entries):
        yield (_canonical(EntryDocument.of(entry).to_json()) + ("\n" if index == last else ",\n")).encode("ascii")
    yield b"]}\n"


def manifest_to_json(manifest: Manifest) -> bytes:
    """The canonical bytes of ``manifest``: sorted keys, no spaces, one entry per line, entries in path order."""
    return b"".join(_lines(_sorted(manifest)))


def manifest_digest(manifest: Manifest) -> str:
    """The sha256 (hex) of the canonical bytes of ``manifest``."""
    digest = hashlib.sha256()
    for line in _lines(_sorted(manifest)):
        digest.update(line)
    return digest.hexdigest()


def _sorted(manifest: Manifest) -> Manifest:
    entries = manifest.entries
    if any(entries[i].path >= entries[i + 1].path for i in range(len(entries) - 1)):
        ordered = tuple(sorted(entries, key=lambda entry: entry.path))
        if any(ordered[i].path == ordered[i + 1].path for i in range(len(ordered) - 1)):
            raise ManifestError("manifest has duplicate paths")
        return Manifest(manifest.format, manifest.inputs, ordered)
    return manifest


def write_manifest(manifest: Manifest, path: Path) -> str:
    """Write the canonical bytes of ``manifest`` to ``path`` atomically; return their sha256.

    The bytes go to a temporary file in the same directory, are fsynced, and replace ``path`` in one
    rename: a reader sees the old manifest or the new one, never half of one.
    """
    return write_atomic(path, _lines(_sorted(manifest)))


# --------------------------------------------------------------------------- reading and validation


def read_manifest(path: Path) -> Manifest:
    """Read and strictly validate a manifest file.

    The first line (or the document's top level) is validated by :class:`ManifestHeader`
    and each entry by :class:`EntryDocument`. Refuses (with :class:`ManifestError`, one
    line naming the file, the line or entry, and the key) anything else: not JSON, nested too deeply, an
    unknown ``format``, unknown or missing keys, mistyped values, unsafe paths (absolute, ``..``, ``.``,
    empty components), duplicate or unsorted paths, more than :data:`MAX_ENTRIES` entries, and a FIFO or
    directory in place of the file. The canonical layout is parsed one line at a time, so memory grows
    with the entries kept, not with the JSON document.
    """
    try:
        # A regular file only: a FIFO in a peer's tree would block the read forever.
        with open_regular_file(path) as stream:
            first = stream.readline(MAX_LINE_BYTES + 1)
            if first.startswith(b'{"format":') and first.endswith(b',"entries":[\n'):
                return _read_canonical(path, first, stream)
            rest = stream.read(MAX_WHOLE_DOCUMENT_BYTES + 1 - len(first))
    except OSError as error:
        raise ManifestError(f"cannot read manifest {path}: {error.strerror or error}") from error
    document = first + rest
    if len(document) > MAX_WHOLE_DOCUMENT_BYTES:
        raise ManifestError(
            f"manifest {path} is larger than {MAX_WHOLE_DOCUMENT_BYTES >> 20} MiB and not in the canonical "
            "one-entry-per-line layout"
        )
    data = load_json(document, where=f"manifest {path}", error=ManifestError)
    if not isinstance(data, dict):
        raise ManifestError(f"manifest {path}: must be an object, not {_json_type(data)}")
    if "entries" not in data:
        raise ManifestError(f"manifest {path}: missing key 'entries'")
    entries = data.pop("entries")
    header = _header(path, data, where="")
    if not isinstance(entries, list):
        raise ManifestError(f"manifest {path}: 'entries' must be a list, not {_json_type(entries)}")
    if len(entries) > MAX_ENTRIES:
        raise ManifestError(f"manifest {path} has more than {MAX_ENTRIES} entries")
    return Manifest(MANIFEST_FORMAT, header.inputs, _validated_entries(path, enumerate(entries, 1)))


def _read_canonical(path: Path, first: bytes, stream: IO[bytes]) -> Manifest:
    where = f"manifest {path}: line 1"
    header = _header(path, load_json(first[: -len(',"entries":[\n')] + b"}", where=where, error=ManifestError))

    def raw_entries() -> Iterator[tuple[int, Any]]:
        line_number = 1
        finished = False
        expect_more = True
        for raw in iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""):
            line_number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ManifestError(f"manifest {path}: line {line_number} is longer than {MAX_LINE_BYTES} bytes")
            if finished:
                raise ManifestError(f"manifest {path}: unexpected data after the end, line {line_number}")
            if raw in (b"]}\n", b"]}"):
                if expect_more and line_number > 2:
                    raise ManifestError(f"manifest {path}: line {line_number - 1} ends with a comma before ']}}'")
                finished = True
                continue
            if not expect_more:
                raise ManifestError(f"manifest {path}: line {line_number - 1} lacks the ',' between entries")
            text = raw.rstrip(b"\n")
            expect_more = text.endswith(b",")
            where = f"manifest {path}: line {line_number}"
            yield line_number, load_json(text[:-1] if expect_more else text, where=where, error=ManifestError)
        if not finished:
            raise ManifestError(f"manifest {path} is truncated: no closing ']}}' after line {line_number}")

    return Manifest(MANIFEST_FORMAT, header.inputs, _validated_entries(path, raw_entries()))


def _header(path: Path, data: Any, *, where: str = "line 1") -> ManifestHeader:
    named = f"manifest {path}: {where}" if where else f"manifest {path}"
    return parse_model(ManifestHeader, data, where=named, error=ManifestError, json=True)


def _json_type(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a float"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def check_relative_path(text: str) -> str | None:
    """Why ``text`` is not a safe, normalised relative POSIX path; None when it is."""
    if not text:
        return "empty path"
    if "\x00" in text:
        return "NUL byte in path"
    if text.startswith("/"):
        return "absolute path"
    parts = text.split("/")
    if any(part == "" for part in parts):
        return "empty path component (double or trailing '/')"
    if any(part == ".." for part in parts):
        return "'..' component (path traversal)"
    if any(part == "." for part in parts):
        return "'.' component (not normalised)"
    return None


def _validated_entries(path: Path, items: Iterable[tuple[int, Any]]) -> tuple[ManifestEntry, ...]:
    entries: list[ManifestEntry] = []
    previous = ""
    for where, item in items:
        if len(entries) >= MAX_ENTRIES:
            raise ManifestError(f"manifest {path} has more than {MAX_ENTRIES} entries")
        try:
            entry = EntryDocument.model_validate(item).entry()
        except ValidationError as error:
            raise ManifestError(f"manifest {path}: entry {where}: {first_problem(error, json=True)}") from None
        if entry.path <= previous:
            problem = "duplicate path" if entry.path == previous else "paths out of order (must be sorted)"
            raise ManifestError(f"manifest {path}: entry {where}: {problem}: {entry.path!r}")
        previous = entry.path
        entries.append(entry)
    return tuple(entries)
