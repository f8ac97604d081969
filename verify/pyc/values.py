"""The version-independent values a marshalled ``.pyc`` loads to.

Everything is a frozen value: plain Python scalars (None, bool, int, float, complex, str, bytes, Ellipsis),
tuples, and the small wrappers below for what has no immutable Python twin (frozensets keep their stream
order so the file's own order stays visible; lists, dicts, frozendicts and sets; slices; the StopIteration
singleton).
Comparing two loaded trees with ``==`` works for ordinary files, but untrusted input should be compared by
:func:`verify.pyc.semantic_digest`: shared references can make ``==`` and ``hash`` walk a tree exponentially.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import EllipsisType
from typing import TypeAlias


class Singleton(enum.Enum):
    """Marshal's named singletons that are not plain Python values."""

    STOP_ITERATION = "StopIteration"

    def __repr__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class FrozenSetValue:
    """A frozenset, with its elements in the order the file wrote them (the order is hash-seed dependent)."""

    items: tuple[Value, ...]

    def __repr__(self) -> str:
        return f"frozenset({{{', '.join(short_repr(item) for item in self.items)}}})"


@dataclass(frozen=True, slots=True)
class ListValue:
    """A list (marshal can hold one; compilers do not put lists in code objects)."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class SetValue:
    """A mutable set, in file order."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class DictValue:
    """A dict as (key, value) pairs in file order."""

    items: tuple[tuple[Value, Value], ...]


@dataclass(frozen=True, slots=True)
class FrozenDictValue:
    """A frozendict (marshal format 6, Python 3.15+) as (key, value) pairs in file order."""

    items: tuple[tuple[Value, Value], ...]


@dataclass(frozen=True, slots=True, repr=False)
class SliceValue:
    """A slice constant (marshal format 5, Python 3.14+)."""

    start: Value
    stop: Value
    step: Value

    def __repr__(self) -> str:
        # As Python shows the slice (3.14's dis: LOAD_CONST slice(1, 2, None)).
        return _bounded_repr(self, depth=3)


@dataclass(frozen=True, slots=True, repr=False)
class CodeObject:
    """A code object with named fields, the same shape for every supported version.

    3.11+ fields ``qualname``, ``localsplusnames``, ``localspluskinds`` and ``exceptiontable`` are empty
    for 3.8-3.10; those versions' ``nlocals``, ``varnames``, ``freevars`` and ``cellvars`` are None / empty
    for 3.11+. ``linetable`` holds ``co_lnotab`` (3.8, 3.9) or ``co_linetable`` (3.10+), as marshalled.
    """

    argcount: int
    posonlyargcount: int
    kwonlyargcount: int
    stacksize: int
    flags: int
    code: bytes
    consts: tuple[Value, ...]
    names: tuple[str, ...]
    filename: str
    name: str
    firstlineno: int
    linetable: bytes
    qualname: str = ""
    localsplusnames: tuple[str, ...] = ()
    localspluskinds: bytes = b""
    exceptiontable: bytes = b""
    nlocals: int | None = None
    varnames: tuple[str, ...] = ()
    freevars: tuple[str, ...] = ()
    cellvars: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        """``qualname`` where the version has one, else ``name``."""
        return self.qualname or self.name

    def __repr__(self) -> str:
        # The generated repr would recurse through every constant; a code object is named by where it is.
        return f"<code object {self.display_name} at {self.filename}:{self.firstlineno}>"


Value: TypeAlias = (
    bool
    | int
    | float
    | complex
    | str
    | bytes
    | EllipsisType
    | Singleton
    | tuple["Value", ...]
    | FrozenSetValue
    | ListValue
    | SetValue
    | DictValue
    | FrozenDictValue
    | SliceValue
    | CodeObject
    | None
)


# 2,000 bits is 603 decimal digits: below the smallest integer-to-string limit Python allows (640 digits).
_MAX_SHOWN_INT_BITS = 2000


def short_repr(value: Value, limit: int = 80) -> str:
    """A bounded ``repr`` for reports: depth-capped and cut at ``limit`` characters."""
    text = _bounded_repr(value, depth=3)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounded_repr(value: Value, depth: int) -> str:
    # Python's own repr of a 2,000-deep tuple raises RecursionError; stop early instead.
    if isinstance(value, tuple):
        if depth <= 0:
            return "(...)"
        inner = ", ".join(_bounded_repr(item, depth - 1) for item in value[:8])
        more = ", ..." if len(value) > 8 else ""
        comma = "," if len(value) == 1 else ""
        return f"({inner}{comma}{more})"
    if isinstance(value, FrozenSetValue | ListValue | SetValue):
        if depth <= 0:
            return f"{type(value).__name__}(...)"
        inner = ", ".join(_bounded_repr(item, depth - 1) for item in value.items[:8])
        opener, closer = {FrozenSetValue: ("frozenset({", "})"), ListValue: ("[", "]"), SetValue: ("{", "}")}[
            type(value)
        ]
        return f"{opener}{inner}{', ...' if len(value.items) > 8 else ''}{closer}"
    if isinstance(value, DictValue):
        return "{...}" if value.items else "{}"
    if isinstance(value, FrozenDictValue):
        return "frozendict({...})" if value.items else "frozendict()"
    if isinstance(value, SliceValue):
        if depth <= 0:
            return "slice(...)"
        return f"slice({', '.join(_bounded_repr(part, depth - 1) for part in (value.start, value.stop, value.step))})"
    if isinstance(value, str | bytes) and len(value) > 200:
        return repr(value[:200]) + "..."
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_SHOWN_INT_BITS:
        # repr of an int past sys.get_int_max_str_digits() raises ValueError, and converting one just under
        # it is quadratic: a constant that large is named by its size.
        return f"<int of {value.bit_length()} bits>"
    return repr(value)
