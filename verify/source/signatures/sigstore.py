"""Sigstore verification of a release tarball against the series' identity and OIDC issuer.

sigstore-python does the cryptography (certificate chain to the Fulcio root, SCT, transparency-log
inclusion, signature over the file's sha256); this module only chooses the policy (an
``Identity(identity=..., issuer=...)``), the trust root (the embedded production root offline by
default, a TUF refresh when asked) and turns every outcome into :class:`SignatureEvidence`.

The artifact can be the file itself or its sha256 in hex: sigstore signs the digest, so a release
whose tarball is not at hand can be checked against a digest from independent sources.

sigstore is imported lazily: its import costs about half a second, which commands that never check a
Sigstore bundle should not pay. The source stage runs this check in a worker process
(:mod:`verify.source.signatures.sigstore_worker`) started early, so the import and the trust root load
run on another core while the tarball is fetched, hashed and read and the OpenPGP signature is checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from verify.common.errors import OperationalError
from verify.common.fsutil import sha256_file
from verify.common.jsonutil import loads_bounded
from verify.common.limits import SIGSTORE_MAX_BUNDLE_BYTES
from verify.source.models import CheckStatus, SignatureEvidence, SignatureKind
from verify.source.recipes import SigstorePolicy

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.hashes import Hashed
    from sigstore.verify import Verifier

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DETAIL_LIMIT = 240
# Fulcio's certificate extension for the OIDC issuer (v1: raw UTF-8 bytes).
_OIDC_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"
# The last second datetime can hold (9999-12-31T23:59:59Z): later integratedTime values cannot be shown.
_LAST_TIMESTAMP: Final = 253402300799

MALFORMED_BUNDLE_ERRORS: Final = (ValueError, OverflowError, OSError)
"""What sigstore-python and cryptography raise, besides VerificationError, for a bundle that parses but holds
nonsense: cryptography parses certificate extensions lazily and raises ValueError for a corrupt SAN, and
sigstore-python 4.x turns ``integratedTime`` into a datetime unchecked (ValueError "year is out of range"
far in the future; OverflowError or OSError EOVERFLOW for the int64 maximum). A verifier that is already
loaded does no I/O while verifying, so an OSError here comes from that conversion, not from a disk."""


class SigstoreTrustRootError(OperationalError):
    """The Sigstore trust root could not be loaded or refreshed."""


def load_verifier(*, offline: bool = True) -> Verifier:
    """sigstore-python's production verifier: the embedded or cached trust root offline, a TUF refresh
    otherwise. Raises :class:`SigstoreTrustRootError` when the trust root cannot be loaded."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.verify import Verifier

    try:
        return Verifier.production(offline=offline)
    except SigstoreError as error:
        mode = "embedded/cached" if offline else "refreshed"
        raise SigstoreTrustRootError(f"cannot load the {mode} Sigstore trust root: {error}") from None


