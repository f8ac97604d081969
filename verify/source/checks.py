"""The source stage: fetch the tarball and its signatures, verify them, cross-check digests, check
``Include/patchlevel.h``, and return one :class:`verify.source.models.SourceVerdict`.

The order of the whole chain (source -> rebuild -> compare -> attest) lives in :mod:`verify.chain`;
this module is its first link. Every I/O edge (where bytes come from, how signatures are checked,
how a tarball is read) is passed in, so the rules can be tested with real components swapped for
other real ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from verify.common.errors import FetchError, UnsafeArchive
from verify.source.locations.interface import SourceLocation
from verify.source.models import (
    DigestCheck,
    DigestClaim,
    FetchedFile,
    SignatureEvidence,
    SignatureKind,
    SourceVerdict,
)
from verify.source.recipes import OpenPGPPolicy, Recipe, SigstorePolicy
from verify.source.releases import Version, patchlevel_version
from verify.source.signatures.policy import SignaturePolicy

SIGNATURE_SUFFIXES = {kind: kind.file_suffix for kind in SignatureKind}
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
    """What the user asked to verify: which release, under which recipe and signature policy, by which file
    names, and with which digests to hold it to."""

    version: Version
    recipe: Recipe
    policy: SignaturePolicy
    filenames: tuple[str, ...]
    """The tarball's names for ``version``, most preferred first (the recipe's ``[source] filenames``)."""
    user_claims: tuple[DigestClaim, ...] = ()


@dataclass(frozen=True)
class FetchOutcome:
    """What one search for a file found, where, and what went wrong on the way."""

    fetched: FetchedFile | None
    location: SourceLocation | None
    """The location that had the file (None when none did)."""
    notes: list[str]
    error: FetchError | None
    """The last operational failure met on the way (a network location that was down)."""


def search_locations(locations: Sequence[SourceLocation], version: Version, filenames: Sequence[str]) -> FetchOutcome:
    """Look for any of ``filenames`` (in order of preference): every local location first, then the network.

    A local copy of a less preferred name (a ``.tgz`` in ``--from``) beats a network copy of the
    preferred one: no network location is contacted while a local one has any of the names. A
    location that fails operationally is noted and the next one tried.
    """
    notes: list[str] = []
    last_error: FetchError | None = None
    local = [location for location in locations if location.is_local]
    remote = [location for location in locations if not location.is_local]
    for group in (local, remote):
        for filename in filenames:
            for location in group:
                try:
                    fetched = location.fetch(version, filename)
                except FetchError as error:
                    notes.append(f"{filename}: {location.description}: {error.message}")
                    if last_error is None or not last_error.local:
                        last_error = error  # a local file that cannot be read stays the error to report
                    continue
                if fetched is not None:
                    return FetchOutcome(fetched, location, notes, last_error)
                notes.append(f"{filename}: not at {location.description}")
    return FetchOutcome(None, None, notes, last_error)


def fetch_first(
    locations: Sequence[SourceLocation], version: Version, filename: str | Sequence[str]
) -> tuple[FetchedFile | None, list[str]]:
    """Fetch ``filename`` (or the first of several names) from the first location that has it.

    Local locations are tried before network ones (:func:`search_locations`); notes say where it was
    not found. A location that fails operationally is noted and the next one tried: one broken mirror
    must not hide a good one. If no location had the file and one failed, the last error is raised.
    """
    names = (filename,) if isinstance(filename, str) else tuple(filename)
    outcome = search_locations(locations, version, names)
    if outcome.fetched is None and outcome.error is not None:
        raise outcome.error
    return outcome.fetched, outcome.notes


def _with_offline_hint(error: FetchError) -> FetchError:
    """``error`` (no location had the file, a network one failed) with the options that verify without the
    network; a local file's failure (permission denied) is returned as it is: its fix is the file's."""
    if error.local:
        return error
    return FetchError(
        f"{error.message}; to verify without the network, put the release files (the tarball and its .asc "
        "and .sigstore) in a directory and give --from DIR --offline"
    )


def verify_source(request: SourceRequest, checks: SourceChecks) -> SourceVerdict:
    """Fetch a release's tarball and signatures and establish what can be proven about them.

    Returns a verdict that lists every check, passed or failed; raises only when no verdict can be
    reached (no tarball anywhere, a network failure on every location).
    """
    version, recipe = request.version, request.recipe
    search = search_locations(checks.locations, version, request.filenames)
    notes = list(search.notes)
    tarball = search.fetched
    if tarball is None and search.error is not None:
        raise _with_offline_hint(search.error)
    if tarball is None:
        names = ", ".join(request.filenames)
        where = "; ".join(location.description for location in checks.locations) or "no location given"
        raise FetchError(
            f"CPython {version} source not found ({names}) at: {where}; give a directory that holds it with --from DIR"
        )

    # With the tarball on local disk, a network location that is down is a note beside a missing
    # signature (the policy then decides), never an error that throws the local tarball away.
    local_tarball = search.location is not None and search.location.is_local
    # The checks are independent and each waits on something different (gpg runs as a subprocess,
    # xz decompression releases the GIL, Sigstore runs in a worker process), so they run side by side.
    # The archive read is the longest: it starts as soon as the tarball is there, before the signatures
    # are fetched.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="source-check") as pool:
        patchlevel_job = pool.submit(_read_patchlevel, checks, tarball)
        signatures = _fetch_signatures(tarball, request, checks, notes, tolerate_network=local_tarball)
        evidence_jobs = [pool.submit(check) for check in _signature_checks(tarball, signatures, request, checks)]
        evidence = [job.result() for job in evidence_jobs]
        found, archive_problem = patchlevel_job.result()

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

    return SourceVerdict(
        version=version,
        recipe_series=recipe.series,
        recipe_sha256=recipe.sha256,
        tarball=tarball,
        signatures=tuple(evidence),
        digests=digests,
        patchlevel_version=found,
        notes=tuple(notes),
        archive_problem=archive_problem,
        allowed_missing=tuple(kind for kind in SignatureKind if kind in request.policy.allow_missing),
    )


def _read_patchlevel(checks: SourceChecks, tarball: FetchedFile) -> tuple[str | None, str | None]:
    """``PY_VERSION`` from the tarball's ``Include/patchlevel.h``, or why the archive could not be read."""
    try:
        patchlevel = checks.read_member(tarball.path, "Include/patchlevel.h")
    except UnsafeArchive as problem:
        # A truncated or hostile archive is evidence against the source, reported beside the signature
        # results (which say the same thing in their own words), not instead of them.
        return None, problem.message
    if patchlevel is None:
        return None, None
    return patchlevel_version(patchlevel.decode("utf-8", "replace")), None


