"""The composition root: turn user options into the concrete I/O edges the pipeline is given.

Commands (``source``, ``rebuild``, ``audit``, ``check``) share this so that every stage that needs a
verified source obtains it the same way, with the same policy.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verify.common import faults
from verify.common.errors import OperationalError, VerificationFailed
from verify.common.fsutil import sha256_file
from verify.source.checks import PATCHLEVEL_MAX_BYTES, ClaimProvider, SourceChecks, SourceRequest, verify_source
from verify.source.models import CheckStatus, DigestClaim, FetchedFile, SignatureEvidence, SourceVerdict
from verify.source.recipes import OpenPGPPolicy, Recipe, SigstorePolicy
from verify.source.releases import Version
from verify.source.signatures.policy import SignaturePolicy

if TYPE_CHECKING:
    from verify.source.locations.cache import Cache
    from verify.source.signatures.sigstore_worker import SigstoreWorker

_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Where source bytes and trust come from: the values of the options ``verify.commands.options.source_options``
    declares, one field each."""

    from_dirs: tuple[Path, ...] = ()
    mirrors: tuple[str, ...] = ()
    debian: bool = False
    offline: bool = False
    sha256_claims: tuple[str, ...] = ()
    release_metadata: tuple[str, ...] = ()
    key_dirs: tuple[Path, ...] = ()
    require: tuple[str, ...] = ()
    allow_missing: tuple[str, ...] = ()
    sigstore_online: bool = False
    cache_dir: Path | None = None
    recipes_dir: Path | None = None


def parse_digest_claims(values: Sequence[str]) -> tuple[DigestClaim, ...]:
    """``--sha256 [LABEL=]HEX`` values as claims; a malformed value is an operational error."""
    claims = []
    for value in values:
        label, _, digest = value.rpartition("=")
        if not _SHA256_RE.match(digest):
            raise OperationalError(f"--sha256 {value!r}: expected [LABEL=]<64 hex digits>")
        source = f"{label} (--sha256)" if label else "--sha256 given by the user"
        claims.append(DigestClaim(source=source, sha256=digest.lower()))
    return tuple(claims)


def source_request(version: Version, options: SourceOptions, recipe: Recipe) -> SourceRequest:
    """The verification request for ``version`` under ``options``, judged by ``recipe``: the series' recipe,
    loaded once by whoever starts the chain (:func:`verify.source.recipes.load_recipe`) and handed down."""
    filenames = recipe.source.filenames_for(version)
    policy = SignaturePolicy.for_release(recipe, version, require=options.require, allow_missing=options.allow_missing)
    return SourceRequest(
        version=version,
        recipe=recipe,
        policy=policy,
        filenames=filenames,
        user_claims=parse_digest_claims(options.sha256_claims),
    )


def source_checks(
    recipe: Recipe,
    options: SourceOptions,
    cache: Cache,
    verified_signatures: list[FetchedFile] | None = None,
    sigstore_worker: SigstoreWorker | None = None,
) -> SourceChecks:
    """The concrete locations, signature checkers and digest-claim providers for ``options``.

    Files are fetched into ``cache``'s quarantine (the run's one cache: :meth:`Cache.at` of
    ``options.cache_dir`` for a command); each signature file whose check verified is appended to
    ``verified_signatures``, for the caller to admit. Sigstore bundles are checked by ``sigstore_worker``
    (default: a worker process started when a bundle is there to check; the caller that passes one
    closes it).
    """
    # Imported here: the CLI imports this module for every source-using command, and the HTTP and
    # signature stacks are only needed once a verification actually runs.
    from verify.source.signatures.sigstore_worker import SigstoreWorker

    if options.offline and (options.mirrors or options.debian):
        raise OperationalError("--offline uses only --from directories; drop --mirror/--debian or --offline")
    worker = sigstore_worker or SigstoreWorker(offline=not options.sigstore_online, preload=False)

    from verify.source.locations.http import HttpClient, HttpSettings
    from verify.source.locations.metadata import PythonOrgReleaseAPI, ReleaseMetadataFiles
    from verify.source.locations.select import build_locations
    from verify.source.signatures.gpg import verify_openpgp
    from verify.source.unpack import read_member

    vouched = verified_signatures if verified_signatures is not None else []
    client = HttpClient(HttpSettings())
    locations = build_locations(
        recipe,
        from_dirs=options.from_dirs,
        mirrors=options.mirrors,
        debian=options.debian,
        upstream=not options.offline,
        cache=cache,
        client=client,
    )
    providers: list[ClaimProvider] = []
    if options.release_metadata:
        providers.append(ReleaseMetadataFiles(options.release_metadata, client=client))
    if not options.offline:
        # python.org's own record of the digest, when reachable; unreachable is a note. Few retries:
        # an offline machine should not wait half a minute for it.
        providers.append(PythonOrgReleaseAPI(client=HttpClient(HttpSettings(attempts=2))))

    def check_openpgp(tarball: FetchedFile, signature: FetchedFile, policy: OpenPGPPolicy) -> SignatureEvidence:
        evidence = verify_openpgp(
            tarball.path,
            signature.path.read_bytes(),
            policy,
            extra_key_dirs=options.key_dirs,
            signature_origin=signature.origin,
        )
        return _noting_verified(evidence, signature, vouched)

    def check_sigstore(tarball: FetchedFile, bundle: FetchedFile, policy: SigstorePolicy) -> SignatureEvidence:
        evidence = worker.check(
            # The digest taken while the tarball was copied into the cache: the bytes gpg and every later
            # stage read are exactly these (hashing them again would only cost time).
            tarball.sha256,
            bundle.path.read_bytes(),
            policy,
            bundle_origin=bundle.origin,
        )
        return _noting_verified(evidence, bundle, vouched)

    return SourceChecks(
        locations=locations,
        check_openpgp=check_openpgp,
        check_sigstore=check_sigstore,
        read_member=functools.partial(read_member, max_bytes=PATCHLEVEL_MAX_BYTES),
        claim_providers=providers,
    )