def verify_sigstore(
    artifact: Path | str,
    bundle: bytes,
    policy: SigstorePolicy,
    *,
    offline: bool = True,
    bundle_origin: str | None = None,
    verifier: Callable[[], Verifier] | None = None,
) -> SignatureEvidence:
    """Check a Sigstore ``bundle`` over ``artifact`` (a file, or its sha256 as 64 hex digits).

    The certificate must name ``policy.identity`` and have been issued after login at
    ``policy.issuer``. Offline (the default) uses the trust root sigstore-python ships or last
    cached; ``offline=False`` refreshes it from Sigstore's TUF repository first. Returns VERIFIED
    evidence with the identity, issuer and the transparency log's integration time, or FAILED
    evidence with a one-line reason. Raises only when the trust root cannot be loaded.

    ``verifier`` supplies the loaded verifier (the worker process's, loaded before its request came); by
    default it is loaded here, for ``offline``.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError
    from sigstore.models import Bundle
    from sigstore.verify.policy import Identity

    def evidence(status: CheckStatus, detail: str, **found: Any) -> SignatureEvidence:
        return SignatureEvidence(
            kind=SignatureKind.SIGSTORE,
            status=status,
            detail=_one_line(detail),
            signature_origin=bundle_origin,
            **found,
        )

    digest = _artifact_digest(artifact)
    if len(bundle) > SIGSTORE_MAX_BUNDLE_BYTES:
        over = f"{len(bundle)} bytes, over {SIGSTORE_MAX_BUNDLE_BYTES >> 10} KiB"
        return evidence(CheckStatus.FAILED, f"not a Sigstore bundle: {over}")
    try:
        parsed = Bundle.from_json(bundle)
    except (SigstoreError, *MALFORMED_BUNDLE_ERRORS) as error:
        return evidence(CheckStatus.FAILED, f"not a Sigstore bundle: {error}")

    loaded = verifier() if verifier is not None else load_verifier(offline=offline)

    signed_at = _integrated_time(bundle)
    actual_identity, actual_issuer = _certificate_identity(parsed.signing_certificate)
    try:
        loaded.verify_artifact(digest, parsed, Identity(identity=policy.identity, issuer=policy.issuer))
    except VerificationError as error:
        return evidence(
            CheckStatus.FAILED,
            _explain(str(error), policy, actual_identity, actual_issuer, digest.digest.hex()),
            signer=actual_identity,
            signer_name=actual_issuer,
            signed_at=signed_at,
        )
    except MALFORMED_BUNDLE_ERRORS as error:
        return evidence(
            CheckStatus.FAILED,
            f"Sigstore verification failed: the bundle is malformed ({type(error).__name__}: {error})",
            signer=actual_identity,
            signer_name=actual_issuer,
            signed_at=signed_at,
        )
    when = f", logged {signed_at:%Y-%m-%d %H:%M:%S} UTC" if signed_at else ""
    return evidence(
        CheckStatus.VERIFIED,
        f"signed by {policy.identity} (issuer {policy.issuer}){when}",
        signer=policy.identity,
        signer_name=policy.issuer,
        signed_at=signed_at,
    )


def _artifact_digest(artifact: Path | str) -> Hashed:
    """sigstore's prehashed input: the file's streamed sha256, or the given hex digest."""
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    if isinstance(artifact, Path):
        try:
            raw = bytes.fromhex(sha256_file(artifact))
        except OSError as error:
            raise OperationalError(f"cannot read {artifact}: {error.strerror}") from None
    elif _SHA256_HEX.match(artifact):
        raw = bytes.fromhex(artifact)
    else:
        raise ValueError(f"artifact must be a Path or a sha256 of 64 hex digits, not {artifact!r}")
    return Hashed(algorithm=HashAlgorithm.SHA2_256, digest=raw)


def _explain(reason: str, policy: SigstorePolicy, identity: str | None, issuer: str | None, digest: str) -> str:
    """A reader's version of sigstore's VerificationError message."""
    if identity is not None and identity != policy.identity:
        return f"signed by {identity} (issuer {issuer}), not by {policy.identity}"
    if issuer is not None and issuer != policy.issuer:
        return f"signed by {identity} via issuer {issuer}, not {policy.issuer}"
    if reason in ("Bundle message digest mismatch", "Signature is invalid for input"):
        return f"the bundle is not for this file (sha256 {digest}): {reason}"
    return f"Sigstore verification failed: {reason}"


def _certificate_identity(certificate: Certificate) -> tuple[str | None, str | None]:
    """The signing certificate's identity (first email or URI SAN) and OIDC issuer, for messages."""
    from cryptography import x509

    identity: str | None = None
    issuer: str | None = None
    # ValueError: cryptography parses extensions on first use, and a corrupt one fails there; the names are
    # only for messages, and the verification that follows refuses such a certificate on its own.
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*sans.get_values_for_type(x509.RFC822Name), *sans.get_values_for_type(x509.UniformResourceIdentifier)]
        identity = names[0] if names else None
    except (x509.ExtensionNotFound, ValueError):
        pass
    try:
        extension = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(_OIDC_ISSUER_V1))
        value = extension.value
        if isinstance(value, x509.UnrecognizedExtension):
            issuer = value.value.decode("utf-8", "replace")
    except (x509.ExtensionNotFound, ValueError):
        pass
    return identity, issuer


def _integrated_time(bundle: bytes) -> datetime | None:
    """When the transparency log integrated the entry (the bundle format's ``integratedTime``)."""
    try:
        document = loads_bounded(bundle)
        entries = document["verificationMaterial"]["tlogEntries"]
        seconds = int(entries[0]["integratedTime"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    # Out of datetime's range (the int64 maximum made fromtimestamp raise OSError EOVERFLOW): not a time.
    if not 0 <= seconds <= _LAST_TIMESTAMP:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LIMIT else line[: _DETAIL_LIMIT - 1] + "…"
