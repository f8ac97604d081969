"""The ``peers`` verdict as data (``cpython-verify/peers/v1``): one frozen, strict pydantic model per object.

:func:`verify.attest.peers.peers_to_json` writes ``peers --json`` through :class:`PeersDocument`; a status
site's ``status.json`` carries the same verdict per release x profile
(:class:`verify.site.status_page.AgreementDocument`, which adds the pages it links). The schemas of both are
generated from these models. Nothing in cpython-verify reads a verdict back; the tests read every report
they produce back through its model. Built from the verdict's own values without validating them again: a
report is written after the work is done.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from verify.common.strict import Count, OneOf, StrictModel
from verify.compare.model import CHANGES
from verify.source.name_fields import ReleaseVersionText, Sha256

PEERS_FORMAT: Final = "cpython-verify/peers/v1"
MET: Final = "met"
NOT_MET: Final = "not-met"
DISAGREE: Final = "disagree"
STATES: Final = (MET, NOT_MET, DISAGREE)
"""What a verdict amounts to, for a status page and a script: see :attr:`verify.attest.peers.PeersVerdict.state`."""


class CheckedCounts(StrictModel):
    """What the verdict judged, in counts, and the distinct trees it saw."""

    attestations: Count
    rejected: Count
    rebuilders: Count
    agreeing: Count
    trees: tuple[Sha256, ...] = Field(strict=False)


class RebuilderDocument(StrictModel):
    """One independent rebuilder as counted."""

    signer: str
    tree_sha256: Sha256
    origins: tuple[str, ...] = Field(strict=False)
    agrees: bool


class ChangedFile(StrictModel):
    """A path on which a dissenting tree differs from the reference."""

    path: str
    changes: tuple[Annotated[str, OneOf(CHANGES, "a change")], ...] = Field(strict=False)


class DissentDocument(StrictModel):
    """A rebuilder whose tree is not the reference tree."""

    signer: str
    origin: str
    tree_sha256: Sha256
    files: tuple[ChangedFile, ...] | None = Field(strict=False)
    """The differing paths, when both manifests could be compared (None otherwise)."""
    note: str | None


class RunDocument(StrictModel):
    """One rebuild of a rebuilder that attested several."""

    origin: str
    job: str | None
    machine: str | None
    tree_sha256: Sha256


class RunsDocument(StrictModel):
    """A rebuilder that attested more than one rebuild, and whether its runs agree."""

    signer: str
    signers: Annotated[int, Field(ge=1)]
    agree: bool
    trees: tuple[Sha256, ...] = Field(strict=False)
    machines: tuple[str, ...] = Field(strict=False)
    runs: tuple[RunDocument, ...] = Field(strict=False)
    summary: str


class RejectedDocument(StrictModel):
    """An attestation the verdict did not count, and why."""

    origin: str
    reason: str


class VerdictBody(StrictModel):
    """The k-of-n verdict over independent rebuilds of one release and profile."""

    version: ReleaseVersionText
    profile: str
    threshold: Annotated[int, Field(ge=1)]
    met: bool
    state: Annotated[str, OneOf(STATES, "a verdict state")]
    disagreement: bool
    independent: Count
    reference: str
    reference_tree_sha256: Sha256 | None
    checked: CheckedCounts
    rebuilders: tuple[RebuilderDocument, ...] = Field(strict=False)
    agreeing: tuple[str, ...] = Field(strict=False)
    dissenting: tuple[DissentDocument, ...] = Field(strict=False)
    inconsistent: tuple[str, ...] = Field(strict=False)
    runs: tuple[RunsDocument, ...] = Field(strict=False)
    """Each rebuilder that attested more than one rebuild (e.g. two jobs of one CI signer): whether its runs
    agree. Not the k of n, which counts signers."""
    rejected: tuple[RejectedDocument, ...] = Field(strict=False)
    notes: tuple[str, ...] = Field(strict=False)
    summary: str


class PeersDocument(VerdictBody):
    """``peers --json``: the verdict with its format id."""

    format: Literal["cpython-verify/peers/v1"]
