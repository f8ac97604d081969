"""Compare two ``.pyc`` files and explain the difference in one of five categories.

* ``identical``: the same bytes.
* ``header-only``: the same marshalled code; only the 16-byte header (timestamp vs hash, mtime, source size,
  source hash) or bytes after the code object differ.
* ``reference-flags-only``: the code objects are equal but the marshal bytes are not: FLAG_REF bits and
  back-reference indexes follow reference counts at write time (CPython issues #78274, #98819).
* ``path-only``: the code differs only in ``co_filename`` (the build path), and, when ``path_prefixes`` is
  given, exactly by swapping those prefixes.
* ``semantic``: different code; ``code_differences`` says which code object, which field, and for bytecode
  shows a ``dis``-style diff.

The category is the most serious one that applies; ``header_differences`` is filled whatever the category.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final, Literal

from verify.common.limits import PYC_MAX_LISTING_WORK
from verify.common.linediff import BoundedMatcher
from verify.pyc.disasm import decode
from verify.pyc.load import LoadedPyc, load_pyc
from verify.pyc.values import (
    CodeObject,
    DictValue,
    FrozenSetValue,
    ListValue,
    SetValue,
    SliceValue,
    Value,
    short_repr,
)

Category = Literal["identical", "header-only", "reference-flags-only", "path-only", "semantic"]

MAX_CODE_DIFFERENCES: Final = 100
MAX_DIFF_LINES: Final = 60
MAX_CODE_OBJECTS: Final = 200_000

_COMPARED_FIELDS: Final = tuple(f.name for f in fields(CodeObject) if f.name not in ("consts", "filename", "code"))


@dataclass(slots=True)
class _ListingBudget:
    """What is left of :data:`~verify.common.limits.PYC_MAX_LISTING_WORK` for one comparison."""

    remaining: int = PYC_MAX_LISTING_WORK


@dataclass(frozen=True, slots=True)
class CodeDifference:
    """One field of one code object that differs."""

    path: str
    """Where the code object sits, e.g. ``<module>/Parser/parse``."""
    field: str
    """The code-object field: ``code`` (bytecode), ``consts``, ``filename``, ``names``, ``linetable``, ..."""
    detail: tuple[str, ...]
    """Human-readable lines: for ``code`` a capped, ``dis``-style unified diff; else the two values."""


@dataclass(frozen=True, slots=True)
class PycComparison:
    """The verdict on two ``.pyc`` files."""

    category: Category
    explanation: str
    """One line saying why the category applies."""
    header_differences: tuple[str, ...]
    code_differences: tuple[CodeDifference, ...]
    truncated: bool = False
    """True when more code differences existed than ``MAX_CODE_DIFFERENCES``."""


def _header_differences(a: LoadedPyc, b: LoadedPyc) -> list[str]:
    ha, hb = a.header, b.header
    out: list[str] = []
    if ha.magic != hb.magic:
        out.append(f"magic: {ha.magic} ({ha.python_version}) vs {hb.magic} ({hb.python_version})")
    if ha.kind != hb.kind:
        out.append(f"invalidation mode: {ha.kind} vs {hb.kind}")
    if ha.flags != hb.flags and ha.kind == hb.kind:
        out.append(f"flags: {ha.flags:#x} vs {hb.flags:#x}")
    if ha.mtime != hb.mtime and ha.kind == hb.kind:
        out.append(f"source mtime: {ha.mtime} vs {hb.mtime}")
    if ha.source_size != hb.source_size and ha.kind == hb.kind:
        out.append(f"source size: {ha.source_size} vs {hb.source_size}")
    if ha.source_hash != hb.source_hash and ha.kind == hb.kind:
        out.append(f"source hash: {_hex(ha.source_hash)} vs {_hex(hb.source_hash)}")
    if a.trailing != b.trailing:
        out.append(f"trailing bytes after the code object: {len(a.trailing)} vs {len(b.trailing)}")
    return out


def _hex(raw: bytes | None) -> str:
    return raw.hex() if raw is not None else "none"


def compare_pyc(a: bytes, b: bytes, *, path_prefixes: tuple[str, str] | None = None) -> PycComparison:
    """Classify how ``.pyc`` bytes ``a`` and ``b`` differ.

    ``path_prefixes=(prefix_a, prefix_b)`` names the build paths the two files were made under; a
    ``co_filename`` difference then counts as path-only only if swapping the prefixes explains it.
    Raises :class:`~verify.pyc.errors.PycError` if either file cannot be read.
    """
    if a == b:
        return PycComparison("identical", "the files are byte-for-byte identical", (), ())
    left, right = load_pyc(a), load_pyc(b)
    headers = tuple(_header_differences(left, right))
    if left.header.magic != right.header.magic:
        return PycComparison(
            "semantic",
            f"written by different bytecode versions ({left.header.describe()} vs {right.header.describe()})",
            headers,
            (),
        )
    if left.semantic_digest == right.semantic_digest:
        if left.marshal_data == right.marshal_data:
            return PycComparison(
                "header-only", "the marshalled code is byte-identical; only the header differs", headers, ()
            )
        return PycComparison(
            "reference-flags-only",
            "the code objects are equal; the marshal bytes differ only in representation: reference flags "
            f"and back-references, or set order ({left.flagged_objects} vs {right.flagged_objects} flagged objects, "
            f"{left.back_references} vs {right.back_references} back-references)",
            headers,
            (),
        )
    differences, truncated = _code_differences(left, right, path_prefixes)
    explained_paths = [d for d in differences if d.field == "filename" and _explained(d, path_prefixes)]
    if differences and len(explained_paths) == len(differences) and not truncated:
        how = f"by the prefixes {path_prefixes[0]!r} -> {path_prefixes[1]!r}" if path_prefixes else "in the build path"
        return PycComparison(
            "path-only",
            f"the code is equal except co_filename, which differs {how} in {len(differences)} code object(s)",
            headers,
            tuple(differences),
        )
    semantic = [d for d in differences if d not in explained_paths]
    first = semantic[0] if semantic else None
    where = f"first in {first.path} ({first.field})" if first else "in values this tool cannot pin down"
    return PycComparison(
        "semantic",
        f"the code differs in {len(semantic)}{'+' if truncated else ''} place(s), {where}",
        headers,
        tuple(differences),
        truncated,
    )


def _explained(difference: CodeDifference, path_prefixes: tuple[str, str] | None) -> bool:
    if path_prefixes is None:
        return True
    before, after = difference.detail[0].removeprefix("- "), difference.detail[1].removeprefix("+ ")
    prefix_a, prefix_b = path_prefixes
    return (
        before.startswith(prefix_a)
        and after.startswith(prefix_b)
        and (before[len(prefix_a) :] == after[len(prefix_b) :])
    )


def _code_differences(
    left: LoadedPyc, right: LoadedPyc, path_prefixes: tuple[str, str] | None
) -> tuple[list[CodeDifference], bool]:
    """Walk both code trees side by side (iteratively: nesting can be 2,000 deep)."""
    out: list[CodeDifference] = []
    pending: list[tuple[CodeObject, CodeObject, str]] = [(left.code, right.code, left.code.display_name)]
    seen: set[tuple[int, int]] = set()
    visited = 0
    budget = _ListingBudget()
    while pending:
        ca, cb, path = pending.pop()
        # Shared code objects (TYPE_REF) are compared once, so a hostile DAG cannot multiply the work.
        if (id(ca), id(cb)) in seen or left.encoding(ca) == right.encoding(cb):
            continue
        seen.add((id(ca), id(cb)))
        visited += 1
        if visited > MAX_CODE_OBJECTS or len(out) > MAX_CODE_DIFFERENCES:
            return out[:MAX_CODE_DIFFERENCES], True
        out.extend(_field_differences(left, right, ca, cb, path, budget))
        pairs, unpaired = _pair_nested(ca, cb)
        out.extend(CodeDifference(path, "consts", (line,)) for line in unpaired)
        pending.extend((sa, sb, f"{path}/{label}") for sa, sb, label in reversed(pairs))
    truncated = len(out) > MAX_CODE_DIFFERENCES
    return out[:MAX_CODE_DIFFERENCES], truncated


def _field_differences(
    left: LoadedPyc, right: LoadedPyc, ca: CodeObject, cb: CodeObject, path: str, budget: _ListingBudget
) -> list[CodeDifference]:
    out: list[CodeDifference] = []
    if ca.filename != cb.filename:
        out.append(CodeDifference(path, "filename", (f"- {ca.filename}", f"+ {cb.filename}")))
    if ca.code != cb.code:
        out.append(CodeDifference(path, "code", tuple(_bytecode_diff(left, right, ca, cb, budget))))
    for name in _COMPARED_FIELDS:
        va, vb = getattr(ca, name), getattr(cb, name)
        if type(va) is not type(vb) or va != vb:
            out.append(CodeDifference(path, name, _value_lines(va, vb)))
    const_lines: list[str] = []
    for index in range(max(len(ca.consts), len(cb.consts))):
        va = ca.consts[index] if index < len(ca.consts) else None
        vb = cb.consts[index] if index < len(cb.consts) else None
        if isinstance(va, CodeObject) and isinstance(vb, CodeObject):
            continue  # compared as nested code objects
        if index >= len(ca.consts) or index >= len(cb.consts) or left.encoding(va) != right.encoding(vb):
            shown_a = short_repr(va) if index < len(ca.consts) else "(absent)"
            shown_b = short_repr(vb) if index < len(cb.consts) else "(absent)"
            const_lines.append(f"consts[{index}]: {shown_a} -> {shown_b}")
    if const_lines:
        out.append(CodeDifference(path, "consts", tuple(_cap(const_lines))))
    return out


def _value_lines(va: object, vb: object) -> tuple[str, ...]:
    if isinstance(va, bytes) and isinstance(vb, bytes):
        # Line and exception tables are opaque varint streams: say where they part, not what they hold.
        first = next((i for i, (x, y) in enumerate(zip(va, vb, strict=False)) if x != y), min(len(va), len(vb)))
        return (f"{len(va)} vs {len(vb)} bytes, first difference at byte {first}",)
    return (f"- {short_repr(va, 200)}", f"+ {short_repr(vb, 200)}")  # type: ignore[arg-type]


def _pair_nested(ca: CodeObject, cb: CodeObject) -> tuple[list[tuple[CodeObject, CodeObject, str]], list[str]]:
    """Pair nested code objects by name and occurrence, so an inserted function does not shift the rest."""

    def keyed(code: CodeObject) -> dict[tuple[str, int], CodeObject]:
        counts: dict[str, int] = {}
        out: dict[tuple[str, int], CodeObject] = {}
        for const in code.consts:
            if isinstance(const, CodeObject):
                name = const.name
                counts[name] = counts.get(name, 0) + 1
                out[(name, counts[name])] = const
        return out

    ka, kb = keyed(ca), keyed(cb)
    pairs = [(ka[key], kb[key], key[0] if key[1] == 1 else f"{key[0]}[{key[1]}]") for key in ka if key in kb]
    unpaired = [f"code object {key[0]} only in the first file" for key in ka if key not in kb]
    unpaired += [f"code object {key[0]} only in the second file" for key in kb if key not in ka]
    return pairs, unpaired


def _bytecode_diff(
    left: LoadedPyc, right: LoadedPyc, ca: CodeObject, cb: CodeObject, budget: _ListingBudget
) -> list[str]:
    """A unified diff of the two instruction listings, compared without offsets, shown with them."""
    instructions = (len(ca.code) + len(cb.code)) // 2
    if instructions > budget.remaining:
        return [
            f"bytecode differs ({len(ca.code)} vs {len(cb.code)} bytes); listing skipped: this comparison "
            f"spent its budget of {PYC_MAX_LISTING_WORK} instructions"
        ]
    budget.remaining -= instructions
    ia = decode(ca, magic=left.header.magic, python_version=left.header.python_version)
    ib = decode(cb, magic=right.header.magic, python_version=right.header.python_version)
    # Bounded: bytecode from a hostile file can be a million instructions of two alternating lines.
    matcher = BoundedMatcher([i.text for i in ia], [i.text for i in ib], max_work=max(budget.remaining, 0))
    lines: list[str] = []
    total = 0

    def add(new_lines: list[str]) -> None:
        # Keep only what will be shown: a hostile listing can be millions of lines.
        nonlocal total
        total += len(new_lines)
        lines.extend(new_lines[: max(MAX_DIFF_LINES - len(lines), 0)])

    for group in matcher.get_grouped_opcodes(2):
        first, last = group[0], group[-1]
        add([f"@@ -{first[1]},{last[2] - first[1]} +{first[3]},{last[4] - first[3]} @@"])
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                add([f"  {i.offset:>6} {i.text}" for i in ia[a1:a2]])
                continue
            add([f"- {i.offset:>6} {i.text}" for i in ia[a1:a2]])
            add([f"+ {i.offset:>6} {i.text}" for i in ib[b1:b2]])
    budget.remaining -= matcher.work_spent
    if not total:
        return ["bytecode bytes differ but decode to the same instructions (e.g. in CACHE entries)"]
    if total > MAX_DIFF_LINES:
        lines.append(f"... {total - MAX_DIFF_LINES} more lines")
    return lines


def _cap(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_DIFF_LINES:
        return lines
    return [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]


MAX_COMPARED_VALUES: Final = 2_000_000
"""Values visited by :func:`equal_with_replaced_path` and :func:`string_constants` per file pair."""


def _children(value: Value) -> tuple[Value, ...] | None:
    """The values a container holds, in order (None for a scalar)."""
    if isinstance(value, tuple):
        return value
    if isinstance(value, FrozenSetValue | ListValue | SetValue):
        return value.items
    if isinstance(value, DictValue):
        return tuple(item for pair in value.items for item in pair)
    if isinstance(value, SliceValue):
        return (value.start, value.stop, value.step)
    if isinstance(value, CodeObject):
        return (
            *value.consts,
            value.filename,
            value.name,
            value.qualname,
            *value.names,
            *value.localsplusnames,
            *value.varnames,
            *value.freevars,
            *value.cellvars,
        )
    return None


def string_constants(code: CodeObject) -> set[str] | None:
    """Every string in a code tree (constants, names, file names); None past :data:`MAX_COMPARED_VALUES`."""
    found: set[str] = set()
    pending: list[Value] = [code]
    seen: set[int] = set()
    visited = 0
    while pending:
        value = pending.pop()
        visited += 1
        if visited > MAX_COMPARED_VALUES:
            return None
        if isinstance(value, str):
            found.add(value)
            continue
        children = _children(value)
        if children is not None and id(value) not in seen:
            seen.add(id(value))
            pending.extend(children)
    return found


def _scalar_key(value: Value) -> tuple[str, str]:
    # repr tells apart what == conflates (0.0 and -0.0, 1 and True) and makes NaN equal to itself.
    return type(value).__name__, short_repr(value, 10_000) if not isinstance(value, int | bytes) else ""


def location_lines(linetable: bytes) -> tuple[tuple[int, int], ...] | None:
    """The (start line, end line) of each code unit, from a 3.11+ location table (``co_linetable``,
    CPython's ``Objects/locations.md``), columns left out; None when the table is malformed."""
    lines: list[tuple[int, int]] = []
    line = 0
    index = 0

    def varint() -> int:
        nonlocal index
        value = shift = 0
        while True:
            if index >= len(linetable):
                raise IndexError
            byte = linetable[index]
            index += 1
            value |= (byte & 63) << shift
            shift += 6
            if not byte & 64:
                return value

    def svarint() -> int:
        value = varint()
        return -(value >> 1) if value & 1 else value >> 1

    try:
        while index < len(linetable):
            first = linetable[index]
            index += 1
            if not first & 128:
                return None
            code, units = (first >> 3) & 15, (first & 7) + 1
            if code == 15:
                entry = (-1, -1)  # no location
            elif code == 14:
                line += svarint()
                entry = (line, line + varint())
                varint()
                varint()
            elif code == 13:
                line += svarint()
                entry = (line, line)
            elif code >= 10:
                line += code - 10
                entry = (line, line)
                index += 2
            else:
                entry = (line, line)
                index += 1
            if index > len(linetable) or len(lines) > MAX_COMPARED_VALUES:
                return None
            lines.extend([entry] * units)
    except IndexError:
        return None
    return tuple(lines)


def equal_with_replaced_path(
    left: CodeObject, right: CodeObject, old: str, new: str, *, columns_in_linetable: bool
) -> bool:
    """True when ``right`` is ``left`` with every occurrence of ``old`` in its strings replaced by ``new``.

    Everything else must be equal: bytecode, exception tables, counts and flags, the shape and every
    non-string value of the constants, and the line numbers. With ``columns_in_linetable`` (3.11+) the
    location tables may differ in columns only: a longer string constant moves the columns of what
    follows it on its line, which only a traceback's caret shows. That is the evidence that two
    ``.pyc`` differ only by a path embedded in string constants (a sysconfigdata module records the
    build directory so). False past :data:`MAX_COMPARED_VALUES`.
    """
    pending: list[tuple[Value, Value]] = [(left, right)]
    seen: set[tuple[int, int]] = set()
    visited = 0
    while pending:
        a, b = pending.pop()
        visited += 1
        if visited > MAX_COMPARED_VALUES or type(a) is not type(b):
            return False
        if isinstance(a, str):
            if a.replace(old, new) != b:
                return False
            continue
        if isinstance(a, CodeObject):
            assert isinstance(b, CodeObject)
            if any(getattr(a, name) != getattr(b, name) for name in _SCALAR_CODE_FIELDS):
                return False
            if a.linetable != b.linetable and not (
                columns_in_linetable
                and (lines := location_lines(a.linetable)) is not None
                and lines == location_lines(b.linetable)
            ):
                return False
        children_a, children_b = _children(a), _children(b)
        if children_a is None or children_b is None:
            if isinstance(a, int | bytes) and not isinstance(a, bool):
                if a != b:
                    return False
            elif _scalar_key(a) != _scalar_key(b):
                return False
            continue
        if (id(a), id(b)) in seen:
            continue
        seen.add((id(a), id(b)))
        if len(children_a) != len(children_b):
            return False
        pending.extend(zip(children_a, children_b, strict=True))
    return True


_SCALAR_CODE_FIELDS: Final = (
    "argcount",
    "posonlyargcount",
    "kwonlyargcount",
    "stacksize",
    "flags",
    "code",
    "firstlineno",
    "localspluskinds",
    "exceptiontable",
    "nlocals",
)
"""The code-object fields that hold no strings: equal, whatever the path (the line table is compared apart)."""
