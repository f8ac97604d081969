"""The in-toto Statement, and its two signed forms.

* **Offline key** (air-gapped packagers): a DSSE envelope
  ``{"payload", "payloadType": "application/vnd.in-toto+json", "signatures": [{"keyid", "sig"}]}``
  signed over DSSE's pre-authentication encoding with an Ed25519 or ECDSA P-256 key (``cryptography``).
  ``keyid`` follows securesystemslib's convention (:func:`key_id`), so its ``Envelope.verify`` finds the
  signature from the public key alone; our own verifier does not trust the field: the signature is checked.
* **Sigstore keyless** (CI): sigstore-python signs the same Statement with a short-lived Fulcio
  certificate for the job's ambient OIDC identity and logs it in Rekor; the result is a Sigstore bundle.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from verify.attest.errors import AttestationError
from verify.attest.inputs import AttestationContent, RebuildInputs, RunIdentity, build_content
from verify.attest.predicate import PREDICATE_TYPE, predicate_to_json
from verify.attest.provenance import PROVENANCE_TYPE
from verify.common import faults
from verify.common.fsutil import write_atomic
from verify.result.directory import ResultDir

PASSPHRASE_VARIABLE: Final = "CPYTHON_VERIFY_KEY_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
"""The environment variable that holds an encrypted offline key's passphrase (never a command-line flag)."""
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
MAX_KEY_BYTES: Final = 64 * 1024

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def build_statement(content: AttestationContent) -> bytes:
    """The in-toto Statement v1 bytes of the rebuild verdict in ``content``."""
    return statement_bytes(content, PREDICATE_TYPE, predicate_to_json(content.predicate))


def build_provenance_statement(content: AttestationContent) -> bytes:
    """The in-toto Statement v1 bytes of the SLSA provenance in ``content`` (the same subjects)."""
    return statement_bytes(content, PROVENANCE_TYPE, content.provenance)


def statement_bytes(content: AttestationContent, predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 over ``content``'s subjects, built and checked by sigstore-python's builder."""
    # Imported here: sigstore pulls in a large dependency tree that `peers`/`releases` never need.
    from sigstore import errors as sigstore_errors
    from sigstore.dsse import DigestSet, StatementBuilder, Subject

    subjects = [Subject(name=item.name, digest=DigestSet({"sha256": item.sha256})) for item in content.subjects]
    try:
        statement = StatementBuilder().subjects(subjects).predicate_type(predicate_type).predicate(predicate).build()
    except sigstore_errors.Error as error:
        raise AttestationError(f"cannot build the in-toto statement: {error}") from None
    # sigstore-python keeps the exact serialized bytes private; its own CLI reads them the same way.
    # These bytes are what gets signed, so take them as they are rather than re-serializing.
    payload: bytes = statement._contents
    return payload


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed (never the JSON envelope)."""
    encoded_type = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(encoded_type), encoded_type, len(payload), payload)


def key_id(public_key: PublicKey) -> str:
    """The key's id as securesystemslib computes it (``SSlibKey.from_crypto``): the sha256 of the
    canonical JSON of ``{"keytype", "scheme", "keyval": {"public"}}``.

    Ed25519 is ``ed25519``/``ed25519`` with the raw public key in hex; P-256 is
    ``ecdsa``/``ecdsa-sha2-nistp256`` with the SubjectPublicKeyInfo PEM.
    """
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        keytype = scheme = "ed25519"
        public = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    else:
        keytype, scheme = "ecdsa", "ecdsa-sha2-nistp256"
        public = public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
    key = {"keytype": keytype, "scheme": scheme, "keyval": {"public": public}}
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()