def _noting_verified(
    evidence: SignatureEvidence, signature: FetchedFile, vouched: list[FetchedFile]
) -> SignatureEvidence:
    """``evidence``, after noting ``signature`` in ``vouched`` when it verified."""
    if evidence.status is CheckStatus.VERIFIED:
        vouched.append(signature)
    return evidence


def verify_release_source(version: Version, options: SourceOptions, *, recipe: Recipe) -> SourceVerdict:
    """Fetch and verify the source of ``version``: the ``source`` stage, fully assembled (``recipe``: as for
    :func:`source_request`).

    Files are fetched into the cache's quarantine. Only a verified verdict admits its tarball and
    the signature files that verified into the cache (the returned verdict names their cached
    paths); anything else fetched is deleted when this returns or raises, Ctrl-C included.
    """
    from verify.common import progress
    from verify.source.locations.cache import Cache
    from verify.source.signatures.sigstore_worker import SigstoreWorker

    request = source_request(version, options, recipe)
    cache = Cache.at(options.cache_dir)
    verified_signatures: list[FetchedFile] = []
    # sigstore-python's import and trust root take most of a verification's CPU time: with the embedded
    # trust root (no network) a worker process loads them from now on, on another core, while this one
    # fetches, hashes, runs gpg and reads the archive. A refreshed trust root is only fetched (by a worker
    # started then) once a bundle is there to check.
    preload = not options.sigstore_online and request.recipe.sigstore is not None
    with SigstoreWorker(offline=not options.sigstore_online, preload=preload) as worker, cache.quarantine():
        with progress.phase(f"CPython {version} source: fetching, checking signatures and digests"):
            checks = source_checks(request.recipe, options, cache, verified_signatures, sigstore_worker=worker)
            verdict = verify_source(request, checks)
        faults.reached("verify")
        if not verdict.verified:
            return verdict
        for signature in verified_signatures:
            cache.remember_name(cache.admit(signature))
        tarball = cache.admit(verdict.tarball)
        cache.remember_name(tarball)
        return dataclasses.replace(verdict, tarball=tarball)


def require_verified(verdict: SourceVerdict) -> FetchedFile:
    """The verified tarball; raise :class:`VerificationFailed` with the first reason otherwise."""
    if not verdict.verified:
        reasons = "; ".join(verdict.failures())
        raise VerificationFailed(f"CPython {verdict.version} source is not verified: {reasons}")
    return verdict.tarball


def verified_source_tree(
    version: Version,
    options: SourceOptions,
    work_dir: Path,
    *,
    recipe: Recipe,
    parts: tuple[str, ...] | None = None,
) -> tuple[SourceVerdict, Path]:
    """Verify ``version``'s source, then unpack exactly the verified bytes under ``work_dir``.

    ``parts`` (path prefixes inside the tree) limits what is written, for a caller that reads only those.

    The tarball is hashed again just before unpacking, so a cache entry changed after verification
    is refused rather than unpacked. Returns the verdict and the unpacked top-level directory.
    """
    from verify.source.unpack import safe_unpack

    verdict = verify_release_source(version, options, recipe=recipe)
    tarball = require_verified(verdict)
    recheck_digest(tarball)
    return verdict, safe_unpack(tarball.path, work_dir, parts=parts)


def recheck_digest(tarball: FetchedFile) -> None:
    """Raise :class:`VerificationFailed` unless the file at ``tarball.path`` still has the verified digest."""
    digest = sha256_file(tarball.path)
    if digest != tarball.sha256:
        raise VerificationFailed(
            f"{tarball.path} changed after it was verified (sha256 {digest}, verified {tarball.sha256}); refusing it"
        )