def _fetch_signatures(
    tarball: FetchedFile, request: SourceRequest, checks: SourceChecks, notes: list[str], *, tolerate_network: bool
) -> dict[SignatureKind, FetchedFile]:
    """Fetch the signature files of every kind the policy requires or the recipe names a signer for.

    ``tolerate_network``: a location that fails is a note and the signature counts as absent;
    otherwise, when no location had it and one failed, that failure is raised.
    """
    policy = request.policy
    found: dict[SignatureKind, FetchedFile] = {}
    for kind in SignatureKind:
        if kind not in policy.required and kind not in policy.signers:
            continue
        outcome = search_locations(checks.locations, request.version, (tarball.name + SIGNATURE_SUFFIXES[kind],))
        if outcome.fetched is None and outcome.error is not None and (outcome.error.local or not tolerate_network):
            # A file that is there but cannot be read (permission denied) is not a missing signature.
            raise outcome.error
        if outcome.fetched is None:
            notes += outcome.notes
        else:
            found[kind] = outcome.fetched
    return found


def _signature_checks(
    tarball: FetchedFile, found: dict[SignatureKind, FetchedFile], request: SourceRequest, checks: SourceChecks
) -> list[Callable[[], SignatureEvidence]]:
    """One callable per signature decision, in the policy's order, each producing its evidence.

    A signature that is present is checked even when not required: a bad one is a finding.
    """
    recipe = request.recipe
    jobs: list[Callable[[], SignatureEvidence]] = []
    for decision in request.policy.decide(found):
        stands_for = decision.evidence()
        if stands_for is not None:
            jobs.append(functools.partial(_given, stands_for))
        elif decision.kind is SignatureKind.OPENPGP and recipe.openpgp is not None:
            jobs.append(functools.partial(checks.check_openpgp, tarball, found[decision.kind], recipe.openpgp))
        elif decision.kind is SignatureKind.SIGSTORE and recipe.sigstore is not None:
            jobs.append(functools.partial(checks.check_sigstore, tarball, found[decision.kind], recipe.sigstore))
    return jobs


def _given(evidence: SignatureEvidence) -> SignatureEvidence:
    return evidence