def canonical_json(value: dict[str, Any] | str) -> str:
    """OLPC canonical JSON (securesystemslib's ``encode_canonical``) of nested objects of strings:
    sorted keys, no whitespace, strings with only backslash and double quote escaped."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "{" + ",".join(f"{canonical_json(key)}:{canonical_json(item)}" for key, item in sorted(value.items())) + "}"


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_KEY_BYTES + 1)
    except OSError as error:
        raise AttestationError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > MAX_KEY_BYTES:
        raise AttestationError(f"{what} {path} is too large to be a key")
    return data


def _check_curve(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, path: Path, what: str) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise AttestationError(f"{what} {path} is ECDSA on {key.curve.name}; only P-256 (secp256r1) is supported")


def load_private_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """Load a PEM (PKCS#8 or SEC1) Ed25519 or ECDSA P-256 private key."""
    data = _read_key_file(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        raise AttestationError(
            f"signing key {path} is encrypted: set {PASSPHRASE_VARIABLE}"
            if passphrase is None
            else f"signing key {path} is not encrypted, but a passphrase was given"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise AttestationError(f"{path} is not a PEM private key (or the passphrase is wrong)") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _check_curve(key, path, "signing key")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise AttestationError(f"signing key {path} is not an Ed25519 or ECDSA P-256 key")


def load_public_key(path: Path) -> PublicKey:
    """Load a PEM SubjectPublicKeyInfo Ed25519 or ECDSA P-256 public key."""
    data = _read_key_file(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise AttestationError(f"{path} is not a PEM public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        _check_curve(key, path, "public key")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise AttestationError(f"public key {path} is not an Ed25519 or ECDSA P-256 key")


def sign_offline(statement: bytes, private_key: PrivateKey) -> bytes:
    """A DSSE envelope (JSON bytes) over ``statement``, signed with ``private_key``."""
    message = pae(PAYLOAD_TYPE, statement)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        signature = private_key.sign(message)
    else:
        signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payload": base64.b64encode(statement).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": key_id(private_key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}],
    }
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


class KeyExists(AttestationError):
    """A new key was to be written where a key already is."""


def generate_private_key(path: Path) -> Path:
    """Write a new Ed25519 private key (PEM, mode 0600) to ``path`` and its public key to ``path.pub``.

    The same as ``openssl genpkey -algorithm ed25519 -out KEY && openssl pkey -in KEY -pubout -out KEY.pub``.
    """
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_path = path.with_name(path.name + ".pub")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        # Written whole under a temporary name, then linked into place: never overwrite a key someone
        # already relies on (the link fails if one exists), and never show a half-written key to a
        # second run making the same key at the same moment.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(private_pem)
            stream.flush()
            os.fsync(stream.fileno())
        os.link(temporary, path)
        write_atomic(public_path, public_pem)
    except FileExistsError:
        raise KeyExists(f"{path} already exists; not overwriting a key") from None
    except OSError as error:
        raise AttestationError(f"cannot write key {path}: {error.strerror or error}") from None
    finally:
        temporary.unlink(missing_ok=True)
    return public_path


def check_signing_key(path: Path, passphrase: bytes | None, *, create: bool) -> None:
    """Refuse, before any work, a signing key that cannot sign: one that is missing (unless ``create``:
    then it is made when the signature is due, :func:`ensure_signing_key`) or unreadable."""
    if path.exists():
        load_private_key(path, passphrase)
    elif not create:
        raise AttestationError(
            f"signing key {path} does not exist; give the key that should sign, or --create-key to make a new one there"
        )


def ensure_signing_key(path: Path, *, create: bool) -> Path | None:
    """With ``create`` and no key at ``path``: a new Ed25519 key there; the new public key's path, else None.

    A signing key is never made unless asked for: a mistyped path would otherwise sign with a key nobody
    trusts, and the attestation would look fine until someone tried to verify it.
    """
    if not create or path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return generate_private_key(path)
    except KeyExists:
        return None  # another run made it first: sign with that one


# --------------------------------------------------------------------------- Sigstore keyless

TokenSource = Callable[[], str | None]


def ambient_token() -> str | None:
    """The CI job's OIDC token (GitHub Actions with ``id-token: write``, GitLab, CircleCI, ...), if any."""
    from sigstore.oidc import IdentityError, detect_credential

    try:
        return detect_credential()
    except IdentityError as error:
        raise AttestationError(f"the CI's OIDC credential could not be obtained: {error}") from None


@dataclass(frozen=True)
class SigstoreSigning:
    """Keyless signing: an OIDC token (explicit, or the ambient CI one) and Sigstore's public services.

    ``trust_config`` returns the client trust configuration (default: production, fetched over TUF);
    tests inject another to stop at the network boundary.
    """

    token: str | None = None
    token_source: TokenSource = ambient_token
    trust_config: Callable[[], Any] | None = None
    sigstore: bool = True

    def identity_token(self) -> Any:
        """The validated :class:`sigstore.oidc.IdentityToken`; raises before any network access."""
        from sigstore.oidc import IdentityError, IdentityToken

        raw = self.token if self.token is not None else self.token_source()
        if raw is None:
            raise AttestationError(
                "no OIDC credential for Sigstore signing: run in CI with 'id-token: write' (GitHub Actions) "
                "or pass --identity-token; offline, sign with --signing-key"
            )
        try:
            return IdentityToken(raw)
        except IdentityError as error:
            raise AttestationError(f"the OIDC token cannot be used for Sigstore: {error}") from None

    def sign(self, statement: bytes) -> bytes:
        """A Sigstore bundle (JSON bytes) holding a DSSE envelope over ``statement``."""
        from sigstore import errors as sigstore_errors
        from sigstore.dsse import Statement
        from sigstore.models import ClientTrustConfig
        from sigstore.sign import SigningContext

        token = self.identity_token()
        try:
            config = self.trust_config() if self.trust_config else ClientTrustConfig.production()
            context = SigningContext.from_trust_config(config)
            with context.signer(token, cache=False) as signer:
                bundle = signer.sign_dsse(Statement(statement))
        except sigstore_errors.Error as error:
            raise AttestationError(f"Sigstore signing failed: {' '.join(str(error).split())[:300]}") from None
        except OSError as error:
            # requests' ConnectionError and timeouts are OSErrors: Fulcio, Rekor or TUF unreachable.
            raise AttestationError(f"Sigstore services unreachable: {' '.join(str(error).split())[:300]}") from None
        return (bundle.to_json() + "\n").encode()


# --------------------------------------------------------------------------- one signing path


@dataclass(frozen=True)
class OfflineKeySigner:
    """Sign with a PEM private key on disk; an encrypted key's passphrase comes from the environment."""

    key_path: Path
    passphrase: bytes | None = None
    sigstore: bool = False

    @classmethod
    def from_environment(cls, key_path: Path) -> OfflineKeySigner:
        """The signer for ``key_path``, with the passphrase from :data:`PASSPHRASE_VARIABLE` if it is set."""
        passphrase = os.environ.get(PASSPHRASE_VARIABLE)
        return cls(key_path, passphrase.encode() if passphrase else None)

    def sign(self, statement: bytes) -> bytes:
        """A DSSE envelope over ``statement``."""
        return sign_offline(statement, load_private_key(self.key_path, self.passphrase))


@dataclass(frozen=True)
class SignedAttestation:
    """The two attestations written to disk (the verdict and the SLSA provenance), and what they say."""

    path: Path
    """The rebuild verdict."""
    content: AttestationContent
    provenance_path: Path
    """The SLSA Provenance v1, beside the verdict (:func:`provenance_path_for`)."""


def provenance_path_for(verdict_path: Path) -> Path:
    """Where the SLSA provenance goes beside a verdict: ``NAME.intoto.json`` -> ``NAME.provenance.intoto.json``
    (likewise ``.sigstore.json``); any other ``NAME.EXT`` -> ``NAME.provenance.EXT``."""
    for suffix in (".intoto.json", ".sigstore.json"):
        if verdict_path.name.endswith(suffix):
            return verdict_path.with_name(verdict_path.name[: -len(suffix)] + ".provenance" + suffix)
    return verdict_path.with_name(f"{verdict_path.stem}.provenance{verdict_path.suffix}")


def sign_result(
    inputs: RebuildInputs,
    signer: OfflineKeySigner | SigstoreSigning,
    *,
    rebuilder_id: str,
    out: Path,
    run: RunIdentity | None = None,
) -> SignedAttestation:
    """Build a rebuild result's two Statements from its files as read (``inputs``), sign them and write them
    (0644): the verdict to ``out``, the SLSA provenance beside it (:func:`provenance_path_for`).

    The one signing sequence: ``attest`` and ``check`` both call it, so they cannot drift apart.
    """
    content = build_content(inputs, rebuilder_id=rebuilder_id, run=run)
    verdict = signer.sign(build_statement(content))
    provenance = signer.sign(build_provenance_statement(content))
    out.parent.mkdir(parents=True, exist_ok=True)
    provenance_path = provenance_path_for(out)
    write_atomic(provenance_path, provenance)
    faults.reached("attest")
    write_atomic(out, verdict)
    return SignedAttestation(out, content, provenance_path)


@dataclass(frozen=True)
class AttestationOutcome:
    """The attestation ``check`` signed, or why it signed none."""

    signed: SignedAttestation | None
    why_not: str | None = None
    new_public_key: Path | None = None


def attest_published(
    result: ResultDir,
    signer: OfflineKeySigner | SigstoreSigning | None,
    *,
    rebuilder_id: str,
    create_key: bool = False,
) -> AttestationOutcome:
    """``check``'s attestation of the result it published: signed by ``signer`` (none: say why not) and
    written into the result directory, the result read back from disk (:func:`sign_result`).

    ``create_key``: an offline key file that does not exist is made first (a new Ed25519 key)."""
    if signer is None:
        return AttestationOutcome(None, "no --signing-key or --sigstore given: the result is not attested")
    new_public_key = None
    if isinstance(signer, OfflineKeySigner) and create_key and not signer.key_path.exists():
        signer.key_path.parent.mkdir(parents=True, exist_ok=True)
        # Another run (a second check beside this one) may make it first: then sign with that key.
        with contextlib.suppress(KeyExists):
            new_public_key = generate_private_key(signer.key_path)
    signed = sign_result(
        RebuildInputs.from_result_dir(result.path),
        signer,
        rebuilder_id=rebuilder_id,
        out=result.attestation_path(sigstore=signer.sigstore),
    )
    return AttestationOutcome(signed, None, new_public_key)
