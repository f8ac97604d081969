"""From ``.pyc`` bytes to a header, a code tree and its semantic digest."""

from __future__ import annotations

from dataclasses import dataclass, field

from verify.common.limits import PYC_MAX_BYTES
from verify.pyc.errors import MarshalError, PycError
from verify.pyc.header import HEADER_SIZE, LEGACY_CODE_LAYOUT_SERIES, PycHeader, parse_header
from verify.pyc.marshal import MarshalReader, digest_from_encoding
from verify.pyc.values import CodeObject, Value


@dataclass(frozen=True, slots=True)
class LoadedPyc:
    """A parsed ``.pyc``: header, root code object, digests, and where its bytes went."""

    header: PycHeader
    code: CodeObject
    semantic_digest: str
    """Hex sha256 over the canonical form of the code (header excluded, reference flags erased)."""
    marshal_data: bytes
    """The marshalled bytes of the root code object, exactly as in the file."""
    trailing: bytes
    """Bytes after the code object; CPython ignores them, so they are noise, but noise worth reporting."""
    _reader: MarshalReader = field(repr=False, compare=False)

    def encoding(self, value: Value) -> bytes:
        """The canonical encoding of a value from this tree: equal encodings mean equal values.

        Containers are found by identity, so pass the object from this tree, not an equal copy.
        """
        return self._reader.encoding(value)

    @property
    def flagged_objects(self) -> int:
        """Objects written with FLAG_REF (depends on reference counts when the file was written)."""
        return self._reader.flagged

    @property
    def back_references(self) -> int:
        """TYPE_REF back-references in the marshalled data."""
        return self._reader.back_references


def load_pyc(data: bytes) -> LoadedPyc:
    """Parse the header and read the code object with the layout the magic number implies.

    Raises :class:`~verify.pyc.errors.PycError` (one line) for anything malformed.
    """
    if len(data) > PYC_MAX_BYTES:
        raise PycError(f"a .pyc of {len(data)} bytes exceeds the budget of {PYC_MAX_BYTES >> 20} MiB; not read")
    header = parse_header(data)
    reader = MarshalReader(
        data,
        legacy_code_layout=header.python_version in LEGACY_CODE_LAYOUT_SERIES,
        marshal_version=header.marshal_version,
        offset=HEADER_SIZE,
    )
    value, enc = reader.read()
    if not isinstance(value, CodeObject):
        raise MarshalError(f"not a module .pyc: the marshalled object is {type(value).__name__}, not code")
    return LoadedPyc(
        header=header,
        code=value,
        semantic_digest=digest_from_encoding(enc),
        marshal_data=bytes(data[HEADER_SIZE : reader.end]),
        trailing=bytes(data[reader.end :]),
        _reader=reader,
    )


def load_code(data: bytes) -> CodeObject:
    """The root code object of a ``.pyc``, read without the host interpreter's ``marshal``."""
    return load_pyc(data).code


def semantic_digest(data: bytes) -> str:
    """Hex sha256 of a ``.pyc``'s code, stable across reference-flag noise, frozenset order and header."""
    return load_pyc(data).semantic_digest
