"""ELF executables, shared objects and object files: which sections differ, and why.

pyelftools rather than binutils: it gives sections, notes and DWARF as data in-process (no parsing of
``readelf`` output that changes between binutils versions, no external program that may be missing),
and comparing section bytes is a hash per section. Only the compile-unit headers of DWARF are parsed
(for ``DW_AT_comp_dir``), never whole DIE trees, which is what makes diffoscope take minutes on
``python3.13``.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Final

from elftools.common.exceptions import DWARFError, ELFError, ELFParseError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, Section

from verify.compare.comparators.interface import Comparator, Declined, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import guess_build_paths, path_tokens, prefix_pair
from verify.limits import ELF_MAX_DECOMPRESSED_BYTES, ELF_MAX_FILE_BYTES, ELF_MAX_SECTION_BYTES, ELF_MAX_SECTIONS
from verify.manifest import ELF_KINDS

MAX_COMPILE_UNITS: Final = 5000
MAX_STRING_BYTES: Final = 64 << 20
"""Bytes of differing sections searched for embedded paths and dates, per side."""


class ElfBudgetExceeded(Exception):
    """The file asks for more work than :mod:`verify.limits` allows (size, sections, decompressed bytes)."""


ELF_PARSE_ERRORS: Final = (
    ELFError,
    ELFParseError,
    DWARFError,
    ConstructError,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    UnicodeDecodeError,
    AttributeError,
    TypeError,
    zlib.error,
    AssertionError,
    OverflowError,
    RecursionError,
    EOFError,
    ElfBudgetExceeded,
)
"""What reading a malformed or hostile ELF raises: pyelftools has no single root error, checks formats with
``assert``, lets ``zlib.error``, ``struct.error`` and lookup errors through, and recurses on some structures;
:class:`ElfBudgetExceeded` is ours."""
_DATE: Final = re.compile(r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-3]\d \d{4}\b")
_TIME: Final = re.compile(r"\b[0-2]\d:[0-5]\d:[0-5]\d\b")
_ZDEBUG_HEADER: Final = 12  # b"ZLIB" + the big-endian 64-bit uncompressed size
_INFLATE_CHUNK: Final = 1 << 20


@dataclass(slots=True)
class DecompressionBudget:
    """Decompressed bytes one side may still produce (one file, or every member of one archive)."""

    remaining: int = ELF_MAX_DECOMPRESSED_BYTES

    def charge(self, size: int, name: str) -> None:
        """Spend ``size`` bytes on section ``name``, or raise :class:`ElfBudgetExceeded`."""
        if size > ELF_MAX_SECTION_BYTES:
            raise ElfBudgetExceeded(
                f"section {name} decompresses to {size} bytes, over the budget of {ELF_MAX_SECTION_BYTES >> 20} MiB"
            )
        if size > self.remaining:
            raise ElfBudgetExceeded(
                f"compressed sections decompress to more than {ELF_MAX_DECOMPRESSED_BYTES >> 20} MiB in all"
            )
        self.remaining -= size


@dataclass(frozen=True, slots=True)
class ElfSummary:
    """The parts of one ELF file a comparison needs."""

    sections: dict[str, tuple[str, int, bytes]]
    """name -> (sha256 of the bytes, size, the bytes when small enough to search for strings)."""
    build_id: str | None
    comp_dirs: frozenset[str]
    size: int


def _is_debug(name: str) -> bool:
    return name.startswith((".debug_", ".zdebug_", ".rela.debug_", ".rel.debug_")) or name in (
        ".gnu_debuglink",
        ".gnu_debugaltlink",
    )


def _inflated_size(compressed: bytes, limit: int) -> int:
    """How many bytes a zlib stream inflates to, counting at most ``limit + 1`` (never holding more than a chunk)."""
    inflater = zlib.decompressobj()
    produced = 0
    pending = compressed
    while pending and produced <= limit:
        produced += len(inflater.decompress(pending, _INFLATE_CHUNK))
        pending = inflater.unconsumed_tail
    return produced


def _section_content(section: Section, budget: DecompressionBudget, read_allowance: list[int]) -> bytes:
    """A section's bytes (decompressed for SHF_COMPRESSED), after checking what they cost against the budgets."""
    name = section.name
    if section.compressed:
        # ch_size, read from the compression header, bounds what pyelftools inflates (its max_length).
        budget.charge(section.data_size, name)
        return section.data()
    size = min(section["sh_size"], max(section.elffile.stream_len - section["sh_offset"], 0))
    read_allowance[0] -= size
    if read_allowance[0] < 0:
        raise ElfBudgetExceeded("section headers cover the file more than twice over (overlapping sections)")
    content = section.data()
    if name.startswith(".zdebug") and content[:4] == b"ZLIB" and len(content) > _ZDEBUG_HEADER:
        # pyelftools inflates .zdebug_* whole when it reads DWARF, trusting nothing: measure first.
        budget.charge(_inflated_size(content[_ZDEBUG_HEADER:], ELF_MAX_SECTION_BYTES), name)
    return content


