"""Read back a ``source-verdict.json`` (``cpython-verify/source-verdict/v1``): the pydantic models of what a
written verdict keeps, and the one reader.

Apart from :mod:`verify.source.report` (which writes the format) so that a command that only writes a
verdict (``source``) does not build these models: only a command that reads one back does.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from verify.common.errors import VersionError
from verify.common.jsonutil import validation_summary
from verify.source.models import (
    CheckStatus,
    DigestCheck,
    DigestClaim,
    FetchedFile,
    SignatureEvidence,
    SignatureKind,
    SourceVerdict,
)
from verify.source.releases import Version


class _Stored(BaseModel):
    """What a written verdict keeps of each field; the rest (failures, coverage, the closing line) is
    derived from these and is not read back."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")


class _StoredTarball(_Stored):
    name: StrictStr
    sha256: StrictStr
    size: StrictInt
    origin: StrictStr


class _StoredSignature(_Stored):
    kind: SignatureKind
    status: CheckStatus
    detail: StrictStr
    signer: StrictStr | None = None
    signer_name: StrictStr | None = None
    signed_at: StrictStr | None = None
    signature_origin: StrictStr | None = None
    notes: tuple[StrictStr, ...] = ()


class _StoredDigest(_Stored):
    source: StrictStr
    sha256: StrictStr
    agrees: StrictBool


class _StoredRecipe(_Stored):
    series: StrictStr
    sha256: StrictStr


class _StoredPatchlevel(_Stored):
    found: StrictStr | None


class _StoredVerdict(_Stored):
    format: Literal["cpython-verify/source-verdict/v1"]
    version: StrictStr
    verified: StrictBool
    recipe: _StoredRecipe
    tarball: _StoredTarball
    signatures: tuple[_StoredSignature, ...]
    digests: tuple[_StoredDigest, ...]
    patchlevel: _StoredPatchlevel
    archive_problem: StrictStr | None = None
    notes: tuple[StrictStr, ...] = ()
    relaxed: tuple[StrictStr, ...] = ()


def read_verdict(raw: bytes) -> SourceVerdict:
    """Read back a verdict :func:`verify.source.report.verdict_to_json` wrote (the one reader of the format).

    The tarball's ``path`` is its bare name: a verdict read back is evidence about bytes, not a handle
    to them. Raises ``ValueError`` with one line: a missing or mistyped field, a version that is not a
    CPython release, or a file whose ``verified`` disagrees with the evidence it lists (edited by hand)."""
    try:
        stored = _StoredVerdict.model_validate_json(raw)
        version = Version.parse(stored.version)
        signatures = tuple(
            SignatureEvidence(
                kind=item.kind,
                status=item.status,
                detail=item.detail,
                signer=item.signer,
                signer_name=item.signer_name,
                signed_at=datetime.fromisoformat(item.signed_at) if item.signed_at else None,
                signature_origin=item.signature_origin,
                notes=item.notes,
            )
            for item in stored.signatures
        )
    except ValidationError as error:
        raise ValueError(validation_summary(error)) from None
    except VersionError as error:
        raise ValueError(f"version: {error.message}") from None
    except ValueError as error:  # a signed_at that is not an ISO 8601 time
        raise ValueError(f"signatures: signed_at: {error}") from None
    tarball = stored.tarball
    verdict = SourceVerdict(
        version=version,
        recipe_series=stored.recipe.series,
        recipe_sha256=stored.recipe.sha256,
        tarball=FetchedFile(tarball.name, Path(tarball.name), tarball.sha256, tarball.size, tarball.origin),
        signatures=signatures,
        digests=tuple(DigestCheck(DigestClaim(item.source, item.sha256), item.agrees) for item in stored.digests),
        patchlevel_version=stored.patchlevel.found,
        notes=stored.notes,
        archive_problem=stored.archive_problem,
        # relaxations() says "--allow-missing KIND: ..." for each kind the user let be absent.
        allowed_missing=tuple(
            kind
            for kind in SignatureKind
            if any(line.startswith(f"--allow-missing {kind}:") for line in stored.relaxed)
        ),
    )
    if verdict.verified != stored.verified:
        said, shows = ("verified", "not verified") if stored.verified else ("not verified", "verified")
        raise ValueError(f"it says the source is {said}, but the evidence it lists shows it {shows}")
    return verdict
