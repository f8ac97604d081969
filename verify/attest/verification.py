"""Verify an attestation: signature first, then the Statement, the predicate schema, the subjects, the tree.

Two predicates are read: this project's rebuild verdict and SLSA Provenance v1 with this project's
build type (both signed by ``attest``, with the same subjects). The retired predicate type of earlier
versions is refused with one line (exit 2) that says to re-attest.

Order matters. Nothing in the payload is looked at before a trusted signature covers it, so a
tampered predicate fails as "bad signature" and never reaches the parser. Exit codes: a readable
attestation that says no (bad or untrusted signature, subject digest mismatch, a signed predicate
that breaks the schema) is :class:`AttestationRejected` (1); one that cannot be judged at all
(unreadable, oversized, nested too deep, an unknown predicate version) is :class:`AttestationError` (2).

Against a rebuild result directory, every output subject must be present with its attested bytes,
and the whole install tree must be the attested manifest: a deleted, changed or added path fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from verify.attest.errors import AttestationError, AttestationRejected
from verify.attest.inputs import MANIFEST_SUBJECT, AttestedSubject, load_manifest, sha256_file, tree_digest
from verify.attest.predicate import PREDICATE_TYPE, RETIRED_PREDICATE_TYPES, RebuildVerdict, parse_predicate
from verify.attest.provenance import (
    INSTALL_TREE_SUBJECT,
    MANIFEST_BYPRODUCT,
    PROVENANCE_TYPE,
    RECORD_BYPRODUCT,
    Provenance,
    parse_provenance,
)
from verify.attest.signing import PAYLOAD_TYPE, STATEMENT_TYPE, PublicKey, key_id, pae, provenance_path_for
from verify.common.errors import VerifyError
from verify.common.fsutil import read_regular_file
from verify.common.jsonutil import JsonLimitError, loads_bounded
from verify.common.limits import JSON_MAX_DEPTH
from verify.compare import model as compare_model
from verify.compare.engine import diff_manifests
from verify.manifest import Manifest, check_relative_path, scan_tree
from verify.source import names

MAX_ATTESTATION_BYTES: Final = 16 << 20
"""A rebuild attestation is a few kilobytes (tens with many differences); larger files are refused unread."""
MAX_SIGNATURES: Final = 16
MAX_SUBJECTS: Final = 1024
_PREDICATE_FAMILY: Final = PREDICATE_TYPE.rsplit("/", 1)[0] + "/"
RESULT_ROOT: Final = "root"
"""The install tree's directory inside a rebuild result directory (what ``manifest.json`` describes)."""


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """A payload whose signature verified, and who signed it."""

    payload_type: str
    payload: bytes
    signer: str
    """``key:<sha256 of the public key>`` or ``<identity> (<issuer>)``."""


class TrustPolicy(ABC):
    """Who may sign: decides whether a document's signature is one we trust, and returns what it covers."""

    @abstractmethod
    def open(self, document: dict[str, Any], raw: bytes, where: str) -> SignedPayload:
        """Return the signed payload, or raise :class:`AttestationRejected` / :class:`AttestationError`."""

    @abstractmethod
    def describe(self) -> str:
        """One line for reports: which keys or identities are trusted."""


