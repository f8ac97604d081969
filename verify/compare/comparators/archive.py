"""Static archives (``libpython3.X.a``): which members differ, each explained as an ELF object."""

from __future__ import annotations

import re
from typing import Final

from verify.common.limits import AR_MAX_MEMBERS, AR_MAX_NAME_BYTES
from verify.compare.comparators.elf import (
    ELF_PARSE_ERRORS,
    DecompressionBudget,
    compare_summaries,
    summarize,
    unparseable,
)
from verify.compare.comparators.interface import Comparator, Declined, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import most_common_pair
from verify.manifest import STATIC_ARCHIVE

AR_MAGIC: Final = b"!<arch>\n"
MAX_MEMBERS: Final = AR_MAX_MEMBERS
_SIZE: Final = re.compile(rb"[0-9]{1,10}")
_LONG_NAME_REFERENCE: Final = re.compile(r"/([0-9]{1,10})")
MAX_EXPLAINED_MEMBERS: Final = 50
"""Members whose explanation is in the details; the rest are listed with their category only (a PGO
rebuild changes all 343). Every differing member is classified."""
DWARF_MEMBERS: Final = 8
"""Members whose DWARF compile directories are read (to name the build-path pair): pyelftools applies an
object file's relocations to its debug sections in Python, about 4 s a member of libpython3.13.a on a
loaded machine, and the pair is a vote that a few members settle."""


class ArchiveError(ValueError):
    """The bytes are not a well-formed ``ar`` archive."""


def ar_members(data: bytes) -> dict[str, bytes]:
    """Members of a System V / GNU ``ar`` archive by name (duplicates numbered ``name#2``, ...).

    Raises :class:`ArchiveError` for truncated or malformed archives.
    """
    if not data.startswith(AR_MAGIC):
        raise ArchiveError("no !<arch> magic")
    members: dict[str, bytes] = {}
    # Next suffix to try per name: renaming duplicates stays linear (20,000 members of one name took 45 s
    # when every duplicate counted up from #2 again).
    next_suffix: dict[str, int] = {}
    long_names = b""
    offset = len(AR_MAGIC)
    while offset < len(data):
        if offset + 60 > len(data):
            raise ArchiveError(f"truncated member header at offset {offset}")
        header = data[offset : offset + 60]
        if header[58:60] != b"`\n":
            raise ArchiveError(f"bad member header at offset {offset}")
        size_field = header[48:58].strip(b" ")
        if not _SIZE.fullmatch(size_field):
            raise ArchiveError(f"bad member size at offset {offset}")
        size = int(size_field)
        body = data[offset + 60 : offset + 60 + size]
        if len(body) != size:
            raise ArchiveError(f"truncated member at offset {offset}")
        raw_name = header[:16].decode("latin-1").rstrip()
        offset += 60 + size + (size & 1)
        if raw_name == "//":
            long_names = body
            continue
        reference = _LONG_NAME_REFERENCE.fullmatch(raw_name)
        if raw_name in ("/", "/SYM64/"):
            name = "<symbol table>"
        elif reference is not None:
            start = int(reference.group(1))
            # The search for the name's end is bounded: a table without terminators must not make every
            # member scan all of it.
            end = long_names.find(b"/\n", start, start + AR_MAX_NAME_BYTES + 2)
            if start > len(long_names) or (end < 0 and start + AR_MAX_NAME_BYTES < len(long_names)):
                raise ArchiveError(f"bad long-name reference {raw_name!r} at offset {offset}")
            name = long_names[start : end if end >= 0 else len(long_names)].decode("latin-1")
        else:
            name = raw_name.removesuffix("/")
        unique = name
        if unique in members:
            counter = next_suffix.get(name, 1)
            while unique in members:
                counter += 1
                unique = f"{name}#{counter}"
            next_suffix[name] = counter
        members[unique] = body
        if len(members) > MAX_MEMBERS:
            raise ArchiveError(f"more than {MAX_MEMBERS} members")
    return members


def symbol_index(data: bytes) -> tuple[tuple[int, str], ...] | None:
    """The System V / GNU ``ar`` symbol index (``/`` member): ``(member offset, symbol name)`` pairs.

    None when it is malformed. The 64-bit form (``/SYM64/``) is read by :func:`symbol_index_64`.
    """
    return _symbol_index(data, 4)


def symbol_index_64(data: bytes) -> tuple[tuple[int, str], ...] | None:
    """The ``/SYM64/`` symbol index: the same as :func:`symbol_index` with 8-byte numbers."""
    return _symbol_index(data, 8)


def _symbol_index(data: bytes, width: int) -> tuple[tuple[int, str], ...] | None:
    if len(data) < width:
        return None
    count = int.from_bytes(data[:width], "big")
    names_start = width + count * width
    if names_start > len(data):
        return None
    offsets = [int.from_bytes(data[width + i * width : 2 * width + i * width], "big") for i in range(count)]
    names = data[names_start:].split(b"\0")
    if len(names) < count:
        return None
    return tuple(zip(offsets, (name.decode("latin-1") for name in names[:count]), strict=True))