def summarize(data: bytes, *, want_dwarf: bool, budget: DecompressionBudget | None = None) -> ElfSummary:
    """Section digests, build-id and DW_AT_comp_dir values of one ELF file.

    ``budget`` is shared by the members of one archive; a file alone gets a fresh one. Raises the error
    types in ``ELF_PARSE_ERRORS`` for malformed input, :class:`ElfBudgetExceeded` among them.
    """
    if len(data) > ELF_MAX_FILE_BYTES:
        raise ElfBudgetExceeded(f"{len(data)} bytes, over the budget of {ELF_MAX_FILE_BYTES >> 20} MiB for ELF parsing")
    budget = budget if budget is not None else DecompressionBudget()
    elf = ELFFile(io.BytesIO(data))
    count = elf.num_sections()
    if count > ELF_MAX_SECTIONS:
        raise ElfBudgetExceeded(f"{count} sections, over the budget of {ELF_MAX_SECTIONS}")
    read_allowance = [2 * len(data)]
    sections: dict[str, tuple[str, int, bytes]] = {}
    build_id = None
    keep_budget = MAX_STRING_BYTES
    for section in elf.iter_sections():
        content = b"" if section["sh_type"] == "SHT_NOBITS" else _section_content(section, budget, read_allowance)
        keep = content if len(content) <= keep_budget else b""
        keep_budget -= len(keep)
        name = section.name
        if name in sections:  # e.g. several .group sections in an object file
            name = f"{name}#{len(sections)}"
        sections[name] = (hashlib.sha256(content).hexdigest(), len(content), keep)
        if isinstance(section, NoteSection):
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    build_id = str(note["n_desc"])
    comp_dirs: set[str] = set()
    if want_dwarf and elf.has_dwarf_info():
        try:
            dwarf = elf.get_dwarf_info()
            for index, unit in enumerate(dwarf.iter_CUs()):
                if index >= MAX_COMPILE_UNITS:
                    break
                attribute = unit.get_top_DIE().attributes.get("DW_AT_comp_dir")
                if attribute is not None:
                    value: Any = attribute.value
                    comp_dirs.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
        except ELF_PARSE_ERRORS:
            comp_dirs.add("<unreadable DWARF>")
    return ElfSummary(sections, build_id, frozenset(comp_dirs), len(data))


def unparseable(error: BaseException) -> str:
    """One line naming why an ELF file could not be read."""
    detail = " ".join(str(error).split())[:200] or "no detail"
    kind = type(error).__name__
    if kind == "error":  # zlib.error, struct.error: the module says what failed
        kind = f"{type(error).__module__}.{kind}"
    return f"{kind}: {detail}"


def _strings(blob: bytes) -> set[str]:
    return {piece.decode("latin-1") for piece in blob.split(b"\0") if 4 <= len(piece) <= 4096}


_CODE_AND_TABLES: Final = (".text", ".init", ".fini", ".plt", ".iplt", ".got", ".eh_frame", ".gcc_except_table",
                           ".rela", ".rel.", ".dynamic", ".init_array", ".fini_array", ".data.rel", ".hash",
                           ".gnu.hash", ".gnu.version", ".note", ".symtab", ".dynsym")  # fmt: skip
"""Sections of machine code and binary tables: their bytes hold no text, only what looks like it by chance."""


def _text_strings(name: str, blob: bytes) -> set[str]:
    """The strings a section can hold as text (a path, a date): printable ASCII between NULs, never taken
    from machine code or binary tables. Machine code is full of chance "paths": the bytes of
    ``push %r13; push %r12`` read ``AUATUH`` and a constant may read ``/v/H``."""
    if name.startswith(_CODE_AND_TABLES):
        return set()
    return {text for text in _strings(blob) if text.isascii() and text.isprintable()}


def _embeds(tokens: set[str], prefix: str) -> bool:
    """True when ``prefix`` is one of ``tokens`` or a directory above one of them."""
    return any(token == prefix or token.startswith(prefix.rstrip("/") + "/") for token in tokens)


def evidenced_build_paths(
    pair: tuple[str, str] | None, strings_a: set[str], strings_b: set[str]
) -> tuple[str, str] | None:
    """``pair`` if each side's path really is embedded as text in its own file and not in the other's.

    A build-path explanation needs that evidence: the pair guessed from differing strings may be noise
    (two builds under the same path whose code differs, e.g. from different PGO profiles).
    """
    if pair is None:
        return None
    tokens_a, tokens_b = path_tokens(strings_a), path_tokens(strings_b)
    path_a, path_b = pair
    if not (_embeds(tokens_a, path_a) and _embeds(tokens_b, path_b)):
        return None
    # Each path must be absent from the other file (except inside that file's own path: /b vs /b/sub).
    if _embeds(_outside(tokens_b, path_b), path_a) or _embeds(_outside(tokens_a, path_a), path_b):
        return None
    return pair


def _outside(tokens: set[str], prefix: str) -> set[str]:
    return {token for token in tokens if not _embeds({token}, prefix)}


