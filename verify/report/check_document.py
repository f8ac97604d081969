"""``check --json`` and ``RESULT/check.json`` (``cpython-verify/check/v1``) as one frozen, strict pydantic model.

:func:`verify.report.check.check_to_json` writes through :meth:`CheckDocument.of`, and
``verify/schemas/check-v1.json`` is generated from the model. Nothing in cpython-verify reads ``check.json``
back; the tests read every report they produce back through the model
(:func:`verify.report.schemas.document_models`). Built without validating the outcome's values again: a
report is written after the work is done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import Field

from verify.common.strict import Count, OneOf, StrictModel
from verify.source.models import CheckStatus, SignatureKind
from verify.source.name_fields import Sha256
from verify.source.releases import Version

if TYPE_CHECKING:
    from verify.outcomes import CheckOutcome

CHECK_FORMAT: Final = "cpython-verify/check/v1"


class Tarball(StrictModel):
    """The verified tarball."""

    name: str
    sha256: Sha256
    size: Count


class SignatureOutcome(StrictModel):
    """One signature kind and what its check found."""

    kind: Annotated[str, OneOf(SignatureKind, "a signature kind")]
    status: Annotated[str, OneOf(CheckStatus, "a check status")]


class SourceSummary(StrictModel):
    """What the source stage checked."""

    verified: bool
    sha256: Sha256
    """The tarball the rebuild unpacked (its record's)."""
    tarball: Tarball
    signatures: tuple[SignatureOutcome, ...] = Field(strict=False)
    digest_claims: Count
    digest_claims_agreeing: Count
    relaxed: tuple[str, ...] = Field(strict=False)
    """The relaxations the user chose (``--allow-missing KIND: ...``)."""
    verdict: str
    """The source verdict's closing line."""


class RecipeSummary(StrictModel):
    """The recipe profile built, and where its expectations were measured."""

    profile: str
    measured_on: tuple[str, ...] = Field(strict=False)


class RebuildSummary(StrictModel):
    """The two rebuilds compared (or the one, when reproducibility was not checked)."""

    entries: Count
    """Entries of the published baseline's manifest: what the two builds were compared in."""
    manifest_sha256: Sha256
    variations: tuple[str, ...] = Field(strict=False)
    skipped: dict[str, str]
    """Variation -> why the second build did not apply it."""
    reproducible: bool | None
    explained: bool | None
    differences: Count
    pgo_training: dict[str, Any] | None
    """For a PGO profile: how the two builds got their profiles (``rebuild.json``'s
    ``reproducibility.pgo_training``), with ``counters_identical``."""


class PeerCoverage(StrictModel):
    """Paths compared with one peer."""

    ours: Count
    theirs: Count
    in_both: Count
    same_in_both: Count


class PeerSummary(StrictModel):
    """One peer's install tree compared with ours."""

    peer: str
    identical: bool
    differences: Count
    by_category: dict[str, Count]
    report: str
    coverage: PeerCoverage


class Unsigned(StrictModel):
    """No attestation was signed, and why."""

    signed: Literal[False]
    why: str | None


class Signed(StrictModel):
    """The attestation signed."""

    signed: Literal[True]
    path: str
    verdict: str
    public_key: str | None
    """The public key written beside a key made for this run (None with a key of the user's or Sigstore)."""
    new_key: bool


class CheckDocument(StrictModel):
    """``check``'s outcome: each stage, what it checked, and the verdict."""

    format: Literal["cpython-verify/check/v1"]
    version: Version
    result: str
    source: SourceSummary
    recipe: RecipeSummary
    rebuild: RebuildSummary
    peers: tuple[PeerSummary, ...] = Field(strict=False)
    attestation: Annotated[Unsigned | Signed, Field(discriminator="signed")]
    cache_notes: tuple[str, ...] = Field(strict=False)
    ok: bool
    verdict: str

    @classmethod
    def of(cls, outcome: CheckOutcome, *, entries: int, verdict: str) -> CheckDocument:
        """The report of ``outcome``, whose baseline has ``entries`` entries and whose closing line is ``verdict``."""
        from verify.source.report import closing_line

        rebuilt = outcome.rebuild
        check = rebuilt.reproducibility
        signed = outcome.attestation.signed
        source = rebuilt.source
        new_key = outcome.attestation.new_public_key
        attestation: Unsigned | Signed = (
            Unsigned.model_construct(signed=False, why=outcome.attestation.why_not)
            if signed is None
            else Signed.model_construct(
                signed=True,
                path=str(signed.path),
                verdict=signed.content.predicate.verdict,
                public_key=str(new_key) if new_key else None,
                new_key=new_key is not None,
            )
        )
        training = (
            {**check.pgo_training.model_dump(mode="json"), "counters_identical": check.pgo_training.counters_identical}
            if check and check.pgo_training
            else None
        )
        return cls.model_construct(
            format=CHECK_FORMAT,
            version=rebuilt.record.version,
            result=str(rebuilt.result.path),
            source=SourceSummary.model_construct(
                verified=outcome.source_verified,
                sha256=rebuilt.record.source.sha256,
                tarball=Tarball.model_construct(
                    name=source.tarball.name, sha256=source.tarball.sha256, size=source.tarball.size
                ),
                signatures=tuple(
                    SignatureOutcome.model_construct(kind=str(e.kind), status=str(e.status)) for e in source.signatures
                ),
                digest_claims=len(source.digests),
                digest_claims_agreeing=source.digests_agreeing,
                relaxed=tuple(source.relaxations()),
                verdict=closing_line(source),
            ),
            recipe=RecipeSummary.model_construct(
                profile=rebuilt.record.inputs.recipe.profile, measured_on=tuple(rebuilt.measured_on)
            ),
            rebuild=RebuildSummary.model_construct(
                entries=entries,
                manifest_sha256=rebuilt.record.manifest_sha256,
                variations=check.variations if check else (),
                skipped=dict(check.skipped) if check else {},
                reproducible=check.reproducible if check else None,
                explained=check.explained if check else None,
                differences=len(check.differences) if check else 0,
                pgo_training=training,
            ),
            peers=tuple(
                PeerSummary.model_construct(
                    peer=str(peer.location),
                    identical=peer.comparison.identical,
                    differences=len(peer.comparison.differences),
                    by_category=peer.comparison.counts_by_category(),
                    report=str(peer.report),
                    coverage=PeerCoverage.model_construct(
                        ours=peer.comparison.a.entries,
                        theirs=peer.comparison.b.entries,
                        in_both=peer.comparison.in_both,
                        same_in_both=peer.comparison.same_in_both,
                    ),
                )
                for peer in outcome.peers
            ),
            attestation=attestation,
            cache_notes=rebuilt.record.cache_notes,
            ok=outcome.ok,
            verdict=verdict,
        )
