"""The audit's values: findings and the per-question results that make up an :class:`AuditReport`."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from typing import Final

from verify.audit.coverage import AuditCoverage
from verify.common.errors import OperationalError, VerificationFailed
from verify.compare.model import FileComparison
from verify.source.models import SourceVerdict


class AuditError(OperationalError):
    """The installation or the source tree cannot be audited (missing stdlib directory, unreadable files)."""


class NothingToAudit(VerificationFailed):
    """The input holds no file of the standard library (nor, perhaps, the interpreter): nothing it holds can be
    compared with the source, so the audit fails (exit 1) with one line naming what to add."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One file the audit has something to say about."""

    path: str
    """Relative to the installation prefix."""
    status: str
    detail: str = ""
    patches: tuple[str, ...] = ()
    """The patches of ``--patches`` that account for the change, in series order."""
    transform: str = ""
    """A named packaging transform that accounts for (the rest of) the change: ``shebang-rewritten``..."""
    convention: str = ""
    """The id of the distribution convention that explains the file (``docs/audit.md``)."""
    comparison: FileComparison | None = None
    """An ELF file that differs from a rebuild: ``compare``'s verdict (side A the rebuild, B this installation)."""
    diff: tuple[str, ...] = ()
    """An unexplained text file: the unified diff of the verified source's file against the installed one
    (bounded, see ``diff_note``)."""
    diff_note: str = ""
    """What of the diff was left out and why (cut at a bound, not a text file); empty when it is whole."""


UNEXPLAINED_MODIFIED: Final = frozenset({"modified"})
"""Statuses of a modified file that nothing accounts for; the other ones name what does."""


@dataclass(frozen=True, slots=True)
class MissingGroup:
    """Files the source installs that this installation does not have, counted by module or test directory."""

    group: str
    count: int
    package: str = ""
    """Where the distribution ships them, when its convention table says so."""
    accounted_for: str = ""
    """Why their absence is expected, in a few words (the package that ships them, the distribution's rules that
    delete them, or the configure option that leaves them out); empty when nothing accounts for it."""
    convention: str = ""
    """The distribution's convention that accounts for it (``split-packages``, ``not-packaged``), if one does."""


@dataclass(frozen=True, slots=True)
class SourceAudit:
    """Every installed file that comes from the source (``Lib/``, ``Include/``) against the verified tree."""

    checked: int
    identical: int
    modified: tuple[Finding, ...]
    """Every file that differs, each with what accounts for the difference (status ``modified``: nothing)."""
    missing: tuple[Finding, ...]
    """Files ``make install`` would have installed that are absent (status ``not-in-package-set`` for a set of
    packages, ``not-installed`` for an installation); detail is the group."""
    extra: tuple[Finding, ...]
    """Files inside the installation that nothing explains: the supply-chain signal."""
    expected_extra: tuple[Finding, ...]
    """Files not in the source that are explained: generated, third-party, a convention, added by a patch."""
    missing_groups: tuple[MissingGroup, ...] = ()
    compared: tuple[str, ...] = ()
    """Every path compared byte for byte with the verified source (``checked`` of them), in order."""

    def missing_by_package(self) -> dict[str, int]:
        """Missing files counted by top-level module or test directory (a distribution's split packages)."""
        counts = Counter(finding.detail for finding in self.missing)
        return dict(sorted(counts.items()))

    @property
    def unexplained_modified(self) -> tuple[Finding, ...]:
        """Modified files with at least one changed line nothing accounts for."""
        return tuple(finding for finding in self.modified if finding.status in UNEXPLAINED_MODIFIED)


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
    rebuild_config_args: tuple[str, ...] | None = None
    """The rebuild's ``CONFIG_ARGS`` from its own sysconfigdata; None when its bytes were not given."""
    config_args_match: bool | None = None
    """True when the installation and the rebuild were configured with the same arguments (in any order);
    None when either is unknown."""
    compared: tuple[str, ...] = ()
    """Every ELF file compared with the rebuild's (matching or differing), prefix-relative."""


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
    distribution: str | None = None
    """The distribution whose convention table applied (``debian``), or None."""
    inputs: tuple[str, ...] = ()
    """What was audited: directories, images, archives, packages (for the report)."""
    packages: tuple[str, ...] = ()
    """``name version`` of each package audited, when the input was a set of packages."""
    patch_series: str | None = None
    """The ``--patches`` directory, when one was given."""
    out_of_scope: tuple[str, ...] = ()
    """Top directories of files outside the installation (documentation, metadata), when they were walked."""
    recipe_config_args: tuple[str, ...] = ()
    """The recipe's configure arguments, shown beside the installation's."""
    coverage: AuditCoverage | None = None
    """How much of what ``make install`` installs was compared, per part; None only in a report built by hand."""
    source: SourceVerdict | None = None
    """The verdict on the source release the installation was compared with (tarball, signatures, relaxations)."""

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
        """Everything that deviates from the verified source (explained or not; expected extras excluded)."""
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

    def unexplained_findings(self) -> list[Finding]:
        """Findings inside the installation that neither the source, make install, a patch nor a convention explains."""
        return [
            *self.sources.unexplained_modified,
            *self.sources.extra,
            *self.pyc.stale,
            *self.pyc.orphans,
            *self.pyc.unexpected,
            *self.pyc.unreadable,
            *self.pyc.mismatched,
            *self.elf.differing,
            *self.elf.not_in_rebuild,
        ]

    @property
    def unexplained(self) -> tuple[str, ...]:
        """Prefix-relative paths of everything unexplained, sorted; the audit passes exactly when it is empty."""
        return tuple(sorted({finding.path for finding in self.unexplained_findings()}))

    @property
    def clean(self) -> bool:
        """True when nothing inside the installation is unexplained (which alone is not a pass: see :attr:`passed`)."""
        return not self.unexplained

    def shortfalls(self) -> tuple[str, ...]:
        """Why the audit's evidence does not support a pass even if nothing is unexplained (one line each)."""
        if self.coverage is None:
            return ("the audit's coverage was not measured",)
        return self.coverage.shortfalls()

    @property
    def passed(self) -> bool:
        """The audit's verdict: nothing unexplained, and a coverage that supports it (the exit code is 0 exactly
        when this is True)."""
        return self.clean and not self.shortfalls()
