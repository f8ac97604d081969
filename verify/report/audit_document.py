"""``audit --json`` (``cpython-verify/audit/v2``) as one frozen, strict pydantic model.

:func:`verify.report.audit.audit_to_dict` writes through :meth:`AuditDocument.of`, and
``verify/schemas/audit-v2.json`` is generated from the model; the audit's ``source`` is the source verdict's
own model (:class:`verify.source.verdict_document.SourceVerdictDocument`) and an ELF finding's ``comparison``
is ``compare``'s (:class:`verify.report.compare_document.VerdictDocument`). Nothing in cpython-verify reads an
audit report back; the tests read every report they produce back through the model. Built from the audit's
own values without validating them again: a report is written after the work is done.

Paths are plain strings: an installed file's name that is not UTF-8 reaches the report as surrogate escapes,
which pydantic's string constraints refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import Field

from verify.common.strict import Count, StrictModel
from verify.report.compare_document import VerdictDocument
from verify.source.verdict_document import SourceVerdictDocument

if TYPE_CHECKING:
    from verify.audit import AuditReport, Finding
    from verify.audit.coverage import AuditCoverage
    from verify.audit.model import MissingGroup

FORMAT: Final = "cpython-verify/audit/v2"


class FindingDocument(StrictModel):
    """One file the audit has something to say about."""

    path: str
    """Relative to the installation prefix."""
    status: str
    detail: str
    patches: tuple[str, ...] = Field(strict=False)
    """The patches of ``--patches`` that account for the change, in series order."""
    transform: str
    """A named packaging transform that accounts for (the rest of) the change (``shebang-rewritten``...)."""
    convention: str
    """The id of the distribution convention that explains the file (``docs/audit.md``)."""

    @classmethod
    def fields_of(cls, finding: Finding) -> dict[str, Any]:
        """The finding's fields as the report writes them (its diff is for a person: text and HTML only)."""
        return {
            "path": finding.path,
            "status": finding.status,
            "detail": finding.detail,
            "patches": finding.patches,
            "transform": finding.transform,
            "convention": finding.convention,
        }


class ElfFindingDocument(FindingDocument):
    """An ELF file that differs from the rebuild, with ``compare``'s verdict on the pair (or null)."""

    comparison: VerdictDocument | None


def _findings(findings: tuple[Finding, ...]) -> tuple[FindingDocument, ...]:
    return tuple(FindingDocument.model_construct(**FindingDocument.fields_of(finding)) for finding in findings)


class MissingGroupDocument(StrictModel):
    """Files the source installs that the installation does not have, counted by module or test directory."""

    group: str
    count: Count
    package: str
    accounted_for: str
    convention: str

    @classmethod
    def of(cls, group: MissingGroup) -> MissingGroupDocument:
        """The group as the report writes it."""
        return cls.model_construct(
            group=group.group,
            count=group.count,
            package=group.package,
            accounted_for=group.accounted_for,
            convention=group.convention,
        )


class PartDocument(StrictModel):
    """One part of what ``make install`` installs, as far as the audit saw and compared it."""

    installs: Count | None
    present: Count
    compared: Count
    absent: Count
    unaccounted: Count
    how: str


class AuditCoverageDocument(StrictModel):
    """How much of what ``make install`` installs was compared, per part."""

    subject: str
    compared: Count
    unaccounted: Count
    shortfalls: tuple[str, ...] = Field(strict=False)
    parts: dict[str, PartDocument]

    @classmethod
    def of(cls, coverage: AuditCoverage | None) -> AuditCoverageDocument | None:
        """The coverage as the report writes it."""
        if coverage is None:
            return None
        return cls.model_construct(
            subject=coverage.subject,
            compared=coverage.compared,
            unaccounted=coverage.unaccounted,
            shortfalls=tuple(coverage.shortfalls()),
            parts={
                part.part: PartDocument.model_construct(
                    installs=part.installs,
                    present=part.present,
                    compared=part.compared,
                    absent=part.absent,
                    unaccounted=part.unaccounted,
                    how=part.how,
                )
                for part in coverage.parts
            },
        )


class SourcesDocument(StrictModel):
    """Every installed file that comes from the source, against the verified tree."""

    checked: Count
    identical: Count
    modified: tuple[FindingDocument, ...] = Field(strict=False)
    missing: tuple[FindingDocument, ...] = Field(strict=False)
    missing_by_package: dict[str, Count]
    missing_groups: tuple[MissingGroupDocument, ...] = Field(strict=False)
    not_in_package_set: tuple[MissingGroupDocument, ...] = Field(strict=False)
    extra: tuple[FindingDocument, ...] = Field(strict=False)
    expected_extra: tuple[FindingDocument, ...] = Field(strict=False)


class ConventionDocument(StrictModel):
    """A distribution convention that explained something, with the paths it explained."""

    title: str
    effect: str
    distribution: str
    source: str
    paths: tuple[str, ...] = Field(strict=False)


