"""The stages wired together; the only module that knows their order.

Every I/O edge (where bytes come from, how signatures are checked, how a tarball is read) is passed
in, so the order and the rules can be tested with real components swapped for other real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from verify.errors import FetchError, UnsafeArchive
from verify.models import (
    DigestCheck,
    DigestClaim,
    FetchedFile,
    SignatureEvidence,
    SignatureKind,
    SourceVerdict,
)
from verify.recipes import OpenPGPPolicy, Recipe, SigstorePolicy
from verify.releases import Version, patchlevel_version
from verify.signatures.policy import SignaturePolicy
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
    """What the user asked to verify, under which signature policy, with which digests to hold it to."""

    version: Version
    recipe: Recipe
    policy: SignaturePolicy
    user_claims: tuple[DigestClaim, ...] = ()


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
    notes: list[str] = []
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

    evidence = _check_signatures(tarball, request, checks, notes)

    claims = list(request.user_claims)
    for location in checks.locations:
        claims += location.digest_claims(version, tarball.name)
    for provider in checks.claim_providers:
        claims += provider(version, tarball.name)
    digests = tuple(DigestCheck(claim=claim, agrees=claim.sha256.lower() == tarball.sha256) for claim in claims)
    for edge in (*checks.locations, *checks.claim_providers):
        # Locations and claim providers that consult remote indexes keep what they could not consult
        # as notes: unreachable is not an error, but the report must say what was not checked.
        notes += getattr(edge, "notes", [])

    archive_problem = None
    try:
        patchlevel = checks.read_member(tarball.path, "Include/patchlevel.h")
    except UnsafeArchive as problem:
        # A truncated or hostile archive is evidence against the source, reported beside the signature
        # results (which say the same thing in their own words), not instead of them.
        patchlevel, archive_problem = None, problem.message
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
        archive_problem=archive_problem,
    )


def _check_signatures(
    tarball: FetchedFile, request: SourceRequest, checks: SourceChecks, notes: list[str]
) -> list[SignatureEvidence]:
    """Fetch the signature files the policy cares about, then check each one the policy says to.

    A signature that is present is checked even when not required: a bad one is a finding.
    """
    policy, recipe = request.policy, request.recipe
    candidates = [kind for kind in SignatureKind if kind in policy.required or kind in policy.signers]
    found: dict[SignatureKind, FetchedFile] = {}
    for kind in candidates:
        signature, fetch_notes = fetch_first(checks.locations, request.version, tarball.name + SIGNATURE_SUFFIXES[kind])
        if signature is None:
            notes += fetch_notes
        else:
            found[kind] = signature
    evidence = []
    for decision in policy.decide(found):
        stands_for = decision.evidence()
        if stands_for is not None:
            evidence.append(stands_for)
        elif decision.kind is SignatureKind.OPENPGP and recipe.openpgp is not None:
            evidence.append(checks.check_openpgp(tarball, found[decision.kind], recipe.openpgp))
        elif decision.kind is SignatureKind.SIGSTORE and recipe.sigstore is not None:
            evidence.append(checks.check_sigstore(tarball, found[decision.kind], recipe.sigstore))
    return evidence
