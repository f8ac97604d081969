"""The PEP 552 ``.pyc`` header: magic number, flags, and either mtime + source size or a source hash.

The header is parsed from bytes alone; nothing here asks the running interpreter which version it is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from verify.pyc.errors import PycHeaderError

HEADER_SIZE = 16

# PEP 552 flag bits; CPython refuses any other bit (importlib._bootstrap_external._classify_pyc).
FLAG_HASH_BASED = 0b01
FLAG_CHECK_SOURCE = 0b10

# Magic-number ranges per release series, from CPython's own list of magic numbers
# (Lib/importlib/_bootstrap_external.py up to 3.12, Include/internal/pycore_magic_number.h from 3.13).
# Each range spans the alphas to the final release; from 3.11 on, series 3.n starts at 2900 + 50 * n.
MAGIC_RANGES: tuple[tuple[int, int, str], ...] = (
    (3400, 3419, "3.8"),
    (3420, 3429, "3.9"),
    (3430, 3449, "3.10"),
    (3450, 3499, "3.11"),
    (3500, 3549, "3.12"),
    (3550, 3599, "3.13"),
    (3600, 3649, "3.14"),
    (3650, 3699, "3.15"),
)

# The marshal format each series writes (Py_MARSHAL_VERSION), which is also the newest its reader knows:
# format 5 added slices (3.14), format 6 frozendicts (3.15). An older series' marshal refuses the newer
# type codes as unknown, so a .pyc is read with its own series' format.
MARSHAL_VERSIONS: dict[str, int] = {
    "3.8": 4,
    "3.9": 4,
    "3.10": 4,
    "3.11": 4,
    "3.12": 4,
    "3.13": 4,
    "3.14": 5,
    "3.15": 6,
}
LATEST_MARSHAL_VERSION = max(MARSHAL_VERSIONS.values())

# Series whose marshalled code objects still carry nlocals, varnames, freevars and cellvars.
# 3.11 replaced them with localsplusnames/localspluskinds and added qualname and the exception table.
LEGACY_CODE_LAYOUT_SERIES = frozenset({"3.8", "3.9", "3.10"})

PycKind = Literal["timestamp", "checked-hash", "unchecked-hash"]


@dataclass(frozen=True, slots=True)
class PycHeader:
    """What the first 16 bytes of a ``.pyc`` say."""

    magic: int
    """The 16-bit magic number (the first two bytes, little-endian)."""
    python_version: str
    """The release series that writes this magic number, e.g. ``"3.13"``."""
    kind: PycKind
    """How the interpreter decides whether the ``.pyc`` is stale (PEP 552)."""
    mtime: int | None
    """Source modification time (seconds, modulo 2**32) for timestamp ``.pyc``; else None."""
    source_size: int | None
    """Source size in bytes (modulo 2**32) for timestamp ``.pyc``; else None."""
    source_hash: bytes | None
    """The 8-byte SipHash of the source for hash-based ``.pyc``; else None."""
    flags: int = 0
    """The raw flags word, kept because a timestamp ``.pyc`` may still carry the meaningless check bit."""

    @property
    def marshal_version(self) -> int:
        """The marshal format this series writes and reads (4 up to 3.13, 5 in 3.14, 6 in 3.15)."""
        return MARSHAL_VERSIONS[self.python_version]

    def describe(self) -> str:
        """One line for reports, e.g. ``3.13 (magic 3571), checked-hash 0123abcd...``."""
        if self.kind == "timestamp":
            detail = f"timestamp mtime={self.mtime} size={self.source_size}"
        else:
            detail = f"{self.kind} {self.source_hash.hex() if self.source_hash else ''}"
        return f"{self.python_version} (magic {self.magic}), {detail}"


def python_version_for_magic(magic: int) -> str | None:
    """The release series that writes ``magic``, or None if it is not a 3.8-3.15 magic number."""
    for low, high, series in MAGIC_RANGES:
        if low <= magic <= high:
            return series
    return None


def parse_header(data: bytes) -> PycHeader:
    """Parse the 16-byte PEP 552 header at the start of ``data``.

    Raises :class:`PycHeaderError` for a short file, a magic number without the ``\\r\\n`` marker,
    a magic number outside 3.8-3.15, or flag bits PEP 552 does not define.
    """
    if len(data) < HEADER_SIZE:
        raise PycHeaderError(f"truncated .pyc: {len(data)} bytes, a header needs {HEADER_SIZE}")
    magic, marker, flags = struct.unpack_from("<H2sI", data, 0)
    if marker != b"\r\n":
        # Every CPython magic ends in CR LF so that text-mode corruption is detectable.
        raise PycHeaderError(f"not a .pyc file: bytes 2-3 are {marker.hex()}, expected 0d0a")
    series = python_version_for_magic(magic)
    if series is None:
        raise PycHeaderError(f"unsupported magic number {magic}: not a CPython 3.8-3.15 .pyc")
    if flags & ~(FLAG_HASH_BASED | FLAG_CHECK_SOURCE):
        raise PycHeaderError(f"invalid .pyc flags {flags:#x}: PEP 552 defines only bits 0 and 1")
    if flags & FLAG_HASH_BASED:
        kind: PycKind = "checked-hash" if flags & FLAG_CHECK_SOURCE else "unchecked-hash"
        return PycHeader(
            magic=magic,
            python_version=series,
            kind=kind,
            mtime=None,
            source_size=None,
            source_hash=bytes(data[8:16]),
            flags=flags,
        )
    mtime, size = struct.unpack_from("<II", data, 8)
    return PycHeader(
        magic=magic,
        python_version=series,
        kind="timestamp",
        mtime=mtime,
        source_size=size,
        source_hash=None,
        flags=flags,
    )