class ElfComparator(Comparator):
    """Section-level comparison of two ELF files (executables, shared objects, object files)."""

    name = "elf"

    def recognizes(self, pair: FilePair) -> bool:
        return pair.kind_a in ELF_KINDS and pair.kind_b in ELF_KINDS

    def compare(self, pair: FilePair) -> FileComparison | Declined | None:
        summaries = []
        for side, data in (("A", pair.data_a), ("B", pair.data_b)):
            try:
                summaries.append(summarize(data, want_dwarf=True))
            except ELF_PARSE_ERRORS as error:
                return Declined(f"unparseable ELF in {side}: {unparseable(error)}")
        return compare_summaries(summaries[0], summaries[1])


def compare_summaries(left: ElfSummary, right: ElfSummary, *, comparator: str = "elf") -> FileComparison:
    """Classify the difference of two ELF files from their summaries."""
    names = sorted(left.sections.keys() | right.sections.keys())
    differing = [n for n in names if (left.sections.get(n) or ("",))[0] != (right.sections.get(n) or ("",))[0]]
    only_a = [n for n in differing if n not in right.sections]
    only_b = [n for n in differing if n not in left.sections]
    details: list[str] = []
    for name in differing:
        size_a = left.sections[name][1] if name in left.sections else None
        size_b = right.sections[name][1] if name in right.sections else None
        where = "only in A" if size_b is None else "only in B" if size_a is None else f"{size_a} vs {size_b} bytes"
        details.append(f"section {name}: {where}")
    if left.build_id != right.build_id:
        details.append(f"build-id: {left.build_id} vs {right.build_id}")
    comp_a, comp_b = left.comp_dirs - right.comp_dirs, right.comp_dirs - left.comp_dirs
    if comp_a or comp_b:
        details.append(f"DW_AT_comp_dir: {', '.join(sorted(comp_a)) or '-'} vs {', '.join(sorted(comp_b)) or '-'}")

    strings_a: set[str] = set()
    strings_b: set[str] = set()
    for name in differing:
        strings_a |= _text_strings(name, left.sections[name][2]) if name in left.sections else set()
        strings_b |= _text_strings(name, right.sections[name][2]) if name in right.sections else set()
    new_a, new_b = strings_a - strings_b, strings_b - strings_a
    build_paths = evidenced_build_paths(
        guess_build_paths(sorted(new_a | comp_a), sorted(new_b | comp_b)), strings_a | comp_a, strings_b | comp_b
    )
    if build_paths is None and len(comp_a) == 1 and len(comp_b) == 1:
        build_paths = prefix_pair(next(iter(comp_a)), next(iter(comp_b)))

    lto = [n for n in differing if n.startswith(".gnu.lto_")]
    debug = [n for n in differing if _is_debug(n)]
    bookkeeping = {".note.gnu.build-id", ".symtab", ".strtab", ".shstrtab"}
    rest = [n for n in differing if n not in lto and n not in debug and n not in bookkeeping]
    dated = any(_DATE.search(s) or _TIME.search(s) for s in new_a | new_b)
    lines, truncated = capped(details)

    def result(category: str, explanation: str) -> FileComparison:
        return FileComparison(comparator, category, explanation, lines, tuple(differing), build_paths, truncated)

    if not differing:
        return result(
            "layout",
            f"every section is identical; bytes outside the sections differ (file size {left.size} vs {right.size}: "
            "headers, padding or appended data)",
        )
    if differing == [".note.gnu.build-id"]:
        return result(
            "build-id-only",
            "only the build-id differs: it hashes something not in the loaded sections (e.g. stripped debug "
            "info); compare the unstripped files",
        )
    if lto and (only_a or only_b) and not rest:
        return result(
            "lto-random-seed",
            f"GCC's LTO sections carry random name suffixes ({len(lto)} .gnu.lto_* sections); compile with "
            "-frandom-seed=<fixed value per object>",
        )
    if not rest:
        where = f"; {_path_sentence(build_paths)}" if build_paths else ""
        return result(
            "debug-info",
            f"code and data are identical; DWARF debug info differs ({_names(debug)}){where}",
        )
    causes = []
    if dated:
        causes.append("a build date/time (__DATE__/__TIME__, e.g. Modules/getbuildinfo.c): set SOURCE_DATE_EPOCH")
    if build_paths:
        causes.append(_path_sentence(build_paths))
    if causes:
        return result(
            "build-path"
            if build_paths and not dated
            else "embedded-date"
            if dated and not build_paths
            else "embedded-date-and-path",
            f"code/data sections {_names(rest)} embed " + "; ".join(causes),
        )
    return result(
        "code",
        f"code or data differ in {_names(rest)}: a real difference (compiler, flags, PGO/LTO profile), not an "
        "embedded path or date; inspect with --diffoscope",
    )


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _path_sentence(pair: tuple[str, str] | None) -> str:
    if pair is None:
        return "a build path"
    return (
        f"build path {pair[0]} vs {pair[1]} embedded (DW_AT_comp_dir, .debug_line_str, __FILE__); use a fixed "
        "build path"
    )
