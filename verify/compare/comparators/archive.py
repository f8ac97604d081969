"""Static archives (``libpython3.X.a``): which members differ, each explained as an ELF object."""

from __future__ import annotations

from typing import Final

from verify.compare.comparators.elf import ELF_PARSE_ERRORS, compare_summaries, summarize
from verify.compare.comparators.interface import Comparator, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import most_common_pair
from verify.manifest import STATIC_ARCHIVE

AR_MAGIC: Final = b"!<arch>\n"
MAX_MEMBERS: Final = 100_000
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
    long_names = b""
    offset = len(AR_MAGIC)
    while offset < len(data):
        if offset + 60 > len(data):
            raise ArchiveError(f"truncated member header at offset {offset}")
        header = data[offset : offset + 60]
        if header[58:60] != b"`\n":
            raise ArchiveError(f"bad member header at offset {offset}")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as error:
            raise ArchiveError(f"bad member size at offset {offset}") from error
        body = data[offset + 60 : offset + 60 + size]
        if len(body) != size:
            raise ArchiveError(f"truncated member at offset {offset}")
        raw_name = header[:16].decode("latin-1").rstrip()
        offset += 60 + size + (size & 1)
        if raw_name == "//":
            long_names = body
            continue
        if raw_name in ("/", "/SYM64/"):
            name = "<symbol table>"
        elif raw_name.startswith("/") and raw_name[1:].isdigit():
            start = int(raw_name[1:])
            end = long_names.find(b"/\n", start)
            name = long_names[start : end if end >= 0 else len(long_names)].decode("latin-1")
        else:
            name = raw_name.removesuffix("/")
        unique, counter = name, 1
        while unique in members:
            counter += 1
            unique = f"{name}#{counter}"
        members[unique] = body
        if len(members) > MAX_MEMBERS:
            raise ArchiveError(f"more than {MAX_MEMBERS} members")
    return members


class ArchiveComparator(Comparator):
    """Member-by-member comparison of two ``ar`` archives."""

    name = "static-archive"

    def recognizes(self, pair: FilePair) -> bool:
        return pair.kind_a == STATIC_ARCHIVE and pair.kind_b == STATIC_ARCHIVE

    def compare(self, pair: FilePair) -> FileComparison | None:
        try:
            left, right = ar_members(pair.data_a), ar_members(pair.data_b)
        except ArchiveError:
            return None
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
                    summarize(left[name], want_dwarf=True), summarize(right[name], want_dwarf=True)
                )
            except ELF_PARSE_ERRORS:
                lines.append(f"member {name}: differs (not a readable ELF object)")
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
