"""The audit's values: findings and the per-question results that make up an :class:`AuditReport`."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass

from verify.errors import OperationalError


class AuditError(OperationalError):
    """The installation or the source tree cannot be audited (missing stdlib directory, unreadable files)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One file the audit has something to say about."""

    path: str
    """Relative to the installation prefix."""
    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SourceAudit:
    """Stdlib ``.py`` files against the verified ``Lib/``."""

    checked: int
    identical: int
    modified: tuple[Finding, ...]
    missing: tuple[Finding, ...]
    extra: tuple[Finding, ...]
    expected_extra: tuple[Finding, ...]
    """Third-party directories and generated modules, one finding per directory or file."""

    def missing_by_package(self) -> dict[str, int]:
        """Missing files counted by top-level module or package (a distribution's split packages)."""
        counts = Counter(finding.detail for finding in self.missing)
        return dict(sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class PycAudit:
    """``.pyc`` files against their sources."""

    checked: int
    header_ok: int
    stale: tuple[Finding, ...]
    """The header names a different source (size, mtime or hash) than the ``.py`` beside it."""
    orphans: tuple[Finding, ...]
    unexpected: tuple[Finding, ...]
    unreadable: tuple[Finding, ...]
    recompiled: int
    equivalent: int
    mismatched: tuple[Finding, ...]
    reference: str
    """Which interpreter recompiled the sources, or why none did."""


@dataclass(frozen=True, slots=True)
class ElfAudit:
    """ELF binaries and extension modules against a rebuild's manifest."""

    checked: int
    matching: int
    differing: tuple[Finding, ...]
    not_in_rebuild: tuple[Finding, ...]
    note: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything the audit found about one installation."""

    prefix: str
    version: str
    stdlib: str
    sources: SourceAudit
    pyc: PycAudit
    elf: ElfAudit
    config_args: str | None
    """``CONFIG_ARGS`` from the installation's sysconfigdata (None if none was found)."""
    sysconfigdata: str | None
    notes: tuple[str, ...] = ()

    @property
    def config_args_list(self) -> tuple[str, ...]:
        """``CONFIG_ARGS`` split as the shell would: arguments for ``./configure``."""
        if not self.config_args:
            return ()
        try:
            return tuple(shlex.split(self.config_args))
        except ValueError:
            return (self.config_args,)

    def findings(self) -> list[Finding]:
        """Everything that deviates from the verified source (expected extras excluded)."""
        return [
            *self.sources.modified,
            *self.sources.missing,
            *self.sources.extra,
            *self.pyc.stale,
            *self.pyc.orphans,
            *self.pyc.unexpected,
            *self.pyc.unreadable,
            *self.pyc.mismatched,
            *self.elf.differing,
        ]

    @property
    def clean(self) -> bool:
        """True when the installation matches the verified source in everything checked."""
        return not self.findings()
