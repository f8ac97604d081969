"""Static archives (``libpython3.X.a``): which members differ, each explained as an ELF object."""

from __future__ import annotations

import re
from typing import Final

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
from verify.limits import AR_MAX_MEMBERS, AR_MAX_NAME_BYTES
from verify.manifest import STATIC_ARCHIVE

AR_MAGIC: Final = b"!<arch>\n"
MAX_MEMBERS: Final = AR_MAX_MEMBERS
_SIZE: Final = re.compile(rb"[0-9]{1,10}")
_LONG_NAME_REFERENCE: Final = re.compile(r"/([0-9]{1,10})")
MAX_EXPLAINED_MEMBERS: Final = 50
"""Members explained in detail; the rest are listed by name only (a PGO rebuild changes all 343)."""


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


class ArchiveComparator(Comparator):
    """Member-by-member comparison of two ``ar`` archives."""

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
        pairs = []
        for index, name in enumerate(differing):
            if name not in left or name not in right:
                lines.append(f"member {name}: only in {'B' if name not in left else 'A'}")
                categories["membership"] = categories.get("membership", 0) + 1
                continue
            if name == "<symbol table>" or index >= MAX_EXPLAINED_MEMBERS:
                lines.append(f"member {name}: differs")
                continue
            try:
                verdict = compare_summaries(
                    summarize(left[name], want_dwarf=True, budget=budget_a),
                    summarize(right[name], want_dwarf=True, budget=budget_b),
                )
            except ELF_PARSE_ERRORS as error:
                lines.append(f"member {name}: differs (not a readable ELF object: {unparseable(error)})")
                categories["content"] = categories.get("content", 0) + 1
                continue
            categories[verdict.category] = categories.get(verdict.category, 0) + 1
            pairs.append(verdict.build_paths)
            lines.append(f"member {name}: {verdict.category}: {verdict.explanation}")
        details, truncated = capped(lines)
        build_paths = most_common_pair(pairs)
        tally = ", ".join(f"{count} {category}" for category, count in sorted(categories.items()))
        explained_categories = set(categories)
        if explained_categories == {"debug-info"}:
            category = "debug-info"
        elif len(explained_categories) == 1:
            category = next(iter(explained_categories))
        else:
            category = "code" if "code" in explained_categories else "mixed" if categories else "symbol-table"
        explanation = f"{len(differing)} of {len(names)} members differ ({tally or 'symbol table only'})"
        if build_paths is not None:
            explanation += f"; build path {build_paths[0]} vs {build_paths[1]} embedded; use a fixed build path"
        return FileComparison(self.name, category, explanation, details, (), build_paths, truncated)
