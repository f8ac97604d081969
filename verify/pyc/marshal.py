"""A marshal reader that does not depend on the running interpreter's version.

It follows CPython's ``Python/marshal.c`` (``r_object``) for formats 2-6, with the code-object field layout
chosen by the caller (3.8-3.10 or 3.11+), and computes a canonical digest of every value while reading:

* FLAG_REF and TYPE_REF only say which objects were shared when the file was written (they follow reference
  counts, CPython issues #78274 and #98819). The digest of a value depends on the value alone, so two files
  that differ only in reference flags get the same digests.
* A container's digest is a hash over its children's encodings (a Merkle tree), so shared sub-trees are
  hashed once: a hostile file that references one tuple from many places cannot blow up the work.
* Frozenset elements are digested in sorted order, so the hash-seed dependent iteration order the writer
  used does not matter.

The reader is iterative (an explicit stack instead of recursion) so CPython's nesting limit of 2,000 levels
can be honoured without touching Python's recursion limit; every length is checked against the bytes that
remain before anything is allocated.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from verify.common.limits import PYC_MAX_DEPTH, PYC_MAX_LONG_DIGITS, PYC_MAX_OBJECTS
from verify.pyc.errors import MarshalError
from verify.pyc.header import LATEST_MARSHAL_VERSION
from verify.pyc.values import (
    CodeObject,
    DictValue,
    FrozenDictValue,
    FrozenSetValue,
    ListValue,
    SetValue,
    Singleton,
    SliceValue,
    Value,
)

# CPython's MAX_MARSHAL_STACK_DEPTH on Linux (Python/marshal.c); the budgets live in verify.common.limits.
MAX_DEPTH: Final = PYC_MAX_DEPTH
# Every object takes at least one byte, so the input size bounds this too; the cap keeps memory bounded.
MAX_OBJECTS: Final = PYC_MAX_OBJECTS
MAX_LONG_DIGITS: Final = PYC_MAX_LONG_DIGITS

FLAG_REF: Final = 0x80

# Type codes (Python/marshal.c).
TYPE_NULL: Final = ord("0")
TYPE_NONE: Final = ord("N")
TYPE_FALSE: Final = ord("F")
TYPE_TRUE: Final = ord("T")
TYPE_STOPITER: Final = ord("S")
TYPE_ELLIPSIS: Final = ord(".")
TYPE_INT: Final = ord("i")
TYPE_INT64: Final = ord("I")
TYPE_FLOAT: Final = ord("f")
TYPE_BINARY_FLOAT: Final = ord("g")
TYPE_COMPLEX: Final = ord("x")
TYPE_BINARY_COMPLEX: Final = ord("y")
TYPE_LONG: Final = ord("l")
TYPE_STRING: Final = ord("s")
TYPE_INTERNED: Final = ord("t")
TYPE_REF: Final = ord("r")
TYPE_TUPLE: Final = ord("(")
TYPE_LIST: Final = ord("[")
TYPE_DICT: Final = ord("{")
TYPE_FROZENDICT: Final = ord("}")
TYPE_CODE: Final = ord("c")
TYPE_UNICODE: Final = ord("u")
TYPE_SET: Final = ord("<")
TYPE_FROZENSET: Final = ord(">")
TYPE_SLICE: Final = ord(":")
TYPE_ASCII: Final = ord("a")
TYPE_ASCII_INTERNED: Final = ord("A")
TYPE_SMALL_TUPLE: Final = ord(")")
TYPE_SHORT_ASCII: Final = ord("z")
TYPE_SHORT_ASCII_INTERNED: Final = ord("Z")

# The marshal format that introduced each newer type code; a reader of an older format refuses them as unknown.
_INTRODUCED_IN: Final = {TYPE_SLICE: 5, TYPE_FROZENDICT: 6}

_DIGEST_DOMAIN: Final = b"cpython-verify/pyc-semantic-digest/v1\0"

# Code-object fields in marshal order: "L" is a raw 32-bit integer, "O" a nested object.
_CODE_FIELDS_311: Final = (
    ("argcount", "L"),
    ("posonlyargcount", "L"),
    ("kwonlyargcount", "L"),
    ("stacksize", "L"),
    ("flags", "L"),
    ("code", "O"),
    ("consts", "O"),
    ("names", "O"),
    ("localsplusnames", "O"),
    ("localspluskinds", "O"),
    ("filename", "O"),
    ("name", "O"),
    ("qualname", "O"),
    ("firstlineno", "L"),
    ("linetable", "O"),
    ("exceptiontable", "O"),
)
_CODE_FIELDS_38: Final = (
    ("argcount", "L"),
    ("posonlyargcount", "L"),
    ("kwonlyargcount", "L"),
    ("nlocals", "L"),
    ("stacksize", "L"),
    ("flags", "L"),
    ("code", "O"),
    ("consts", "O"),
    ("names", "O"),
    ("varnames", "O"),
    ("freevars", "O"),
    ("cellvars", "O"),
    ("filename", "O"),
    ("name", "O"),
    ("firstlineno", "L"),
    ("linetable", "O"),  # co_lnotab in 3.8/3.9, co_linetable in 3.10: same slot
)
_BYTES_FIELDS: Final = frozenset({"code", "localspluskinds", "linetable", "exceptiontable"})
_STR_FIELDS: Final = frozenset({"filename", "name", "qualname"})
_NAME_TUPLE_FIELDS: Final = frozenset({"names", "localsplusnames", "varnames", "freevars", "cellvars"})


class _Null:
    """Marshal's NULL: only legal as the terminator of a dict."""


