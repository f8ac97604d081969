"""The typed values the chain returns: what a rebuild or a check established about one release.

:mod:`verify.chain` builds them (and re-exports them); :mod:`verify.report` renders them as text and
JSON. They sit below both so that the renderer never imports the chain: each holds the stages' own
values (a :class:`~verify.source.models.SourceVerdict`, a rebuild's result and record, comparisons, a
signed attestation), never a dict. The attestation's outcome is the attest stage's own
(:class:`verify.attest.signing.AttestationOutcome`), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from verify.attest.signing import AttestationOutcome
from verify.compare.model import Comparison
from verify.rebuild.core import RebuildResult
from verify.result import RebuildRecord, ReproducibilityCheck, ResultDir
from verify.source.models import SourceVerdict

__all__ = ["AttestationOutcome", "CheckOutcome", "PeerOutcome", "RebuildOutcome"]


@dataclass(frozen=True)
class RebuildOutcome:
    """A published rebuild: the source verdict it rests on, the baseline build, and the result directory."""

    source: SourceVerdict
    baseline: RebuildResult
    result: ResultDir
    record: RebuildRecord
    """The published record: the baseline's, with the ``--twice`` comparison when there was one."""
    measured_on: tuple[str, ...] = ()
    """The releases the recipe says its profile was measured on (empty: an unmeasured profile)."""
    recipe_status: str = ""
    """One line saying so, for reports (:meth:`verify.source.recipes.BuildProfile.status`)."""

    @property
    def reproducibility(self) -> ReproducibilityCheck | None:
        """The ``--twice`` comparison, if one ran."""
        return self.record.reproducibility


@dataclass(frozen=True)
class PeerOutcome:
    """Our result compared with one peer's or published build."""

    location: Path
    comparison: Comparison
    report: Path


@dataclass(frozen=True)
class CheckOutcome:
    """Everything ``check`` established about one release."""

    rebuild: RebuildOutcome
    peers: tuple[PeerOutcome, ...] = ()
    attestation: AttestationOutcome = field(default_factory=lambda: AttestationOutcome(None, "not attested"))

    @property
    def source_verified(self) -> bool:
        """What the source verdict says (the rebuild refuses unverified source, so it is True here)."""
        return self.rebuild.source.verified

    @property
    def reproducible_or_explained(self) -> bool:
        """True when the two rebuilds agree, identically or only as the variations explain."""
        check = self.rebuild.reproducibility
        return check is not None and check.explained

    @property
    def ok(self) -> bool:
        """The check passes: verified source, agreeing rebuilds, every peer identical."""
        return (
            self.source_verified
            and self.reproducible_or_explained
            and all(peer.comparison.passed for peer in self.peers)
        )
