"""The values a comparison produces: per-file verdicts, per-path differences, the whole comparison.

Nothing here does I/O; the text, JSON and HTML reports are derived from these values alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from verify.manifest import ManifestEntry

# The ways one path can differ, in the order reports list them.
ONLY_IN_A: Final = "only-in-a"
ONLY_IN_B: Final = "only-in-b"
TYPE: Final = "type"
"""A directory on one side and a file or symlink on the other (or any such swap)."""
MODE: Final = "mode"
LINK_TARGET: Final = "link-target"
CONTENT: Final = "content"
CHANGES: Final = (ONLY_IN_A, ONLY_IN_B, TYPE, MODE, LINK_TARGET, CONTENT)


CATEGORIES: Final = {
    # Harmless causes, each given only on the comparator's evidence that the code is the same.
    "debug-info": "ELF: only debug sections (DWARF, LTO's early debug info) and the build-id differ; code, data, "
    "static symbols and layout are identical (an archive: every differing member so)",
    "build-id-only": "ELF: only the build-id note differs",
    "lto-random-seed": "ELF: the same LTO bytecode under other random section-name suffixes",
    "build-path": "the difference is one embedded directory and nothing else: B is A with that path replaced "
    "(text, binary, config, .pyc strings), or ELF data sections whose differing strings all carry it",
    "embedded-date": "ELF data sections whose differing strings all carry a build date or time",
    "embedded-date-and-path": "ELF data sections whose differing strings all carry a build date or the build path",
    "header-only": ".pyc: the same marshalled code, another header (timestamp, size, hash)",
    "reference-flags-only": ".pyc: equal code objects, marshalled with other reference flags",
    "path-only": ".pyc: the code differs only in co_filename",
    "whitespace": "text: equal lines, other line endings or final newline",
    # Real differences, or differences no comparator could show to be harmless.
    "code": "ELF or archive: code, data, symbols or layout differ beyond any embedded path or date",
    "semantic": ".pyc: different code",
    "content": "text or bytes differ (or only digests were available)",
    "settings": "configuration: keys differ (configure arguments, compiler flags)",
    "probed-features": "configuration: configure probed other features",
    "install-prefix": "configured with another --prefix",
    "source-hash": ".pyc: equal code, hash-based headers with different source hashes",
    "stale-source-hash": ".pyc: its checked source hash does not match the source beside it",
    "pyc-header": "digest only: the .pyc headers differ, the code is unknown",
    "kind-changed": "the file changed type",
    "unreadable": "the file could not be read",
    "layout": "ELF: sections identical (or only harmless ones differ) but headers, segments or padding differ; an "
    "archive: only ar headers or padding",
    "membership": "archive: a member is only on one side",
    "symbol-table": "archive: the symbol index lists other symbols or members",
    "mixed": "archive: members differ in more than one way",
}
"""Every category a comparator gives (:attr:`FileComparison.category`), with what it means. The first
ones name a cause that leaves the code unchanged, shown by the comparator's evidence; a recipe may
expect only those (``verify.source.recipes.EXPECTABLE_CATEGORIES``)."""


@dataclass(frozen=True, slots=True)
class FileComparison:
    """What a comparator found out about one pair of files whose bytes differ."""

    comparator: str
    """Which comparator judged the pair: ``pyc``, ``elf``, ``static-archive``, ``config``, ``text``,
    ``binary`` or ``digest`` (only digests were available)."""
    category: str
    """A short class a script can act on, e.g. ``debug-info``, ``build-path``, ``reference-flags-only``,
    ``semantic``, ``code``, ``content``; see ``docs/compare-json.md``."""
    explanation: str
    """One line, in words a packager can act on."""
    details: tuple[str, ...] = ()
    """Supporting lines (capped): differing sections, keys, a unified diff, bytecode diff."""
    sections: tuple[str, ...] = ()
    """ELF only: names of the sections whose bytes differ, or that exist on one side only."""
    build_paths: tuple[str, str] | None = None
    """The two build paths this pair embeds, when they could be detected."""
    truncated: bool = False
    """True when ``details`` was cut at its cap."""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:  # a comparator's own bug: recipes match on these names
            raise ValueError(f"comparator {self.comparator} gave the unknown category {self.category!r}")


@dataclass(frozen=True, slots=True)
class Difference:
    """One path that is not the same on both sides."""

    path: str
    kind: str
    """The manifest kind used for grouping (side A's when both exist and disagree)."""
    changes: tuple[str, ...]
    """Which of :data:`CHANGES` apply, in that order."""
    a: ManifestEntry | None
    b: ManifestEntry | None
    comparison: FileComparison | None = None
    """Set for content differences: what a comparator (or the digests alone) says."""
    diffoscope: str | None = None
    """diffoscope's capped text output, when ``--diffoscope`` asked for it."""


@dataclass(frozen=True, slots=True)
class SideInfo:
    """Where one side of a comparison came from."""

    label: str
    """``A`` or ``B``."""
    source: str
    """``manifest``, ``tree`` or ``rebuild``."""
    location: str
    entries: int
    manifest_sha256: str
    inputs: Mapping[str, Any] = field(default_factory=dict)
    contents_available: bool = False
    """True when the files' bytes could be read (a tree or rebuild result), not only their digests."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of comparing two install trees or manifests."""

    a: SideInfo
    b: SideInfo
    differences: tuple[Difference, ...]
    build_paths: tuple[str, str] | None = None
    """The build-path pair most differing files embed, when one could be detected."""
    notes: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        """True when no path differs in presence, type, mode, link target or content."""
        return not self.differences

    @property
    def in_both(self) -> int:
        """Paths present on both sides: their type, mode, link target and content were compared."""
        return self.a.entries - sum(1 for difference in self.differences if ONLY_IN_A in difference.changes)

    @property
    def only_in_a(self) -> int:
        """Paths only side A has."""
        return sum(1 for difference in self.differences if ONLY_IN_A in difference.changes)

    @property
    def only_in_b(self) -> int:
        """Paths only side B has."""
        return sum(1 for difference in self.differences if ONLY_IN_B in difference.changes)

    @property
    def same_in_both(self) -> int:
        """Paths present on both sides and the same in every respect."""
        return self.in_both - sum(1 for difference in self.differences if difference.a and difference.b)

    @property
    def compared_anything(self) -> bool:
        """False when neither side has a single entry: two empty sides are identical, and prove nothing."""
        return self.a.entries + self.b.entries > 0

    @property
    def passed(self) -> bool:
        """The comparison's verdict: identical, and something was compared (the exit code is 0 exactly then)."""
        return self.identical and self.compared_anything

    @property
    def deep(self) -> bool:
        """True when both sides' bytes were available, so content differences were explained by comparators."""
        return self.a.contents_available and self.b.contents_available

    def counts_by_kind(self) -> dict[str, dict[str, int]]:
        """For each kind (sorted), how many paths show each change."""
        counts: dict[str, dict[str, int]] = {}
        for difference in self.differences:
            per_kind = counts.setdefault(difference.kind, {})
            for change in difference.changes:
                per_kind[change] = per_kind.get(change, 0) + 1
        return {kind: counts[kind] for kind in sorted(counts)}

    def counts_by_category(self) -> dict[str, int]:
        """How many content differences fall in each comparator category (sorted)."""
        counts: dict[str, int] = {}
        for difference in self.differences:
            if difference.comparison is not None:
                key = difference.comparison.category
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))
