"""The stages wired together; the only module that knows their order.

Every I/O edge (where bytes come from, how signatures are checked, how a tarball is read) is passed
in, so the order and the rules can be tested with real components swapped for other real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verify.errors import FetchError
from verify.models import (
    CheckStatus,
    DigestCheck,
    DigestClaim,
    FetchedFile,
    SignatureEvidence,
    SignatureKind,
    SourceVerdict,
)
from verify.recipes import OpenPGPPolicy, Recipe, SigstorePolicy
from verify.releases import Version, patchlevel_version
from verify.sources.interface import SourceLocation

SIGNATURE_SUFFIXES = {SignatureKind.OPENPGP: ".asc", SignatureKind.SIGSTORE: ".sigstore"}
PATCHLEVEL_MAX_BYTES = 64 * 1024

OpenPGPCheck = Callable[[FetchedFile, FetchedFile, OpenPGPPolicy], SignatureEvidence]
SigstoreCheck = Callable[[FetchedFile, FetchedFile, SigstorePolicy], SignatureEvidence]
MemberReader = Callable[[Path, str], bytes | None]
ClaimProvider = Callable[[Version, str], Sequence[DigestClaim]]


@dataclass(frozen=True)
class SourceChecks:
    """The I/O edges the source stage uses, injected."""

    locations: Sequence[SourceLocation]
    check_openpgp: OpenPGPCheck
    check_sigstore: SigstoreCheck
    read_member: MemberReader
    claim_providers: Sequence[ClaimProvider] = ()


@dataclass(frozen=True)
class SourceRequest:
    """What the user asked to verify, and which relaxations they knowingly chose."""

    version: Version
    recipe: Recipe
    require: frozenset[SignatureKind] = frozenset()
    allow_missing: frozenset[SignatureKind] = frozenset()
    user_claims: tuple[DigestClaim, ...] = ()
    notes: list[str] = field(default_factory=list)

    def required_kinds(self) -> tuple[SignatureKind, ...]:
        """Kinds that must verify: what the series publishes for this version plus ``--require``."""
        published = {SignatureKind(kind) for kind in self.recipe.published_signatures(self.version)}
        return tuple(kind for kind in SignatureKind if kind in published | self.require)


def fetch_first(
    locations: Sequence[SourceLocation], version: Version, filename: str
) -> tuple[FetchedFile | None, list[str]]:
    """Fetch ``filename`` from the first location that has it; notes say where it was not found.

    A location that fails operationally is noted and the next one tried: one broken mirror must not
    hide a good one. If every location that had the file failed, the last error is raised.
    """
    notes: list[str] = []
    last_error: FetchError | None = None
    for location in locations:
        try:
            fetched = location.fetch(version, filename)
        except FetchError as error:
            notes.append(f"{filename}: {location.description}: {error.message}")
            last_error = error
            continue
        if fetched is not None:
            return fetched, notes
        notes.append(f"{filename}: not at {location.description}")
    if last_error is not None:
        raise last_error
    return None, notes


def verify_source(request: SourceRequest, checks: SourceChecks) -> SourceVerdict:
    """Fetch a release's tarball and signatures and establish what can be proven about them.

    Returns a verdict that lists every check, passed or failed; raises only when no verdict can be
    reached (no tarball anywhere, a network failure on every location).
    """
    version, recipe = request.version, request.recipe
    notes = list(request.notes)
    tarball: FetchedFile | None = None
    for filename in recipe.source.filenames_for(version):
        tarball, fetch_notes = fetch_first(checks.locations, version, filename)
        notes += fetch_notes
        if tarball is not None:
            break
    if tarball is None:
        names = ", ".join(recipe.source.filenames_for(version))
        where = "; ".join(location.description for location in checks.locations) or "no location given"
        raise FetchError(f"CPython {version} source not found ({names}) at: {where}")

    evidence = [_check_signature(kind, tarball, request, checks, notes) for kind in request.required_kinds()]

    claims = list(request.user_claims)
    for location in checks.locations:
        claims += location.digest_claims(version, tarball.name)
    for provider in checks.claim_providers:
        claims += provider(version, tarball.name)
    digests = tuple(DigestCheck(claim=claim, agrees=claim.sha256.lower() == tarball.sha256) for claim in claims)

    patchlevel = checks.read_member(tarball.path, "Include/patchlevel.h")
    found = patchlevel_version(patchlevel.decode("utf-8", "replace")) if patchlevel is not None else None
    return SourceVerdict(
        version=str(version),
        recipe_series=recipe.series,
        recipe_sha256=recipe.sha256,
        tarball=tarball,
        signatures=tuple(evidence),
        digests=digests,
        patchlevel_version=found,
        notes=tuple(notes),
    )


def _check_signature(
    kind: SignatureKind, tarball: FetchedFile, request: SourceRequest, checks: SourceChecks, notes: list[str]
) -> SignatureEvidence:
    signature_name = tarball.name + SIGNATURE_SUFFIXES[kind]
    signature, fetch_notes = fetch_first(checks.locations, request.version, signature_name)
    if signature is None:
        notes += fetch_notes
        if kind in request.allow_missing:
            return SignatureEvidence(
                kind=kind,
                status=CheckStatus.NOT_REQUIRED,
                detail=f"{signature_name} not found; allowed to be missing (--allow-missing {kind})",
            )
        return SignatureEvidence(
            kind=kind,
            status=CheckStatus.MISSING,
            detail=f"{signature_name} not found at any location, and CPython {request.version} requires it",
        )
    recipe = request.recipe
    if kind is SignatureKind.OPENPGP:
        if recipe.openpgp is None:
            return SignatureEvidence(
                kind=kind,
                status=CheckStatus.FAILED,
                detail=f"--require openpgp, but CPython {recipe.series} has no OpenPGP signer (PEP 761)",
            )
        return checks.check_openpgp(tarball, signature, recipe.openpgp)
    if recipe.sigstore is None:
        return SignatureEvidence(
            kind=kind, status=CheckStatus.FAILED, detail=f"CPython {recipe.series} has no Sigstore signer"
        )
    return checks.check_sigstore(tarball, signature, recipe.sigstore)
