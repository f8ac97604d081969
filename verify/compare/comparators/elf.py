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

from verify.common.limits import (
    ELF_MAX_DECOMPRESSED_BYTES,
    ELF_MAX_FILE_BYTES,
    ELF_MAX_SECTION_BYTES,
    ELF_MAX_SECTIONS,
    ELF_MAX_SYMBOLS,
)
from verify.compare.comparators.interface import Comparator, Declined, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import guess_build_paths, path_tokens, prefix_pair
from verify.manifest import ELF_KINDS

MAX_COMPILE_UNITS: Final = 5000
MAX_STRING_BYTES: Final = 64 << 20
"""Bytes of differing sections searched for embedded paths and dates, per side."""


class ElfBudgetExceeded(Exception):
    """The file asks for more work than :mod:`verify.common.limits` allows (size, sections, decompressed bytes)."""


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
    ZeroDivisionError,
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


# What a section holds, which decides what its difference means (see :func:`section_role`).
CODE: Final = "code"
"""Machine code (SHF_EXECINSTR), GCC's LTO bytecode (``.gnu.lto_*``), and relocations applied to either."""
DATA: Final = "data"
"""Anything else the loader maps (SHF_ALLOC), and relocations applied to it."""
DEBUG: Final = "debug"
"""DWARF and its relocations, LTO's early debug info (``.gnu.debuglto_*``), debug links."""
SYMBOLS: Final = "symbols"
"""The static symbol table and its string table: compared symbol by symbol, not byte by byte."""
BUILD_ID: Final = "build-id"
"""``.note.gnu.build-id``: a hash of the other sections, so it follows whatever else differs."""
NAMES: Final = "names"
"""The section-name string table: section names are compared as the sections themselves."""
OTHER: Final = "other"
"""Unmapped sections of any other kind (``.comment``, ``.group``, notes): a difference nobody has explained."""

_SHF_ALLOC: Final = 0x2
_SHF_EXECINSTR: Final = 0x4
_SHF_INFO_LINK: Final = 0x40
_RELOCATIONS: Final = ("SHT_REL", "SHT_RELA", "SHT_RELR")
_LTO_SUFFIX: Final = re.compile(r"\.[0-9a-f]{1,16}\Z")
"""The random suffix GCC appends to LTO section names (``.gnu.lto_answer.0.6f6234d0``) without -frandom-seed."""


@dataclass(frozen=True, slots=True)
class SectionSummary:
    """One section: its bytes as a digest, what it holds, and its strings when small enough to search."""

    sha256: str
    size: int
    role: str
    """One of :data:`CODE`, :data:`DATA`, :data:`DEBUG`, :data:`SYMBOLS`, :data:`BUILD_ID`, :data:`NAMES`,
    :data:`OTHER`."""
    content: bytes
    """The bytes when within the search budget, else empty."""


@dataclass(frozen=True, slots=True)
class ElfSummary:
    """The parts of one ELF file a comparison needs."""

    sections: dict[str, SectionSummary]
    build_id: str | None
    comp_dirs: frozenset[str]
    size: int
    layout: str
    """sha256 over what places and runs the code apart from section contents: the ELF header's type,
    machine, entry and flags, every program header (offsets aside), and every non-debug section's
    header (name, type, flags, address, alignment, entry size). Equal layouts and equal non-debug
    sections mean the same loaded image."""
    symbols: str
    """sha256 over the static symbols in order (name, value, size, binding, type, visibility, section
    name), debug sections' symbols left out: what a linker reads from ``.symtab``."""
    elf_type: str


def _is_debug(name: str) -> bool:
    return name.startswith((".debug_", ".zdebug_", ".rela.debug_", ".rel.debug_", ".gnu.debuglto_")) or name in (
        ".gnu_debuglink",
        ".gnu_debugaltlink",
    )


