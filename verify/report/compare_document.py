"""``compare --json`` (``cpython-verify/compare/v1``): the comparison as one frozen, strict pydantic model.

:func:`verify.report.compare.comparison_to_dict` writes through :meth:`ComparisonDocument.of`;
:func:`read_comparison` reads a report back; ``verify/schemas/compare-v1.json`` is generated from the model.
A report is built from the comparison's own values without validating them again: it is written after
the work is done, and a bug in it must not cost the result.

Paths, details and explanations are plain strings: a file name that is not UTF-8 reaches the report as
surrogate escapes, which pydantic's string constraints refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import Field

from verify.common.strict import OMITTED, Count, Omittable, OneOf, StrictModel
from verify.compare.model import CATEGORIES, CHANGES
from verify.manifest import KINDS
from verify.source.name_fields import Sha256

if TYPE_CHECKING:
    from verify.compare.model import Comparison, Difference, FileComparison, SideInfo
    from verify.manifest import ManifestEntry

FORMAT: Final = "cpython-verify/compare/v1"


Kind = Annotated[str, OneOf(sorted(KINDS), "a manifest kind")]
Change = Annotated[str, OneOf(CHANGES, "a change (only-in-a, only-in-b, type, mode, link-target, content)")]
Category = Annotated[str, OneOf(CATEGORIES, "a comparator category")]


class SideDocument(StrictModel):
    """Where one side came from."""

    source: Literal["manifest", "tree", "rebuild"]
    location: str
    entries: Count
    manifest_sha256: Sha256 | None
    inputs: dict[str, Any]
    """A rebuild's or a manifest's recorded inputs (empty for a plain tree)."""
    contents_available: bool
    """The files' bytes could be read (a tree or a rebuild result), not only their digests."""

    @classmethod
    def of(cls, info: SideInfo) -> SideDocument:
        """The side as the report writes it."""
        return cls.model_construct(
            source=info.source,
            location=info.location,
            entries=info.entries,
            manifest_sha256=info.manifest_sha256,
            inputs=dict(info.inputs),
            contents_available=info.contents_available,
        )


class EntryView(StrictModel):
    """One side's entry for a differing path."""

    kind: Kind
    mode: Annotated[str, Field(pattern=r"^[0-7]{4}$")]
    size: Count
    sha256: Sha256 | None
    target: str | None
    pyc: Omittable[str] = OMITTED
    """The ``.pyc`` header in one line (left out for other files)."""

    @classmethod
    def of(cls, entry: ManifestEntry | None) -> EntryView | None:
        """The entry as the report writes it (None for a side that does not have the path)."""
        if entry is None:
            return None
        return cls.model_construct(
            kind=entry.kind,
            mode=f"{entry.mode:04o}",
            size=entry.size,
            sha256=entry.sha256,
            target=entry.target,
            pyc=entry.pyc.describe() if entry.pyc is not None else None,
        )


class VerdictDocument(StrictModel):
    """What a comparator found out about one pair of differing files."""

    comparator: str
    category: Category
    explanation: str
    details: tuple[str, ...] = Field(strict=False)
    sections: tuple[str, ...] = Field(strict=False)
    build_paths: tuple[str, ...] | None = Field(strict=False)
    truncated: bool

    @classmethod
    def of(cls, verdict: FileComparison | None) -> VerdictDocument | None:
        """The verdict as the report writes it."""
        if verdict is None:
            return None
        return cls.model_construct(
            comparator=verdict.comparator,
            category=verdict.category,
            explanation=verdict.explanation,
            details=verdict.details,
            sections=verdict.sections,
            build_paths=verdict.build_paths or None,
            truncated=verdict.truncated,
        )


class DifferenceDocument(StrictModel):
    """One path that is not the same on both sides."""

    path: str
    kind: Kind
    changes: tuple[Change, ...] = Field(strict=False)
    a: EntryView | None
    b: EntryView | None
    comparison: VerdictDocument | None
    diffoscope: str | None

    @classmethod
    def of(cls, difference: Difference) -> DifferenceDocument:
        """The difference as the report writes it."""
        return cls.model_construct(
            path=difference.path,
            kind=difference.kind,
            changes=difference.changes,
            a=EntryView.of(difference.a),
            b=EntryView.of(difference.b),
            comparison=VerdictDocument.of(difference.comparison),
            diffoscope=difference.diffoscope,
        )


class Summary(StrictModel):
    """The differences, counted."""

    differences: Count
    by_kind: dict[str, dict[str, Count]]
    """kind -> change -> paths."""
    by_category: dict[str, Count]
    """comparator category -> content differences."""


class Coverage(StrictModel):
    """What was compared, in counts."""

    a_entries: Count
    b_entries: Count
    in_both: Count
    same_in_both: Count
    only_in_a: Count
    only_in_b: Count
    contents_compared_by: Literal["comparators", "digests"]


class ComparisonDocument(StrictModel):
    """``compare --json``: two sides, every difference classified, and the verdict."""

    format: Literal["cpython-verify/compare/v1"]
    identical: bool
    deep: bool
    a: SideDocument
    b: SideDocument
    summary: Summary
    build_paths: tuple[str, ...] | None = Field(strict=False)
    passed: bool
    coverage: Coverage
    verdict: str
    differences: tuple[DifferenceDocument, ...] = Field(strict=False)
    notes: tuple[str, ...] = Field(strict=False)

    @classmethod
    def of(cls, comparison: Comparison, verdict: str) -> ComparisonDocument:
        """The report of ``comparison``, whose closing line is ``verdict``."""
        return cls.model_construct(
            format=FORMAT,
            identical=comparison.identical,
            deep=comparison.deep,
            a=SideDocument.of(comparison.a),
            b=SideDocument.of(comparison.b),
            summary=Summary.model_construct(
                differences=len(comparison.differences),
                by_kind=comparison.counts_by_kind(),
                by_category=comparison.counts_by_category(),
            ),
            build_paths=comparison.build_paths or None,
            passed=comparison.passed,
            coverage=Coverage.model_construct(
                a_entries=comparison.a.entries,
                b_entries=comparison.b.entries,
                in_both=comparison.in_both,
                same_in_both=comparison.same_in_both,
                only_in_a=comparison.only_in_a,
                only_in_b=comparison.only_in_b,
                contents_compared_by="comparators" if comparison.deep else "digests",
            ),
            verdict=verdict,
            differences=tuple(DifferenceDocument.of(difference) for difference in comparison.differences),
            notes=comparison.notes,
        )