_NULL: Final = _Null()
_NULL_ENC: Final = b"0"
# What reading one object yields: a value (or NULL) and its canonical encoding.
_Child: TypeAlias = tuple["Value | _Null", bytes]


def _digits_to_int(digits: tuple[int, ...]) -> int:
    """The number whose base-2**15 digits, least significant first, are ``digits``.

    Pairs are merged level by level (each level halves the count and doubles the width), so the work is
    O(n log n) in the digit count; shifting one accumulator digit by digit is quadratic, and a 300 KB
    ``.pyc`` holding one long took seconds that way.
    """
    parts = list(digits)
    width = 15
    while len(parts) > 1:
        if len(parts) % 2:
            parts.append(0)
        parts = [parts[i] | (parts[i + 1] << width) for i in range(0, len(parts), 2)]
        width *= 2
    return parts[0] if parts else 0


def _len_prefix(size: int) -> bytes:
    return size.to_bytes(8, "little")


def _encode_int(number: int) -> bytes:
    raw = number.to_bytes((number.bit_length() + 8) // 8, "little", signed=True)
    return b"i" + _len_prefix(len(raw)) + raw


def _encode_str(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return b"u" + _len_prefix(len(raw)) + raw


def _encode_bytes(raw: bytes) -> bytes:
    return b"s" + _len_prefix(len(raw)) + raw


def _container_enc(tag: bytes, child_encs: list[bytes]) -> bytes:
    hasher = hashlib.sha256(tag)
    hasher.update(_len_prefix(len(child_encs)))
    for enc in child_encs:
        hasher.update(enc)
    return b"H" + hasher.digest()


@dataclass(slots=True)
class _Builder:
    """A container being read: its children arrive one at a time from the main loop."""

    type_code: int
    ref_index: int | None
    expected: int  # children still to come; -1 for a dict (ends at NULL)
    items: list[Value] = field(default_factory=list)
    encs: list[bytes] = field(default_factory=list)
    # Code objects only: the position in the field schedule and the fields read so far.
    schedule: tuple[tuple[str, str], ...] = ()
    position: int = 0
    fields: dict[str, Value] = field(default_factory=dict)
    dict_key: tuple[Value, bytes] | None = None
    done: bool = False


class MarshalReader:
    """Reads one marshalled object from ``data`` starting at ``offset``.

    ``legacy_code_layout`` selects the 3.8-3.10 code-object layout; otherwise the 3.11+ one.
    ``marshal_version`` is the format of the series that wrote the data (``verify.pyc.header.MARSHAL_VERSIONS``):
    type codes of a newer format are refused, as that series' own marshal refuses them.
    After :meth:`read`, ``end`` is the offset just past the object and :meth:`encoding` gives the
    canonical encoding of any value that was read.
    """

    def __init__(
        self,
        data: bytes,
        *,
        legacy_code_layout: bool,
        marshal_version: int = LATEST_MARSHAL_VERSION,
        offset: int = 0,
    ) -> None:
        self._data = data
        self._marshal_version = marshal_version
        self._pos = offset
        self._schedule = _CODE_FIELDS_38 if legacy_code_layout else _CODE_FIELDS_311
        # The reference table: (value, encoding), or None while a container is reserved but unfinished.
        self._refs: list[tuple[Value, bytes] | None] = []
        self._objects = 0
        # Container encodings by identity; the value is kept in the entry so its id cannot be reused.
        self._encs: dict[int, tuple[Value, bytes]] = {}
        self.flagged = 0
        """How many objects carried FLAG_REF: the part of the bytes that follows reference counts."""
        self.back_references = 0
        """How many TYPE_REF back-references the data used."""

    @property
    def end(self) -> int:
        """The offset just past the bytes consumed so far."""
        return self._pos

    def encoding(self, value: Value) -> bytes:
        """The canonical encoding of a value this reader produced (containers are looked up by identity)."""
        entry = self._encs.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        return _scalar_encoding(value)

    def read(self) -> tuple[Value, bytes]:
        """Read one object; return it and its canonical encoding."""
        stack: list[_Builder] = []
        while True:
            result = self._read_object(stack)
            # Deliver finished values upwards for as long as they complete their parents.
            while result is not None:
                if not stack:
                    value, enc = result
                    if isinstance(value, _Null):
                        raise MarshalError("bad marshal data: NULL object at top level")
                    return value, enc
                top = stack[-1]
                if top.type_code == TYPE_SMALL_TUPLE and not isinstance(result[0], _Null):
                    # The commonest container, inlined: this loop runs once per object in the file.
                    top.items.append(result[0])
                    top.encs.append(result[1])
                    top.expected -= 1
                    if top.expected:
                        break
                else:
                    self._add_child(top, result)
                    if not top.done:
                        break
                stack.pop()
                result = self._finish(top)

    # -- primitive reads ---------------------------------------------------------------------------------

    def _take(self, size: int, what: str) -> bytes:
        if size > len(self._data) - self._pos:
            raise MarshalError(
                f"truncated marshal data: {what} needs {size} bytes at offset {self._pos}, "
                f"{len(self._data) - self._pos} remain"
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def _byte(self, what: str) -> int:
        return self._take(1, what)[0]

    def _long(self, what: str) -> int:
        value: int = struct.unpack("<i", self._take(4, what))[0]
        return value

    def _size(self, what: str, minimum_item_bytes: int = 1) -> int:
        # A count that cannot fit in the remaining bytes is refused before any allocation.
        size = self._long(what)
        remaining = len(self._data) - self._pos
        if size < 0 or size * minimum_item_bytes > remaining:
            raise MarshalError(
                f"bad marshal data: {what} {size} at offset {self._pos - 4} exceeds the {remaining} bytes left"
            )
        return size

    def _float_str(self) -> float:
        text = self._take(self._byte("float length"), "float text").decode("ascii", "replace")
        try:
            if "_" in text or text != text.strip():
                raise ValueError(text)
            return float(text)
        except ValueError:
            raise MarshalError(f"bad marshal data: invalid float text {text!r}") from None

    def _float_bin(self) -> float:
        value: float = struct.unpack("<d", self._take(8, "binary float"))[0]
        return value

    def _long_digits(self) -> int:
        count = self._long("long digit count")
        if count == 0:
            return 0
        magnitude = abs(count)
        if magnitude * 2 > len(self._data) - self._pos:
            raise MarshalError(f"truncated marshal data: long of {magnitude} digits at offset {self._pos - 4}")
        if magnitude > MAX_LONG_DIGITS:
            raise MarshalError(
                f"bad marshal data: long of {magnitude} digits at offset {self._pos - 4} exceeds the budget of "
                f"{MAX_LONG_DIGITS} digits"
            )
        raw = self._take(magnitude * 2, "long digits")
        digits = struct.unpack(f"<{magnitude}H", raw)
        if any(digit >= 0x8000 for digit in digits):
            raise MarshalError("bad marshal data: digit out of range in long")
        if digits[-1] == 0:
            raise MarshalError("bad marshal data: unnormalized long data")
        number = _digits_to_int(digits)
        return -number if count < 0 else number

    # -- objects -----------------------------------------------------------------------------------------

    def _register(self, flag: int, value: Value, enc: bytes) -> tuple[Value, bytes]:
        if flag:
            self.flagged += 1
            self._refs.append((value, enc))
        return value, enc

    def _reserve(self, flag: int) -> int | None:
        if not flag:
            return None
        self.flagged += 1
        self._refs.append(None)
        return len(self._refs) - 1

    def _read_object(self, stack: list[_Builder]) -> _Child | None:
        """Read one object: a finished scalar is returned; a container is pushed and None returned."""
        if len(stack) + 1 > MAX_DEPTH:
            raise MarshalError(f"bad marshal data: nesting deeper than {MAX_DEPTH} levels")
        self._objects += 1
        if self._objects > MAX_OBJECTS:
            raise MarshalError(f"bad marshal data: more than {MAX_OBJECTS} objects")
        data, offset = self._data, self._pos
        if offset >= len(data):
            raise MarshalError(f"truncated marshal data: an object was expected at offset {offset}")
        code = data[offset]
        self._pos = offset + 1
        flag, kind = code & FLAG_REF, code & ~FLAG_REF
        # Fast paths for the two commonest objects in real .pyc files: short names and back-references.
        if kind in (TYPE_SHORT_ASCII_INTERNED, TYPE_SHORT_ASCII):
            end = offset + 2 + (data[offset + 1] if offset + 1 < len(data) else 0)
            if end <= len(data):
                text = data[offset + 2 : end].decode("latin-1")
                self._pos = end
                return self._register(flag, text, _encode_str(text))
        elif kind == TYPE_REF and offset + 5 <= len(data):
            index = int.from_bytes(data[offset + 1 : offset + 5], "little", signed=True)
            if 0 <= index < len(self._refs) and (entry := self._refs[index]) is not None:
                self._pos = offset + 5
                self.back_references += 1
                return entry
        if _INTRODUCED_IN.get(kind, 0) > self._marshal_version:
            raise MarshalError(
                f"bad marshal data: type code {code:#04x} at offset {offset} is not in marshal format "
                f"{self._marshal_version} (it came with format {_INTRODUCED_IN[kind]})"
            )
        if kind == TYPE_NULL:
            return _NULL, _NULL_ENC  # checked by the receiving container
        if kind == TYPE_NONE:
            return None, b"N"
        if kind == TYPE_TRUE:
            return True, b"T"
        if kind == TYPE_FALSE:
            return False, b"F"
        if kind == TYPE_ELLIPSIS:
            return ..., b"."
        if kind == TYPE_STOPITER:
            return Singleton.STOP_ITERATION, b"S"
        if kind == TYPE_INT:
            number = self._long("int")
            return self._register(flag, number, _encode_int(number))
        if kind == TYPE_INT64:
            number = int.from_bytes(self._take(8, "int64"), "little", signed=True)
            return self._register(flag, number, _encode_int(number))
        if kind == TYPE_LONG:
            number = self._long_digits()
            return self._register(flag, number, _encode_int(number))
        if kind in (TYPE_FLOAT, TYPE_BINARY_FLOAT):
            real = self._float_str() if kind == TYPE_FLOAT else self._float_bin()
            return self._register(flag, real, b"g" + struct.pack("<d", real))
        if kind in (TYPE_COMPLEX, TYPE_BINARY_COMPLEX):
            read = self._float_str if kind == TYPE_COMPLEX else self._float_bin
            real = read()
            imag = read()
            return self._register(flag, complex(real, imag), b"y" + struct.pack("<dd", real, imag))
        if kind == TYPE_STRING:
            raw = self._take(self._size("bytes size"), "bytes")
            return self._register(flag, raw, _encode_bytes(raw))
        if kind in (TYPE_SHORT_ASCII, TYPE_SHORT_ASCII_INTERNED, TYPE_ASCII, TYPE_ASCII_INTERNED):
            short = kind in (TYPE_SHORT_ASCII, TYPE_SHORT_ASCII_INTERNED)
            size = self._byte("short string size") if short else self._size("string size")
            # CPython builds these as one-byte-kind (latin-1) strings without checking they are ASCII.
            text = self._take(size, "string").decode("latin-1")
            return self._register(flag, text, _encode_str(text))
        if kind in (TYPE_UNICODE, TYPE_INTERNED):
            raw = self._take(self._size("string size"), "string")
            try:
                text = raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise MarshalError(f"bad marshal data: invalid UTF-8 string at offset {offset}") from None
            return self._register(flag, text, _encode_str(text))
        if kind == TYPE_REF:
            index = self._long("reference index")
            if not 0 <= index < len(self._refs):
                raise MarshalError(f"bad marshal data: invalid reference {index} at offset {offset}")
            entry = self._refs[index]
            if entry is None:
                raise MarshalError(
                    f"bad marshal data: reference {index} at offset {offset} points into an object still being read"
                )
            self.back_references += 1
            return entry
        if kind in (TYPE_TUPLE, TYPE_SMALL_TUPLE, TYPE_LIST, TYPE_SET, TYPE_FROZENSET):
            count = self._byte("small tuple size") if kind == TYPE_SMALL_TUPLE else self._size("container size")
            builder = _Builder(kind, self._reserve(flag), count)
        elif kind in (TYPE_DICT, TYPE_FROZENDICT):
            builder = _Builder(kind, self._reserve(flag), -1)
        elif kind == TYPE_SLICE:
            builder = _Builder(kind, self._reserve(flag), 3)
        elif kind == TYPE_CODE:
            builder = _Builder(kind, self._reserve(flag), -1, schedule=self._schedule)
            self._advance_code(builder)
        else:
            raise MarshalError(f"bad marshal data: unknown type code {code:#04x} at offset {offset}")
        if kind not in (TYPE_CODE, TYPE_DICT, TYPE_FROZENDICT):
            builder.done = builder.expected == 0
        if builder.done:
            return self._finish(builder)
        stack.append(builder)
        return None

    def _advance_code(self, builder: _Builder) -> None:
        # Read the raw integer fields up to the next nested object, or to the end of the schedule.
        while builder.position < len(builder.schedule):
            name, kind = builder.schedule[builder.position]
            if kind == "O":
                return
            number = self._long(f"code object {name}")
            builder.fields[name] = number
            builder.encs.append(_encode_int(number))
            builder.position += 1
        builder.done = True

    def _add_child(self, builder: _Builder, child: _Child) -> None:
        value, enc = child
        if builder.type_code in (TYPE_DICT, TYPE_FROZENDICT):
            if builder.dict_key is None:
                if isinstance(value, _Null):
                    builder.done = True
                    return
                builder.dict_key = (value, enc)
            else:
                if isinstance(value, _Null):
                    raise MarshalError("bad marshal data: NULL object as a dict value")
                key, key_enc = builder.dict_key
                builder.items.append((key, value))
                builder.encs.append(key_enc + enc)
                builder.dict_key = None
            return
        if isinstance(value, _Null):
            raise MarshalError("bad marshal data: NULL object inside a container")
        if builder.type_code == TYPE_CODE:
            name = builder.schedule[builder.position][0]
            builder.fields[name] = value
            builder.encs.append(enc)
            builder.position += 1
            self._advance_code(builder)
            return
        builder.items.append(value)
        builder.encs.append(enc)
        builder.expected -= 1
        builder.done = builder.expected == 0

    def _finish(self, builder: _Builder) -> tuple[Value, bytes]:
        kind = builder.type_code
        value: Value
        if kind in (TYPE_TUPLE, TYPE_SMALL_TUPLE):
            value = tuple(builder.items)
            enc = _container_enc(b"(", builder.encs)
        elif kind == TYPE_LIST:
            value = ListValue(tuple(builder.items))
            enc = _container_enc(b"[", builder.encs)
        elif kind in (TYPE_SET, TYPE_FROZENSET):
            # Set order follows string hashes (PYTHONHASHSEED); the digest uses sorted, de-duplicated members.
            canonical = sorted(set(builder.encs))
            value = FrozenSetValue(tuple(builder.items)) if kind == TYPE_FROZENSET else SetValue(tuple(builder.items))
            enc = _container_enc(b">" if kind == TYPE_FROZENSET else b"<", canonical)
        elif kind == TYPE_DICT:
            value = DictValue(tuple(builder.items))  # type: ignore[arg-type]  # pairs were appended above
            enc = _container_enc(b"{", builder.encs)
        elif kind == TYPE_FROZENDICT:
            # Insertion order is part of a frozendict (iteration shows it) and does not follow the hash seed.
            value = FrozenDictValue(tuple(builder.items))  # type: ignore[arg-type]  # pairs, as for a dict
            enc = _container_enc(b"}", builder.encs)
        elif kind == TYPE_SLICE:
            value = SliceValue(*builder.items)
            enc = _container_enc(b":", builder.encs)
        else:
            code = _make_code(builder.fields)
            value = code
            enc = _container_enc(b"c", builder.encs)
        self._encs[id(value)] = (value, enc)
        if builder.ref_index is not None:
            self._refs[builder.ref_index] = (value, enc)
        return value, enc


def _make_code(fields: dict[str, Value]) -> CodeObject:
    """Check each field's type the way CPython's _PyCode_Validate would, then build the value."""
    for name, value in fields.items():
        if name in _BYTES_FIELDS and not isinstance(value, bytes):
            raise MarshalError(f"bad marshal data: code object field {name} is {type(value).__name__}, not bytes")
        if name in _STR_FIELDS and not isinstance(value, str):
            raise MarshalError(f"bad marshal data: code object field {name} is {type(value).__name__}, not str")
        if name in _NAME_TUPLE_FIELDS and not (
            isinstance(value, tuple) and all(isinstance(item, str) for item in value)
        ):
            raise MarshalError(f"bad marshal data: code object field {name} is not a tuple of strings")
        if name == "consts" and not isinstance(value, tuple):
            raise MarshalError(f"bad marshal data: code object field consts is {type(value).__name__}, not tuple")
    return CodeObject(**fields)  # type: ignore[arg-type]  # every field's type was checked above


def _scalar_encoding(value: Value) -> bytes:
    # The same encodings the reader gives scalars; bool before int, since bool is an int subclass.
    if value is None:
        return b"N"
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return _encode_int(value)
    if isinstance(value, float):
        return b"g" + struct.pack("<d", value)
    if isinstance(value, complex):
        return b"y" + struct.pack("<dd", value.real, value.imag)
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, bytes):
        return _encode_bytes(value)
    if value is ...:
        return b"."
    if value is Singleton.STOP_ITERATION:
        return b"S"
    raise MarshalError(f"no canonical encoding for a {type(value).__name__} this reader did not produce")


def digest_from_encoding(enc: bytes) -> str:
    """The hex semantic digest of a value, given the canonical encoding the reader produced for it."""
    return hashlib.sha256(_DIGEST_DOMAIN + enc).hexdigest()


def read_marshal(
    data: bytes, *, legacy_code_layout: bool = False, marshal_version: int = LATEST_MARSHAL_VERSION
) -> Value:
    """Read one marshalled value from ``data`` (no ``.pyc`` header) with this module's own reader."""
    value, _enc = MarshalReader(data, legacy_code_layout=legacy_code_layout, marshal_version=marshal_version).read()
    return value