def section_role(section: Section, target: Section | None, *, names_table: bool = False) -> str:
    """What ``section`` holds, from its name, type and flags (``target``: the section a relocation
    section applies to, when its header names one; ``names_table``: it is the ELF header's section-name
    string table)."""
    name = section.name
    flags = section["sh_flags"]
    # A name is a claim: a section the loader maps (or may execute) is code or data whatever it is called.
    if _is_debug(name) and not flags & (_SHF_ALLOC | _SHF_EXECINSTR):
        return DEBUG
    if name == ".note.gnu.build-id" and section["sh_type"] == "SHT_NOTE" and not flags & _SHF_EXECINSTR:
        return BUILD_ID
    if name.startswith(".gnu.lto_"):
        return CODE
    if section["sh_type"] in _RELOCATIONS:
        if target is not None and flags & _SHF_INFO_LINK:
            role = section_role(target, None) if target["sh_type"] not in _RELOCATIONS else OTHER
            return role if role in (CODE, DATA, DEBUG) else OTHER
        return DATA if flags & _SHF_ALLOC else OTHER
    if flags & _SHF_EXECINSTR:
        return CODE
    if flags & _SHF_ALLOC:
        return DATA
    if names_table:
        return NAMES
    if section["sh_type"] in ("SHT_SYMTAB", "SHT_STRTAB"):
        return SYMBOLS
    return OTHER


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
    """Section digests and roles, layout and symbol digests, build-id and DW_AT_comp_dir values of one ELF file.

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
    sections: dict[str, SectionSummary] = {}
    names_by_index: dict[int, str] = {}
    debug_indexes: set[int] = set()
    layout = hashlib.sha256()
    header = elf.header
    layout.update(repr((header["e_type"], header["e_machine"], header["e_entry"], header["e_flags"])).encode())
    for segment in elf.iter_segments():
        layout.update(
            repr(
                tuple(
                    segment[key]
                    for key in ("p_type", "p_flags", "p_vaddr", "p_paddr", "p_filesz", "p_memsz", "p_align")
                )
            ).encode()
        )
    build_id = None
    keep_budget = MAX_STRING_BYTES
    symbol_tables: list[tuple[bytes, int]] = []
    string_tables: dict[int, bytes] = {}
    shstrndx = header["e_shstrndx"]
    all_sections = list(elf.iter_sections())
    for index, section in enumerate(all_sections):
        content = b"" if section["sh_type"] == "SHT_NOBITS" else _section_content(section, budget, read_allowance)
        keep = content if len(content) <= keep_budget else b""
        keep_budget -= len(keep)
        info = section["sh_info"]
        target = all_sections[info] if section["sh_type"] in _RELOCATIONS and 0 < info < len(all_sections) else None
        role = section_role(section, target, names_table=index == shstrndx and index != 0)
        name = section.name
        if name in sections:  # e.g. several .group sections in an object file
            name = f"{name}#{len(sections)}"
        names_by_index[index] = name
        if role == DEBUG:
            debug_indexes.add(index)
        else:
            # LTO sections by their stem: a random name suffix is judged with their contents (lto-random-seed).
            stem = _LTO_SUFFIX.sub("", name) if name.startswith(".gnu.lto_") else name
            layout.update(
                repr(
                    (
                        stem,
                        section["sh_type"],
                        section["sh_flags"],
                        section["sh_addr"],
                        section["sh_addralign"],
                        section["sh_entsize"],
                    )
                ).encode()
            )
        sections[name] = SectionSummary(hashlib.sha256(content).hexdigest(), len(content), role, keep)
        if section["sh_type"] == "SHT_SYMTAB":
            symbol_tables.append((content, section["sh_link"]))
        elif section["sh_type"] == "SHT_STRTAB":
            string_tables[index] = content
        if isinstance(section, NoteSection):
            for note in section.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID":
                    build_id = str(note["n_desc"])
    symbols = _symbols_digest(elf, symbol_tables, string_tables, names_by_index, debug_indexes)
    comp_dirs: set[str] = set()
    if want_dwarf and elf.has_dwarf_info():
        try:
            dwarf = elf.get_dwarf_info()
            for unit_index, unit in enumerate(dwarf.iter_CUs()):
                if unit_index >= MAX_COMPILE_UNITS:
                    break
                attribute = unit.get_top_DIE().attributes.get("DW_AT_comp_dir")
                if attribute is not None:
                    value: Any = attribute.value
                    comp_dirs.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
        except ELF_PARSE_ERRORS:
            comp_dirs.add("<unreadable DWARF>")
    return ElfSummary(
        sections, build_id, frozenset(comp_dirs), len(data), layout.hexdigest(), symbols, str(header["e_type"])
    )


_SYMBOL_FORMATS: Final = {64: ("IBBHQQ", (0, 4, 5, 1, 2, 3)), 32: ("IIIBBH", (0, 1, 2, 3, 4, 5))}
"""Elf64_Sym / Elf32_Sym field order, and where (name, value, size, info, other, shndx) sit in it."""


def _symbols_digest(
    elf: ELFFile,
    symbol_tables: list[tuple[bytes, int]],
    string_tables: dict[int, bytes],
    names_by_index: dict[int, str],
    debug_indexes: set[int],
) -> str:
    """sha256 over the static symbols in order: (name, value, size, binding, type, visibility, section name).

    The symbol entries are unpacked with :mod:`struct` (pyelftools' per-symbol parsing cost half a
    millisecond a symbol, minutes for libpython's archive); a debug section's own symbols are left out.
    """
    layout, order = _SYMBOL_FORMATS[elf.elfclass]
    fmt = ("<" if elf.little_endian else ">") + layout
    width = struct.calcsize(fmt)
    if sum(len(content) // width for content, _ in symbol_tables) > ELF_MAX_SYMBOLS:
        raise ElfBudgetExceeded(f"more than {ELF_MAX_SYMBOLS} static symbols")
    digest = hashlib.sha256()
    for content, link in symbol_tables:
        if len(content) % width:
            raise ValueError(f"symbol table of {len(content)} bytes is not a whole number of {width}-byte entries")
        strings = string_tables.get(link, b"")
        for fields in struct.iter_unpack(fmt, content):
            name_at, value, size, info, other, where = (fields[i] for i in order)
            if where in debug_indexes:
                continue  # a debug section's own symbol: it moves with the debug info, not the code
            end = strings.find(b"\0", name_at)
            name = strings[name_at : end if end >= 0 else len(strings)]
            section = names_by_index.get(where, str(where))
            digest.update(repr((name, value, size, info >> 4, info & 15, other & 3, section)).encode())
    return digest.hexdigest()


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


def _lto_names_only(left: ElfSummary, right: ElfSummary, differing: list[str]) -> bool:
    """True when the differing LTO bytecode sections are the same bytes under other random name suffixes."""

    def by_stem(summary: ElfSummary) -> dict[str, str] | None:
        stems: dict[str, str] = {}
        for name, section in summary.sections.items():
            if name.startswith(".gnu.lto_"):
                stem = _LTO_SUFFIX.sub("", name)
                if stem in stems:
                    return None  # two sections would share a stem: no one-to-one pairing to prove
                stems[stem] = section.sha256
        return stems

    if not any(name.startswith(".gnu.lto_") for name in differing):
        return False
    stems_a, stems_b = by_stem(left), by_stem(right)
    return stems_a is not None and stems_a == stems_b


def _role(name: str, left: ElfSummary, right: ElfSummary) -> str:
    """The role of a differing section; a section whose role differs between the sides is :data:`OTHER`."""
    roles = {summary.sections[name].role for summary in (left, right) if name in summary.sections}
    return roles.pop() if len(roles) == 1 else OTHER


def compare_summaries(left: ElfSummary, right: ElfSummary, *, comparator: str = "elf") -> FileComparison:
    """Classify the difference of two ELF files from their summaries.

    A category that names a harmless cause (``debug-info``, ``build-id-only``, ``lto-random-seed``,
    ``build-path``, ``embedded-date``) is given only on evidence that the code is the same: no code
    section, LTO bytecode or relocation of code differs, the static symbols and the layout (headers,
    segments, section addresses) are equal, and for the path and date categories every differing data
    section holds the embedded path or date. Anything else is ``code`` (or ``layout``).
    """
    names = sorted(left.sections.keys() | right.sections.keys())
    missing = SectionSummary("", 0, OTHER, b"")
    differing = [n for n in names if left.sections.get(n, missing).sha256 != right.sections.get(n, missing).sha256]
    details: list[str] = []
    for name in differing:
        size_a = left.sections[name].size if name in left.sections else None
        size_b = right.sections[name].size if name in right.sections else None
        where = "only in A" if size_b is None else "only in B" if size_a is None else f"{size_a} vs {size_b} bytes"
        details.append(f"section {name} ({_role(name, left, right)}): {where}")
    if left.build_id != right.build_id:
        details.append(f"build-id: {left.build_id} vs {right.build_id}")
    comp_a, comp_b = left.comp_dirs - right.comp_dirs, right.comp_dirs - left.comp_dirs
    if comp_a or comp_b:
        details.append(f"DW_AT_comp_dir: {', '.join(sorted(comp_a)) or '-'} vs {', '.join(sorted(comp_b)) or '-'}")
    same_symbols = left.symbols == right.symbols
    if not same_symbols:
        details.append("static symbols differ (name, value, size, binding, type, visibility or section)")
    same_layout = left.layout == right.layout and left.elf_type == right.elf_type
    if not same_layout:
        details.append("layout differs: ELF header, program headers or section headers (address, flags, alignment)")

    strings_a: set[str] = set()
    strings_b: set[str] = set()
    for name in differing:
        strings_a |= _text_strings(name, left.sections[name].content) if name in left.sections else set()
        strings_b |= _text_strings(name, right.sections[name].content) if name in right.sections else set()
    new_a, new_b = strings_a - strings_b, strings_b - strings_a
    build_paths = evidenced_build_paths(
        guess_build_paths(sorted(new_a | comp_a), sorted(new_b | comp_b)), strings_a | comp_a, strings_b | comp_b
    )
    if build_paths is None and len(comp_a) == 1 and len(comp_b) == 1:
        build_paths = prefix_pair(next(iter(comp_a)), next(iter(comp_b)))

    lto_renamed = _lto_names_only(left, right, differing)
    roles = {name: _role(name, left, right) for name in differing}
    debug = [n for n in differing if roles[n] == DEBUG]
    ignorable = {DEBUG, BUILD_ID, NAMES} | ({SYMBOLS} if same_symbols else set())
    rest = [n for n in differing if roles[n] not in ignorable and not (lto_renamed and n.startswith(".gnu.lto_"))]
    code = [n for n in rest if roles[n] != DATA]
    dated = any(_DATE.search(s) or _TIME.search(s) for s in new_a | new_b)
    lines, truncated = capped(details)

    def result(category: str, explanation: str) -> FileComparison:
        return FileComparison(comparator, category, explanation, lines, tuple(differing), build_paths, truncated)

    if not differing or (not rest and not same_layout):
        where = "every section is identical" if not differing else f"only {_names(differing)} differ in content"
        return result(
            "layout",
            f"{where}, but the bytes outside the sections or the headers differ (file size {left.size} vs "
            f"{right.size}: ELF/program/section headers, padding or appended data): not shown to be harmless",
        )
    if not rest:
        if differing == [".note.gnu.build-id"]:
            return result(
                "build-id-only",
                "only the build-id differs: it hashes something not in the loaded sections (e.g. stripped debug "
                "info); compare the unstripped files",
            )
        if lto_renamed:
            return result(
                "lto-random-seed",
                "GCC's LTO sections carry random name suffixes (the same bytecode under other names); compile with "
                "-frandom-seed=<fixed value per object>",
            )
        where = f"; {_path_sentence(build_paths)}" if build_paths else ""
        return result(
            "debug-info",
            f"code and data are identical, and so are the static symbols and the layout; only debug info differs "
            f"({_names(debug)}){where}",
        )
    causes = []
    if dated:
        causes.append("a build date/time (__DATE__/__TIME__, e.g. Modules/getbuildinfo.c): set SOURCE_DATE_EPOCH")
    if build_paths:
        causes.append(_path_sentence(build_paths))
    if not code and same_layout and causes and _strings_explain(rest, left, right, build_paths, dated):
        category = (
            "build-path"
            if build_paths and not dated
            else "embedded-date"
            if not build_paths
            else "embedded-date-and-path"
        )
        return result(category, f"data sections {_names(rest)} differ only by strings that embed " + "; ".join(causes))
    why = []
    if code:
        why.append(f"code in {_names(code)}")
    if [n for n in rest if n not in code]:
        why.append(f"data in {_names([n for n in rest if n not in code])}")
    if not same_symbols:
        why.append("the static symbols")
    if not same_layout:
        why.append("the layout")
    suspect = f" (it also embeds {'; '.join(causes)}, which does not account for the rest)" if causes else ""
    return result(
        "code",
        f"{' and '.join(why)} differ: a real difference (compiler, flags, PGO/LTO profile), not only an "
        f"embedded path or date{suspect}; inspect with --diffoscope",
    )


def _strings_explain(
    rest: list[str], left: ElfSummary, right: ElfSummary, build_paths: tuple[str, str] | None, dated: bool
) -> bool:
    """True when each differing data section's strings differ, and differ only in strings that carry
    the build path (its own side's) or a date: the evidence that a path or date is the whole difference."""
    for name in rest:
        if name not in left.sections or name not in right.sections:
            return False
        strings_a = _text_strings(name, left.sections[name].content)
        strings_b = _text_strings(name, right.sections[name].content)
        new_a, new_b = strings_a - strings_b, strings_b - strings_a
        if not new_a and not new_b:
            return False  # the bytes differ, but in nothing that reads as an embedded string
        for strings, path in ((new_a, build_paths[0] if build_paths else None),
                              (new_b, build_paths[1] if build_paths else None)):  # fmt: skip
            for text in strings:
                carries_path = path is not None and path in text
                carries_date = dated and bool(_DATE.search(text) or _TIME.search(text))
                if not (carries_path or carries_date):
                    return False
    return True


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