def member_offsets(data: bytes) -> dict[int, str]:
    """Header offset -> member name (numbered as :func:`ar_members` numbers duplicates), for the symbol index."""
    offsets: dict[int, str] = {}
    names = iter(ar_members(data))
    offset = len(AR_MAGIC)
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        size = int(header[48:58].strip(b" "))
        raw_name = header[:16].decode("latin-1").rstrip()
        if raw_name not in ("//",):
            name = next(names, None)
            if name is not None:
                offsets[offset] = name
        offset += 60 + size + (size & 1)
    return offsets


def same_symbol_index(archive_a: bytes, index_a: bytes, archive_b: bytes, index_b: bytes) -> bool:
    """True when both symbol indexes list the same symbols, in the same order, for the same member names:
    the indexes then differ only in member offsets, which follow the members' sizes."""
    for reader in (symbol_index, symbol_index_64):
        table_a, table_b = reader(index_a), reader(index_b)
        if table_a is not None and table_b is not None and len(table_a) == len(table_b):
            names_a, names_b = member_offsets(archive_a), member_offsets(archive_b)
            resolved_a = [(names_a.get(offset), symbol) for offset, symbol in table_a]
            resolved_b = [(names_b.get(offset), symbol) for offset, symbol in table_b]
            if all(member is not None for member, _ in resolved_a) and resolved_a == resolved_b:
                return True
    return False


class ArchiveComparator(Comparator):
    """Member-by-member comparison of two ``ar`` archives.

    Every differing member is classified as an ELF object (the first :data:`DWARF_MEMBERS` are also read
    for their DWARF compile directories, the first :data:`MAX_EXPLAINED_MEMBERS` explained in the
    details), and a differing symbol index must list the same symbols for the same members. The
    archive's category is its members' one category when they all agree; otherwise ``code`` when any
    member's code differs, else ``mixed``.
    """

    name = "static-archive"

    def recognizes(self, pair: FilePair) -> bool:
        return pair.kind_a == STATIC_ARCHIVE and pair.kind_b == STATIC_ARCHIVE

    def compare(self, pair: FilePair) -> FileComparison | Declined | None:
        try:
            left, right = ar_members(pair.data_a), ar_members(pair.data_b)
        except ArchiveError as error:
            return Declined(f"unreadable ar archive: {error}")
        # One decompression budget per side for all members: 50 explained members must not each get a fresh one.
        budget_a, budget_b = DecompressionBudget(), DecompressionBudget()
        names = sorted(left.keys() | right.keys())
        differing = [n for n in names if left.get(n) != right.get(n)]
        lines: list[str] = []
        categories: dict[str, int] = {}

        def count(category: str) -> None:
            categories[category] = categories.get(category, 0) + 1

        pairs = []
        explained = 0
        for name in differing:
            if name not in left or name not in right:
                lines.append(f"member {name}: only in {'B' if name not in left else 'A'}")
                count("membership")
                continue
            if name == "<symbol table>":
                if left.keys() != right.keys():
                    lines.append(f"member {name}: differs, as the members do")
                    continue  # other members, other symbols: the membership difference is the finding
                try:
                    same = same_symbol_index(pair.data_a, left[name], pair.data_b, right[name])
                except (ArchiveError, ValueError):
                    same = False
                if not same:
                    lines.append(f"member {name}: lists other symbols or members")
                    count("symbol-table")
                continue
            detailed = explained < MAX_EXPLAINED_MEMBERS
            dwarf = explained < DWARF_MEMBERS
            explained += 1
            try:
                verdict = compare_summaries(
                    summarize(left[name], want_dwarf=dwarf, budget=budget_a),
                    summarize(right[name], want_dwarf=dwarf, budget=budget_b),
                )
            except ELF_PARSE_ERRORS as error:
                lines.append(f"member {name}: differs (not a readable ELF object: {unparseable(error)})")
                count("content")
                continue
            count(verdict.category)
            pairs.append(verdict.build_paths)
            lines.append(f"member {name}: {verdict.category}" + (f": {verdict.explanation}" if detailed else ""))
        details, truncated = capped(lines)
        build_paths = most_common_pair(pairs)
        tally = ", ".join(f"{count} {category}" for category, count in sorted(categories.items()))
        found = set(categories)
        if not found:
            category = "layout"
        elif len(found) == 1:
            category = next(iter(found))
        else:
            category = "code" if "code" in found else "mixed"
        members = len([n for n in names if n != "<symbol table>"])
        changed = len([n for n in differing if n != "<symbol table>"])
        explanation = f"{changed} of {members} members differ ({tally or 'in the ar headers or padding only'})"
        if "<symbol table>" in differing and "symbol-table" not in found:
            explanation += "; the symbol index lists the same symbols for the same members (only offsets moved)"
        if build_paths is not None:
            explanation += f"; build path {build_paths[0]} vs {build_paths[1]} embedded; use a fixed build path"
        return FileComparison(self.name, category, explanation, details, (), build_paths, truncated)
