"""The source verdict's JSON form (``cpython-verify/source-verdict/v1``) as one frozen, strict pydantic model.

:func:`verify.source.report.verdict_to_dict` writes ``source --json``, a result's ``source-verdict.json`` and
the audit's ``source`` through :meth:`SourceVerdictDocument.of`, and ``verify/schemas/source-verdict-v1.json``
is generated from the model. (A result's ``source-verdict.json`` is read back by
:func:`verify.source.report.verdict_from_json`, which keeps reading the files earlier versions wrote.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from verify.common.strict import Count, OneOf, StrictModel
from verify.source.models import CheckStatus, SignatureKind
from verify.source.name_fields import ReleaseVersionText, Sha256

if TYPE_CHECKING:
    from verify.source.models import SourceVerdict

SOURCE_VERDICT_FORMAT = "cpython-verify/source-verdict/v1"


class RecipeDocument(StrictModel):
    """The recipe the verdict applied: its series and the sha256 of its bytes."""

    series: str
    sha256: Sha256


class TarballDocument(StrictModel):
    """The release tarball judged."""

    name: str
    sha256: Sha256
    size: Count
    origin: str
    """Where its bytes came from (a URL, a local directory, a mirror)."""


class SignatureDocument(StrictModel):
    """One signature kind's evidence."""

    kind: Annotated[str, OneOf(SignatureKind, "a signature kind")]
    status: Annotated[str, OneOf(CheckStatus, "a check status")]
    signer: str | None
    signer_name: str | None
    signed_at: str | None
    signature_origin: str | None
    detail: str
    notes: tuple[str, ...] = Field(strict=False)


class DigestDocument(StrictModel):
    """An independent claim of the tarball's sha256, and whether it agrees."""

    source: str
    sha256: str
    agrees: bool


class PatchlevelDocument(StrictModel):
    """The version ``Include/patchlevel.h`` states, and whether it is the release's."""

    found: str | None
    ok: bool


class SourceCoverageDocument(StrictModel):
    """What was checked, in counts."""

    signatures: Count
    signatures_checked: Count
    signatures_verified: Count
    digest_claims: Count
    digest_claims_agreeing: Count


class SourceVerdictDocument(StrictModel):
    """A source verdict: the tarball, each signature, the digest cross-checks, and the verdict."""

    format: Literal["cpython-verify/source-verdict/v1"]
    version: ReleaseVersionText
    verified: bool
    recipe: RecipeDocument
    tarball: TarballDocument
    signatures: tuple[SignatureDocument, ...] = Field(strict=False)
    digests: tuple[DigestDocument, ...] = Field(strict=False)
    patchlevel: PatchlevelDocument
    archive_problem: str | None
    failures: tuple[str, ...] = Field(strict=False)
    notes: tuple[str, ...] = Field(strict=False)
    relaxed: tuple[str, ...] = Field(strict=False)
    coverage: SourceCoverageDocument
    verdict: str

    @classmethod
    def of(cls, verdict: SourceVerdict, closing_line: str) -> SourceVerdictDocument:
        """The document of ``verdict``, whose closing line is ``closing_line`` (built without validating the
        verdict's values again)."""
        tarball = verdict.tarball
        return cls.model_construct(
            format=SOURCE_VERDICT_FORMAT,
            version=str(verdict.version),
            verified=verdict.verified,
            recipe=RecipeDocument.model_construct(series=verdict.recipe_series, sha256=verdict.recipe_sha256),
            tarball=TarballDocument.model_construct(
                name=tarball.name, sha256=tarball.sha256, size=tarball.size, origin=tarball.origin
            ),
            signatures=tuple(
                SignatureDocument.model_construct(
                    kind=str(evidence.kind),
                    status=str(evidence.status),
                    signer=evidence.signer,
                    signer_name=evidence.signer_name,
                    signed_at=evidence.signed_at.isoformat() if evidence.signed_at else None,
                    signature_origin=evidence.signature_origin,
                    detail=evidence.detail,
                    notes=evidence.notes,
                )
                for evidence in verdict.signatures
            ),
            digests=tuple(
                DigestDocument.model_construct(
                    source=check.claim.source, sha256=check.claim.sha256, agrees=check.agrees
                )
                for check in verdict.digests
            ),
            patchlevel=PatchlevelDocument.model_construct(found=verdict.patchlevel_version, ok=verdict.patchlevel_ok),
            archive_problem=verdict.archive_problem,
            failures=tuple(verdict.failures()),
            notes=verdict.notes,
            relaxed=tuple(verdict.relaxations()),
            coverage=SourceCoverageDocument.model_construct(
                signatures=len(verdict.signatures),
                signatures_checked=verdict.signatures_checked,
                signatures_verified=verdict.signatures_verified,
                digest_claims=len(verdict.digests),
                digest_claims_agreeing=verdict.digests_agreeing,
            ),
            verdict=closing_line,
        )
