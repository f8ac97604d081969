"""``merge --json`` (``cpython-verify/merge/v1``): the site written, the attestations rejected, and each
release x profile's ``peers`` verdict, as one frozen, strict pydantic model.

``merge`` writes its summary through :class:`MergeDocument`, and ``verify/schemas/merge-v1.json`` is generated
from it. Nothing in cpython-verify reads it back; the tests read every report they produce back through its
model. Built from the merge's values without validating them again: a report is written after the work is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Literal

from pydantic import Field

from verify.attest.peers import verdict_fields
from verify.attest.peers_document import VerdictBody
from verify.common.strict import Count, StrictModel

if TYPE_CHECKING:
    from pathlib import Path

    from verify.attest.peers import PeersVerdict

MERGE_FORMAT: Final = "cpython-verify/merge/v1"


class RejectedAttestation(StrictModel):
    """An attestation that did not verify, and why: it makes no row."""

    path: str
    reason: str


class MergeDocument(StrictModel):
    """``merge --json``: the site written, what was rejected, and each release x profile's verdict."""

    format: Literal["cpython-verify/merge/v1"]
    site: str
    """The site directory (``--out``)."""
    index: str
    """Its ``index.html``."""
    rows: Count
    """The rows of the page: verified attestations, rejected ones and planned jobs with no result."""
    rejected: tuple[RejectedAttestation, ...] = Field(strict=False)
    agreement: tuple[VerdictBody, ...] = Field(strict=False)
    """Each release x profile's ``peers`` verdict (``peers --json`` without its format id)."""

    @classmethod
    def of(
        cls, out_dir: Path, *, rows: int, rejected: Sequence[tuple[Path, str]], verdicts: Sequence[PeersVerdict]
    ) -> MergeDocument:
        """The summary of a merge into ``out_dir``."""
        return cls.model_construct(
            format=MERGE_FORMAT,
            site=str(out_dir),
            index=str(out_dir / "index.html"),
            rows=rows,
            rejected=tuple(RejectedAttestation.model_construct(path=str(path), reason=why) for path, why in rejected),
            agreement=tuple(VerdictBody.model_construct(**verdict_fields(verdict)) for verdict in verdicts),
        )