class PycDocument(StrictModel):
    """``.pyc`` files against their sources."""

    checked: Count
    header_ok: Count
    stale: tuple[FindingDocument, ...] = Field(strict=False)
    orphans: tuple[FindingDocument, ...] = Field(strict=False)
    unexpected: tuple[FindingDocument, ...] = Field(strict=False)
    unreadable: tuple[FindingDocument, ...] = Field(strict=False)
    recompiled: Count
    equivalent: Count
    mismatched: tuple[FindingDocument, ...] = Field(strict=False)
    reference: str | None


class ElfDocument(StrictModel):
    """ELF binaries and extension modules against a rebuild's manifest."""

    checked: Count
    matching: Count
    differing: tuple[ElfFindingDocument, ...] = Field(strict=False)
    not_in_rebuild: tuple[FindingDocument, ...] = Field(strict=False)
    note: str | None
    rebuild_config_args: tuple[str, ...] | None = Field(strict=False)
    config_args_match: bool | None


class AuditDocument(StrictModel):
    """An installation audited against its verified source: every finding, the coverage and the verdict."""

    format: Literal["cpython-verify/audit/v2"]
    passed: bool
    verdict: str
    coverage: AuditCoverageDocument | None
    source: SourceVerdictDocument | None
    unexplained: tuple[str, ...] = Field(strict=False)
    clean: bool
    prefix: str
    version: str
    stdlib: str
    inputs: tuple[str, ...] = Field(strict=False)
    packages: tuple[str, ...] = Field(strict=False)
    distribution: str | None
    patch_series: str | None
    sources: SourcesDocument
    conventions: dict[str, ConventionDocument]
    pyc: PycDocument
    elf: ElfDocument
    config_args: str | None
    config_args_list: tuple[str, ...] = Field(strict=False)
    recipe_config_args: tuple[str, ...] = Field(strict=False)
    sysconfigdata: str | None
    out_of_scope: tuple[str, ...] = Field(strict=False)
    notes: tuple[str, ...] = Field(strict=False)

    @classmethod
    def of(
        cls,
        report: AuditReport,
        *,
        verdict: str,
        conventions: dict[str, dict[str, Any]],
        package_set: bool,
    ) -> AuditDocument:
        """The report of ``report``: its closing line is ``verdict``; ``conventions`` are those that explained
        something (id -> title, effect, distribution, source, paths); ``package_set`` says the subject is a set
        of packages (its missing groups are then also listed as not in the package set)."""
        from verify.source.report import closing_line

        s, p, e = report.sources, report.pyc, report.elf
        groups = tuple(MissingGroupDocument.of(group) for group in s.missing_groups)
        return cls.model_construct(
            format=FORMAT,
            passed=report.passed,
            verdict=verdict,
            coverage=AuditCoverageDocument.of(report.coverage),
            source=None
            if report.source is None
            else SourceVerdictDocument.of(report.source, closing_line(report.source)),
            unexplained=tuple(report.unexplained),
            clean=report.clean,
            prefix=report.prefix,
            version=report.version,
            stdlib=report.stdlib,
            inputs=report.inputs,
            packages=report.packages,
            distribution=report.distribution,
            patch_series=report.patch_series,
            sources=SourcesDocument.model_construct(
                checked=s.checked,
                identical=s.identical,
                modified=_findings(s.modified),
                missing=_findings(s.missing),
                missing_by_package=s.missing_by_package(),
                missing_groups=groups,
                not_in_package_set=groups if package_set else (),
                extra=_findings(s.extra),
                expected_extra=_findings(s.expected_extra),
            ),
            conventions={
                key: ConventionDocument.model_construct(**{**value, "paths": tuple(value["paths"])})
                for key, value in conventions.items()
            },
            pyc=PycDocument.model_construct(
                checked=p.checked,
                header_ok=p.header_ok,
                stale=_findings(p.stale),
                orphans=_findings(p.orphans),
                unexpected=_findings(p.unexpected),
                unreadable=_findings(p.unreadable),
                recompiled=p.recompiled,
                equivalent=p.equivalent,
                mismatched=_findings(p.mismatched),
                reference=p.reference,
            ),
            elf=ElfDocument.model_construct(
                checked=e.checked,
                matching=e.matching,
                differing=tuple(
                    ElfFindingDocument.model_construct(
                        **FindingDocument.fields_of(finding), comparison=VerdictDocument.of(finding.comparison)
                    )
                    for finding in e.differing
                ),
                not_in_rebuild=_findings(e.not_in_rebuild),
                note=e.note,
                rebuild_config_args=e.rebuild_config_args,
                config_args_match=e.config_args_match,
            ),
            config_args=report.config_args,
            config_args_list=report.config_args_list,
            recipe_config_args=report.recipe_config_args,
            sysconfigdata=report.sysconfigdata,
            out_of_scope=report.out_of_scope,
            notes=report.notes,
        )