def _b64decode(text: Any, what: str, where: str) -> bytes:
    if not isinstance(text, str):
        raise AttestationError(f"{where}: {what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        # DSSE allows either alphabet; a string valid in neither is malformed.
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise AttestationError(f"{where}: {what} is not valid base64") from None


@dataclass(frozen=True)
class TrustedKeys(TrustPolicy):
    """Offline keys: a DSSE envelope is trusted when one of its signatures verifies with one of ``keys``."""

    keys: tuple[PublicKey, ...]

    def describe(self) -> str:
        """The key ids."""
        return ", ".join(f"key:{key_id(key)}" for key in self.keys)

    def open(self, document: dict[str, Any], raw: bytes, where: str) -> SignedPayload:
        """Check the envelope's signatures over DSSE's PAE encoding."""
        if "mediaType" in document:
            raise AttestationError(f"{where} is a Sigstore bundle: verify it with --identity and --issuer")
        unknown = set(document) - {"payload", "payloadType", "signatures"}
        if unknown:
            raise AttestationError(f"{where}: not a DSSE envelope (unknown keys: {', '.join(sorted(unknown))})")
        payload_type = document.get("payloadType")
        if not isinstance(payload_type, str):
            raise AttestationError(f"{where}: DSSE envelope without a payloadType")
        payload = _b64decode(document.get("payload"), "payload", where)
        signatures = document.get("signatures")
        if not isinstance(signatures, list) or not signatures:
            raise AttestationRejected(f"{where}: the envelope carries no signature")
        if len(signatures) > MAX_SIGNATURES:
            raise AttestationError(f"{where}: more than {MAX_SIGNATURES} signatures")
        message = pae(payload_type, payload)
        for entry in signatures:
            if not isinstance(entry, dict):
                raise AttestationError(f"{where}: a signature entry is not an object")
            signature = _b64decode(entry.get("sig"), "sig", where)
            for key in self.keys:
                if _verifies(key, signature, message):
                    return SignedPayload(payload_type, payload, f"key:{key_id(key)}")
        raise AttestationRejected(
            f"{where}: no signature verifies with the trusted key(s) {self.describe()}: "
            "wrong key, or the attestation was changed after signing"
        )


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _production_verifier() -> Any:
    from sigstore.verify import Verifier

    # offline: the embedded (or cached) trust root; no TUF refresh, so verification works air-gapped.
    return Verifier.production(offline=True)


@dataclass(frozen=True)
class TrustedIdentities(TrustPolicy):
    """Sigstore keyless: a bundle is trusted when its certificate names one of ``identities``
    (identity, OIDC issuer) and the signature, certificate chain and transparency log entry verify."""

    identities: tuple[tuple[str, str], ...]
    verifier: Callable[[], Any] = field(default=_production_verifier)

    def describe(self) -> str:
        """The identities and issuers."""
        return ", ".join(f"{identity} ({issuer})" for identity, issuer in self.identities)

    def open(self, document: dict[str, Any], raw: bytes, where: str) -> SignedPayload:
        """Verify the bundle's DSSE envelope with sigstore-python against each trusted identity."""
        from sigstore.errors import Error as SigstoreError
        from sigstore.errors import VerificationError
        from sigstore.models import Bundle
        from sigstore.verify.policy import Identity

        from verify.source.signatures.sigstore import MALFORMED_BUNDLE_ERRORS

        if "mediaType" not in document:
            raise AttestationError(f"{where} is a DSSE envelope signed with a key: verify it with --public-key")
        try:
            bundle = Bundle.from_json(raw)
        except (SigstoreError, *MALFORMED_BUNDLE_ERRORS) as error:
            reason = " ".join(str(error).split())[:200]
            raise AttestationError(f"{where}: not a valid Sigstore bundle: {reason}") from None
        verifier = self.verifier()
        reasons = []
        for identity, issuer in self.identities:
            try:
                payload_type, payload = verifier.verify_dsse(bundle, Identity(identity=identity, issuer=issuer))
            except VerificationError as error:
                reasons.append(f"{identity}: {' '.join(str(error).split())[:200]}")
                continue
            except MALFORMED_BUNDLE_ERRORS as error:
                # A corrupt SAN or an out-of-range integratedTime: sigstore-python raises these, not
                # VerificationError (see MALFORMED_BUNDLE_ERRORS); the bundle is refused all the same.
                detail = " ".join(f"{type(error).__name__}: {error}".split())[:200]
                raise AttestationRejected(
                    f"{where}: Sigstore verification failed: malformed bundle ({detail})"
                ) from None
            return SignedPayload(str(payload_type), bytes(payload), f"{identity} ({issuer})")
        raise AttestationRejected(f"{where}: Sigstore verification failed: {'; '.join(reasons)}")


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    """A Statement whose signature, subjects and predicate all checked out (either predicate type)."""

    origin: str
    signer: str
    subjects: tuple[AttestedSubject, ...]
    statement_sha256: str

    def subject(self, name: str) -> AttestedSubject | None:
        """The subject called ``name``, if any."""
        return next((subject for subject in self.subjects if subject.name == name), None)

    @property
    def tree_sha256(self) -> str:
        """The attested install tree: the sha256 of its canonical manifest with empty inputs."""
        tree = self.subject(INSTALL_TREE_SUBJECT)
        assert tree is not None  # open_attestation refuses a statement without it
        return tree.sha256


@dataclass(frozen=True, slots=True)
class VerifiedAttestation(VerifiedStatement):
    """A verified rebuild verdict."""

    predicate: RebuildVerdict

    @property
    def manifest_sha256(self) -> str:
        """The attested digest of the rebuild's manifest."""
        return self.predicate.result.manifest_sha256

    @property
    def version(self) -> str:
        """The CPython release rebuilt."""
        return self.predicate.version

    @property
    def profile(self) -> str:
        """The recipe profile built."""
        return self.predicate.recipe.profile

    @property
    def builder_id(self) -> str:
        """The rebuilder's URI."""
        return self.predicate.rebuilder.id

    @property
    def source_tarball(self) -> AttestedSubject | None:
        """The verified source tarball the rebuild started from (an input, not a subject)."""
        tarball = self.predicate.source.tarball
        return AttestedSubject(tarball.name, tarball.sha256)


@dataclass(frozen=True, slots=True)
class VerifiedProvenance(VerifiedStatement):
    """A verified SLSA Provenance v1 of a cpython-verify rebuild."""

    provenance: Provenance

    @property
    def manifest_sha256(self) -> str:
        """The attested digest of the rebuild's manifest (the ``manifest.json`` byproduct)."""
        digest = self.provenance.byproduct_sha256(MANIFEST_BYPRODUCT)
        assert digest is not None  # parse_provenance requires it
        return digest

    @property
    def rebuild_sha256(self) -> str:
        """The digest of the ``rebuild.json`` it was made from (the ``rebuild.json`` byproduct)."""
        digest = self.provenance.byproduct_sha256(RECORD_BYPRODUCT)
        assert digest is not None  # parse_provenance requires it
        return digest

    @property
    def version(self) -> str:
        """The CPython release rebuilt."""
        return self.provenance.version

    @property
    def profile(self) -> str:
        """The recipe profile built."""
        return self.provenance.profile

    @property
    def builder_id(self) -> str:
        """The rebuilder's URI (``runDetails.builder.id``)."""
        return self.provenance.runDetails.builder.id

    @property
    def source_tarball(self) -> AttestedSubject | None:
        """The verified source tarball (a resolved dependency), when the provenance names one by sha256."""
        tarball = self.provenance.source_tarball()
        sha256 = tarball.sha256() if tarball is not None else None
        if tarball is None or tarball.name is None or sha256 is None:
            return None
        return AttestedSubject(tarball.name, sha256)


AnyVerified = VerifiedAttestation | VerifiedProvenance


def read_attestation(path: Path) -> tuple[bytes, dict[str, Any]]:
    """Read an attestation file (a regular file only) with the size cap; return its bytes and parsed
    top-level object."""
    try:
        raw = read_regular_file(path, MAX_ATTESTATION_BYTES)
    except OSError as error:
        raise AttestationError(f"cannot read attestation {path}: {error.strerror or error}") from None
    return raw, parse_document(raw, str(path))


def parse_document(raw: bytes, where: str) -> dict[str, Any]:
    """Parse the outer JSON of an attestation, refusing oversized or too deeply nested input."""
    if len(raw) > MAX_ATTESTATION_BYTES:
        raise AttestationError(f"{where} is larger than {MAX_ATTESTATION_BYTES >> 20} MiB; not an attestation")
    try:
        document = loads_bounded(raw)
    except JsonLimitError:
        raise AttestationError(
            f"{where}: JSON nested too deeply (over {JSON_MAX_DEPTH} levels); not an attestation"
        ) from None
    except ValueError as error:
        raise AttestationError(f"{where} is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(document, dict):
        raise AttestationError(f"{where} is not a JSON object")
    return document


def open_attestation(raw: bytes, document: dict[str, Any], trust: TrustPolicy, where: str) -> AnyVerified:
    """Verify the signature, then read the Statement and validate the predicate (verdict or provenance)."""
    signed = trust.open(document, raw, where)
    if signed.payload_type != PAYLOAD_TYPE:
        raise AttestationRejected(f"{where}: payload type is {signed.payload_type!r}, not {PAYLOAD_TYPE}")
    try:
        statement = loads_bounded(signed.payload)
    except JsonLimitError:
        raise AttestationRejected(f"{where}: the signed statement is nested too deeply") from None
    except ValueError:
        raise AttestationRejected(f"{where}: the signed statement is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise AttestationRejected(f"{where}: the signed payload is not an in-toto Statement v1")
    predicate_type = statement.get("predicateType")
    if predicate_type == PROVENANCE_TYPE:
        provenance = parse_provenance(statement.get("predicate"))
        verified = VerifiedProvenance(
            origin=where,
            signer=signed.signer,
            subjects=_subjects(statement.get("subject"), where),
            statement_sha256=hashlib.sha256(signed.payload).hexdigest(),
            provenance=provenance,
        )
        _require_tree_subject(verified, where)
        return verified
    if predicate_type != PREDICATE_TYPE:
        if predicate_type in RETIRED_PREDICATE_TYPES:
            raise AttestationError(
                f"{where}: an attestation in the retired form {predicate_type} (before SLSA provenance); "
                "re-attest the result with this cpython-verify"
            )
        if isinstance(predicate_type, str) and predicate_type.startswith(_PREDICATE_FAMILY):
            raise AttestationError(
                f"{where}: predicate version {predicate_type} is unknown to this cpython-verify "
                f"(it reads {PREDICATE_TYPE}); upgrade to verify it"
            )
        raise AttestationError(f"{where}: not a cpython-verify rebuild attestation (predicateType {predicate_type!r})")
    subjects = _subjects(statement.get("subject"), where)
    predicate = parse_predicate(json.dumps(statement.get("predicate")).encode())
    attestation = VerifiedAttestation(
        origin=where,
        signer=signed.signer,
        subjects=subjects,
        statement_sha256=hashlib.sha256(signed.payload).hexdigest(),
        predicate=predicate,
    )
    _require_tree_subject(attestation, where)
    if attestation.tree_sha256 != predicate.result.tree_sha256:
        raise AttestationRejected(
            f"{where}: the {INSTALL_TREE_SUBJECT} subject does not match the predicate's tree_sha256"
        )
    return attestation


def verify_attestation_file(path: Path, trust: TrustPolicy) -> AnyVerified:
    """Read and verify one attestation file: a rebuild verdict or a SLSA provenance."""
    raw, document = read_attestation(path)
    return open_attestation(raw, document, trust, str(path))


def _subjects(value: Any, where: str) -> tuple[AttestedSubject, ...]:
    if not isinstance(value, list) or not value:
        raise AttestationRejected(f"{where}: the statement has no subjects")
    if len(value) > MAX_SUBJECTS:
        raise AttestationRejected(f"{where}: more than {MAX_SUBJECTS} subjects")
    subjects = []
    for item in value:
        digest = item.get("digest") if isinstance(item, dict) else None
        name = item.get("name") if isinstance(item, dict) else None
        sha256 = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(sha256, str):
            raise AttestationRejected(f"{where}: a subject lacks a name or a sha256 digest")
        if not names.matches(names.SHA256_PATTERN, sha256):
            raise AttestationRejected(f"{where}: subject {name[:80]!r}: its sha256 is not 64 lower-case hex digits")
        # attest names the install tree, or a file by its path in the tree: a path a result directory holds.
        problem = None if name == INSTALL_TREE_SUBJECT else check_relative_path(name)
        if problem is not None or len(name) > 4096:
            raise AttestationRejected(
                f"{where}: subject name {name[:80]!r} is not a path in the install tree ({problem or 'too long'})"
            )
        subjects.append(AttestedSubject(name, sha256))
    subject_names = [subject.name for subject in subjects]
    if len(set(subject_names)) != len(subject_names):
        raise AttestationRejected(f"{where}: two subjects share a name")
    return tuple(subjects)


def _require_tree_subject(attestation: VerifiedStatement, where: str) -> None:
    """Both predicates are about an install tree: the Statement must name it as a subject."""
    if attestation.subject(INSTALL_TREE_SUBJECT) is None:
        raise AttestationRejected(f"{where}: the statement has no {INSTALL_TREE_SUBJECT} subject")


@dataclass(frozen=True, slots=True)
class SubjectCheck:
    """One local file compared with the subject of the same name."""

    name: str
    path: Path
    expected: str
    actual: str | None
    """The file's sha256; None when no regular file is there (missing, or a symlink or directory)."""
    is_input: bool = False
    """True for the source tarball: checked against the attested *input* digest, it is no subject."""

    @property
    def ok(self) -> bool:
        """True when the file's bytes are the attested bytes."""
        return self.expected == self.actual


def check_subjects(
    attestation: AnyVerified, *, artifacts: Sequence[Path] = (), result_dir: Path | None = None
) -> tuple[SubjectCheck, ...]:
    """Hash local files and pair each with its subject.

    ``artifacts`` are matched by file name against the subjects' last path component (an ambiguous or
    unmatched file is an error: it would otherwise be silently unchecked); the source tarball, which is
    no subject, is matched by name against the attested input and marked as such. ``result_dir`` checks its
    ``manifest.json`` against the attested manifest digest and *every* subject that names an output
    file: each must be a regular file under ``root/`` with the attested bytes, and one that is absent is
    a failed check, never a skipped one. The install tree subject, and the whole of ``root/`` with it,
    is checked by :func:`check_tree`.
    """
    pairs: list[tuple[AttestedSubject, Path]] = []
    inputs: list[tuple[AttestedSubject, Path]] = []
    tarball = attestation.source_tarball
    for path in artifacts:
        matches = [subject for subject in attestation.subjects if subject.name.rsplit("/", 1)[-1] == path.name]
        if not matches and tarball is not None and tarball.name == path.name:
            inputs.append((tarball, path))
            continue
        if not matches:
            raise AttestationRejected(f"{path.name} is not a subject of {attestation.origin} (nor its source tarball)")
        if len(matches) > 1:
            raise AttestationError(f"{path.name} matches several subjects of {attestation.origin}")
        pairs.append((matches[0], path))
    if result_dir is not None:
        manifest = AttestedSubject(MANIFEST_SUBJECT, attestation.manifest_sha256)
        pairs.append((manifest, result_dir / MANIFEST_SUBJECT))
        for subject in attestation.subjects:
            problem = check_relative_path(subject.name)
            if problem is not None:
                # Signed or not, a subject name never gets to point outside the result directory.
                raise AttestationRejected(
                    f"{attestation.origin}: subject name {subject.name!r} is not a relative path ({problem})"
                )
            if subject.name != INSTALL_TREE_SUBJECT:
                # Every other subject names an output file in the install tree; there is no third kind to skip.
                pairs.append((subject, result_dir / RESULT_ROOT / subject.name))
    return tuple(
        SubjectCheck(subject.name, path, subject.sha256, _regular_file_sha256(path), is_input=path_is_input)
        for path_is_input, group in ((True, inputs), (False, pairs))
        for subject, path in group
    )


def _regular_file_sha256(path: Path) -> str | None:
    """The sha256 of a regular file (symlinks not followed); None when there is none at ``path``."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AttestationError(f"cannot read {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        return None
    return sha256_file(path)


def mismatches(checks: Iterable[SubjectCheck]) -> list[str]:
    """One line per file whose bytes are not the attested bytes."""
    return [
        f"{check.path}: sha256 {check.actual}, attested {check.expected}"
        if check.actual is not None
        else f"{check.path}: no such regular file, attested sha256 {check.expected}"
        for check in checks
        if not check.ok
    ]


# --------------------------------------------------------------------------- the whole install tree


@dataclass(frozen=True, slots=True)
class TreeFinding:
    """One path under ``root/`` that is not as the attested manifest records it."""

    path: str
    """The path inside the install tree, as the manifest spells it."""
    changes: tuple[str, ...]
    """The compare stage's names (:data:`verify.compare.model.CHANGES`): ``only-in-a`` is attested but
    missing, ``only-in-b`` is present but not attested, else any of ``type``, ``mode``, ``link-target``,
    ``content``."""
    detail: str
    """What was found and what was attested, in one line."""


@dataclass(frozen=True, slots=True)
class TreeCheck:
    """A result directory's ``root/`` compared, path by path, with the attested manifest."""

    root: Path
    attested_paths: int
    """Entries in the attested manifest (0 when it could not be used)."""
    findings: tuple[TreeFinding, ...] = ()
    problems: tuple[str, ...] = ()
    """Failures that are not about one path: the manifest is not the attested one, or contradicts the predicate."""

    @property
    def ok(self) -> bool:
        """True when the tree is exactly the attested tree."""
        return not self.findings and not self.problems

    def summary(self) -> str:
        """One line for the report."""
        if self.ok:
            return f"{self.root} is the attested tree ({self.attested_paths} paths)"
        found = [f"{len(self.findings)} path(s) differ"] if self.findings else []
        found += [f"{len(self.problems)} other problem(s)"] if self.problems else []
        return f"{self.root} is NOT the attested tree: {', '.join(found)}"

    def failures(self) -> list[str]:
        """One line per problem and per differing path."""
        return [*self.problems, *(f"{self.root / finding.path}: {finding.detail}" for finding in self.findings)]


def tree_findings(attested: Manifest, actual: Manifest) -> tuple[TreeFinding, ...]:
    """Every path on which the ``actual`` tree differs from the ``attested`` manifest, in path order.

    Pure: the comparison stage's manifest diff decides what differs (presence, type, content, mode,
    link target), so ``compare``, ``peers`` and this check never disagree about it.
    """
    findings = []
    for difference in diff_manifests(attested, actual):
        findings.append(TreeFinding(difference.path, difference.changes, _describe(difference)))
    return tuple(findings)


def _describe(difference: compare_model.Difference) -> str:
    attested, found = difference.a, difference.b
    if found is None:
        assert attested is not None
        return f"missing: attested {attested.kind}, mode {attested.mode:04o}"
    if attested is None:
        return f"extra: not in the attested manifest ({found.kind}, mode {found.mode:04o})"
    parts = []
    for change in difference.changes:
        if change == compare_model.TYPE:
            parts.append(f"type changed: {found.kind}, attested {attested.kind}")
        elif change == compare_model.CONTENT:
            parts.append(f"content changed: sha256 {found.sha256}, attested {attested.sha256}")
        elif change == compare_model.MODE:
            parts.append(f"mode changed: {found.mode:04o}, attested {attested.mode:04o}")
        elif change == compare_model.LINK_TARGET:
            parts.append(f"link target changed: {found.target!r}, attested {attested.target!r}")
    return "; ".join(parts)


def check_tree(attestation: AnyVerified, result_dir: Path) -> TreeCheck:
    """Compare ``result_dir/root`` with the attested manifest (``result_dir/manifest.json``).

    The manifest is used only if its sha256 is the attested digest; the tree is scanned with the
    manifest stage's own scanner, so a missing, changed (content, mode, type, link target) or extra
    path is a finding. A directory that is not a rebuild result, or a tree that cannot be read, is an
    error (exit 2): nothing can be judged.
    """
    root = result_dir / RESULT_ROOT
    manifest_path = result_dir / MANIFEST_SUBJECT
    if not root.is_dir():
        raise AttestationError(f"{result_dir} is not a rebuild result directory: it has no {RESULT_ROOT}/ tree")
    manifest_sha256 = sha256_file(manifest_path)
    if manifest_sha256 != attestation.manifest_sha256:
        return TreeCheck(
            root,
            0,
            problems=(
                f"{root}: not compared: {manifest_path} has sha256 {manifest_sha256}, not the attested manifest "
                f"{attestation.manifest_sha256}",
            ),
        )
    attested = load_manifest(manifest_path)
    problems = []
    attested_tree = tree_digest(attested)
    if attested_tree != attestation.tree_sha256:
        # A signer whose two digests disagree contradicts itself; peers compare tree_sha256, so say so.
        problems.append(
            f"{manifest_path}: its tree digest {attested_tree} is not the attested {INSTALL_TREE_SUBJECT} "
            f"digest {attestation.tree_sha256}"
        )
    actual = Manifest(entries=scan_tree(root))
    return TreeCheck(root, len(attested.entries), tree_findings(attested, actual), tuple(problems))


# --------------------------------------------------------------------------- the verdict and its provenance


PROVENANCE_INFIX: Final = ".provenance"
"""``attest`` writes the provenance of ``NAME.intoto.json`` as ``NAME.provenance.intoto.json`` (likewise
``.sigstore.json``; :func:`verify.attest.signing.provenance_path_for`)."""


def companion_path(path: Path, *, is_provenance: bool) -> Path:
    """The other file ``attest`` wrote with ``path``: the provenance beside a verdict, or the verdict
    beside a provenance (``NAME.provenance.EXT`` <-> ``NAME.EXT``)."""
    if not is_provenance:
        return provenance_path_for(path)
    for suffix in (".intoto.json", ".sigstore.json"):
        if path.name.endswith(PROVENANCE_INFIX + suffix):
            return path.with_name(path.name[: -len(PROVENANCE_INFIX + suffix)] + suffix)
    stem, dot, extension = path.name.rpartition(".")
    if dot and stem.endswith(PROVENANCE_INFIX):
        return path.with_name(f"{stem[: -len(PROVENANCE_INFIX)]}.{extension}")
    return path.with_name(f"{path.name}.verdict")  # not named as attest names it: no companion to find


def pair_mismatches(verdict: VerifiedAttestation, provenance: VerifiedProvenance) -> list[str]:
    """Where a verdict and the provenance ``attest`` signed with it disagree; one line each.

    ``attest`` makes both from one rebuild result with one signer: the same signer, subjects, release,
    profile, manifest, ``rebuild.json``, source tarball, rebuilder, runner, environment and variations."""
    predicate, source = verdict.predicate, provenance.source_tarball
    tarball = (predicate.source.tarball.name, predicate.source.tarball.sha256)
    parameters = provenance.provenance.buildDefinition.internalParameters
    pairs = [
        ("signer", verdict.signer, provenance.signer),
        (
            "subjects",
            sorted((s.name, s.sha256) for s in verdict.subjects),
            sorted((s.name, s.sha256) for s in provenance.subjects),
        ),
        ("version", verdict.version, provenance.version),
        ("profile", verdict.profile, provenance.profile),
        ("manifest sha256", verdict.manifest_sha256, provenance.manifest_sha256),
        ("rebuild.json sha256", predicate.build.rebuild_sha256, provenance.rebuild_sha256),
        ("source tarball", tarball, (source.name, source.sha256) if source is not None else None),
        ("rebuilder", verdict.builder_id, provenance.builder_id),
        ("runner", predicate.build.runner, parameters.runner),
        ("environment", predicate.build.environment.name, parameters.environment),
        (
            "variations",
            list(predicate.build.variations),
            list(provenance.provenance.buildDefinition.externalParameters.variations),
        ),
    ]
    return [
        f"{what}: the verdict says {mine!r}, the provenance {theirs!r}"
        for what, mine, theirs in pairs
        if mine != theirs
    ]


@dataclass(frozen=True, slots=True)
class CompanionCheck:
    """The other file ``attest`` wrote beside the one given, judged too."""

    path: Path
    what: str
    """``provenance`` or ``verdict``: what the companion is."""
    found: bool
    problems: tuple[str, ...] = ()
    """Why it does not count as the companion: it does not verify, is not the other kind, or disagrees."""

    @property
    def ok(self) -> bool:
        """True when it is absent (nothing to judge) or verified and agrees with the file given."""
        return not self.problems

    def summary(self) -> str:
        """One line for the report."""
        if not self.found:
            return f"{self.what}: none at {self.path}; only the file given was checked"
        if self.ok:
            return f"{self.what}: {self.path} verified, and it agrees with the file given"
        return f"{self.what}: {self.path} FAILED: {'; '.join(self.problems)}"


def check_companion(path: Path, verified: AnyVerified, trust: TrustPolicy) -> CompanionCheck:
    """Judge the file ``attest`` wrote beside ``path``: the provenance of a verdict, or the verdict of a
    provenance. A file there that cannot be read, does not verify, is not the other kind or contradicts
    the one given is a failure with its reason; no file there is said, not failed (a verdict may be
    published alone)."""
    is_provenance = isinstance(verified, VerifiedProvenance)
    companion = companion_path(path, is_provenance=is_provenance)
    what = "verdict" if is_provenance else "provenance"
    if not companion.exists() and not companion.is_symlink():
        return CompanionCheck(companion, what, found=False)
    try:
        other = verify_attestation_file(companion, trust)
    except VerifyError as error:
        return CompanionCheck(companion, what, found=True, problems=(error.message,))
    if isinstance(other, VerifiedProvenance) == is_provenance:
        given = "provenance" if is_provenance else "verdict"
        return CompanionCheck(companion, what, found=True, problems=(f"it is not a {what} but another {given}",))
    verdict, provenance = (other, verified) if is_provenance else (verified, other)
    assert isinstance(verdict, VerifiedAttestation) and isinstance(provenance, VerifiedProvenance)
    return CompanionCheck(companion, what, found=True, problems=tuple(pair_mismatches(verdict, provenance)))


def verify_published(path: Path, trust: TrustPolicy) -> AnyVerified:
    """:func:`verify_attestation_file`, and the file ``attest`` wrote beside it judged too
    (:func:`check_companion`): a verdict whose provenance is there but garbage, unverifiable or
    contradicting is rejected with that reason, as ``verify-attestation`` fails it. What ``peers`` and
    ``merge`` read."""
    verified = verify_attestation_file(path, trust)
    companion = check_companion(path, verified, trust)
    if not companion.ok:
        raise AttestationRejected(
            f"{path}: the {companion.what} beside it, {companion.path}: {'; '.join(companion.problems)}"
        )
    return verified
