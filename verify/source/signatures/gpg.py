"""OpenPGP verification of a release tarball against the series' pinned signing keys.

gpg runs in a throwaway GNUPGHOME that holds only keys whose primary fingerprint the recipe pins:
every candidate key file is first imported into a scratch home, and only pinned keys are exported from
there into a separate verification home (when every key found is pinned, the scratch home already is
that keyring and verifies itself). A key file can therefore never smuggle in an extra key, and the signer
gpg reports is, by construction, a pinned one.

A failed check is :class:`~verify.source.models.SignatureEvidence` with status FAILED and a one-line
detail; only operational trouble (no gpg binary, an unreadable key file) raises.

Expiry is judged at signing time: a release signed in 2025 stays good after its key expires in
2026. gpg itself reports the expired key (EXPKEYSIG) without saying when the signature was made
relative to the expiry, so the comparison is done here from the timestamps gpg reports.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verify.common.errors import OperationalError, ToolMissing
from verify.source.models import CheckStatus, SignatureEvidence, SignatureKind
from verify.source.recipes import OpenPGPPolicy

KEY_FILE_SUFFIXES = (".asc", ".gpg")
# Options for every gpg call: no agent, no keyserver or WKD lookups, no tty.
_GPG_OPTIONS = ["--batch", "--no-autostart", "--no-auto-key-retrieve", "--no-auto-key-locate"]
_EXPIRED_KEY = "signing key has expired"


class KeyFileError(OperationalError):
    """A key file named by the recipe or found in ``--keys`` could not be read."""


@dataclass(frozen=True, slots=True)
class _KeyInfo:
    """What the verification keyring says about one pinned key."""

    fingerprint: str
    user_id: str
    expires: int | None
    """Primary key expiry (seconds since the epoch), None if it never expires."""
    subkey_expiry: Mapping[str, int | None]
    """Expiry per subkey id (last 16 hex digits of the fingerprint)."""

    def expiry_of(self, signing_fingerprint: str) -> int | None:
        """The expiry that applies to a signature made by ``signing_fingerprint`` (primary or subkey)."""
        if signing_fingerprint == self.fingerprint:
            return self.expires
        sub = self.subkey_expiry.get(signing_fingerprint[-16:])
        # A subkey can never outlive its primary key.
        candidates = [value for value in (self.expires, sub) if value is not None]
        return min(candidates) if candidates else None


@dataclass(frozen=True, slots=True)
class _Signer:
    """Who signed, as far as it is known."""

    signer: str | None = None
    signer_name: str | None = None
    signed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _EvidenceBuilder:
    """Collects notes along the way and builds the one evidence value a check returns."""

    signature_origin: str | None
    notes: list[str] = field(default_factory=list)

    def __call__(self, status: CheckStatus, detail: str, *, found: _Signer | None = None) -> SignatureEvidence:
        found = found or _Signer()
        return SignatureEvidence(
            kind=SignatureKind.OPENPGP,
            status=status,
            detail=detail,
            signer=found.signer,
            signer_name=found.signer_name,
            signed_at=found.signed_at,
            signature_origin=self.signature_origin,
            notes=tuple(self.notes),
        )


def verify_openpgp(
    data: Path,
    signature: bytes,
    policy: OpenPGPPolicy,
    *,
    extra_key_dirs: Sequence[Path] = (),
    signature_origin: str | None = None,
) -> SignatureEvidence:
    """Check a detached OpenPGP ``signature`` over the file ``data`` against ``policy``'s pinned keys.

    Keys come from ``policy.key_files`` plus any ``*.asc`` / ``*.gpg`` in ``extra_key_dirs``; only
    keys whose primary fingerprint is in ``policy.fingerprints`` are used, the others are ignored
    with a note. Returns VERIFIED evidence naming the signer's primary fingerprint, user id and
    signature time, or FAILED evidence with a one-line reason. Raises :class:`ToolMissing` when gpg
    is not installed and :class:`KeyFileError` when a key file cannot be read.
    """
    gnupg = _import_gnupg()
    pinned = tuple(fingerprint.upper() for fingerprint in policy.fingerprints)
    key_files = [*policy.key_files, *_key_files_in(extra_key_dirs)]
    evidence = _EvidenceBuilder(signature_origin)
    notes = evidence.notes

    with _gnupg_home() as scratch_home, _gnupg_home() as verify_home:
        scratch = gnupg.GPG(gnupghome=str(scratch_home), options=_GPG_OPTIONS)
        for key_file in key_files:
            imported = scratch.import_keys(_read_key_file(key_file))
            if not imported.fingerprints:
                notes.append(f"{key_file.name}: no OpenPGP public key found in it; ignored")
        listed = scratch.list_keys()
        candidates = {key["fingerprint"]: key for key in listed}
        usable = [fingerprint for fingerprint in pinned if fingerprint in candidates]
        for fingerprint, key in sorted(candidates.items()):
            if fingerprint not in pinned:
                notes.append(f"ignored key {fingerprint} ({_user_id(key)}): not pinned for this series")

        if set(candidates) <= set(pinned):
            # Every key the files held is pinned: the scratch home already is a keyring of pinned keys
            # only, so it verifies; copying the keys into a second home would only spawn four more gpg.
            keyring, listing = scratch, listed
        else:
            keyring = gnupg.GPG(gnupghome=str(verify_home), options=_GPG_OPTIONS)
            if usable:
                keyring.import_keys(scratch.export_keys(usable, armor=True))
            listing = keyring.list_keys()
        keys = {key["fingerprint"]: _key_info(key) for key in listing}

        signature_path = verify_home / "signature"
        signature_path.write_bytes(signature)
        result = keyring.verify_file(str(signature_path), data_filename=str(data))

        if result.sig_timestamp is not None:  # VALIDSIG: the signature is mathematically good
            return _judge_good_math(result, keys, pinned, evidence)
        if result.status == "signature bad":
            return evidence(CheckStatus.FAILED, f"BAD signature from key {result.key_id} ({result.username})")
        if result.key_id and result.status in ("no public key", "signature error"):
            issuer = str(result.fingerprint or result.key_id)
            return _unknown_signer(issuer, data, signature_path, scratch, candidates, pinned, usable, evidence)
        return evidence(CheckStatus.FAILED, f"not an OpenPGP signature ({result.status or 'gpg found no signature'})")


def _judge_good_math(
    result: Any,
    keys: Mapping[str, _KeyInfo],
    pinned: Sequence[str],
    evidence: _EvidenceBuilder,
) -> SignatureEvidence:
    """The signature verified mathematically (VALIDSIG): judge signer, revocation and expiry."""
    signing = str(result.fingerprint)
    primary = str(result.pubkey_fingerprint or signing)
    signed_at = datetime.fromtimestamp(int(result.sig_timestamp), UTC)
    key = keys.get(primary)
    if key is None or primary not in pinned:
        # Cannot happen with a keyring of pinned keys only; refuse rather than trust it.
        return evidence(CheckStatus.FAILED, f"signed by key {primary}, which is not pinned for this series")
    found = _Signer(signer=primary, signer_name=key.user_id, signed_at=signed_at)
    problems = {problem["status"] for problem in result.problems}
    if "signing key was revoked" in problems:
        return evidence(CheckStatus.FAILED, f"signed by {key.user_id} ({primary}), whose key is revoked", found=found)
    unexpected = problems - {_EXPIRED_KEY}
    if unexpected:
        return evidence(CheckStatus.FAILED, f"signature by {primary} not accepted: {', '.join(sorted(unexpected))}")
    expiry = key.expiry_of(signing)
    made = _day(signed_at)
    if expiry is not None:
        expired_at = datetime.fromtimestamp(expiry, UTC)
        if int(result.sig_timestamp) >= expiry:
            return evidence(
                CheckStatus.FAILED,
                f"signature by {key.user_id} ({primary}) was made on {made}, after the key expired on "
                f"{_day(expired_at)}",
                found=found,
            )
        if _EXPIRED_KEY in problems or expired_at <= datetime.now(UTC):
            evidence.notes.append(f"key expired {_day(expired_at)}, after the signature was made on {made}")
    which = "" if signing == primary else f" (subkey {signing})"
    return evidence(
        CheckStatus.VERIFIED, f"good signature from {key.user_id} ({primary}){which}, made {made}", found=found
    )


def _unknown_signer(
    issuer: str,
    data: Path,
    signature_path: Path,
    scratch: Any,
    candidates: Mapping[str, Any],
    pinned: Sequence[str],
    usable: Sequence[str],
    evidence: _EvidenceBuilder,
) -> SignatureEvidence:
    """The verification keyring lacks the signing key: say whose it is and what would help."""
    issuer = issuer.upper()
    pinned_match = [fingerprint for fingerprint in pinned if fingerprint.endswith(issuer[-16:])]
    if pinned_match:
        return evidence(
            CheckStatus.FAILED,
            f"signed by pinned key {pinned_match[0]}, but no copy of it is available; pass --keys DIR",
        )
    # A key supplied but not pinned: check the signature with it anyway, so the report can say
    # "a good signature, from the wrong key" rather than just "unknown key".
    if any(_owns(key, issuer) for key in candidates.values()):
        result = scratch.verify_file(str(signature_path), data_filename=str(data))
        primary = str(result.pubkey_fingerprint or result.fingerprint or issuer)
        name = _user_id(candidates[primary]) if primary in candidates else str(result.username)
        quality = "good" if (result.pubkey_fingerprint and result.status != "signature bad") else "BAD"
        return evidence(
            CheckStatus.FAILED,
            f"{quality} signature from {name} ({primary}), which is not pinned for this series "
            f"(pinned: {', '.join(pinned)})",
            found=_Signer(signer=primary, signer_name=name),
        )
    if not usable:
        return evidence(
            CheckStatus.FAILED,
            f"signed by key {issuer}, and no pinned key is available ({', '.join(pinned)}); pass --keys DIR",
        )
    return evidence(
        CheckStatus.FAILED, f"signed by key {issuer}, which is not pinned for this series (pinned: {', '.join(pinned)})"
    )


def _owns(key: Mapping[str, Any], issuer: str) -> bool:
    """Whether ``issuer`` (fingerprint or 16-digit key id) is ``key``'s primary key or one of its subkeys."""
    ids = [str(key["fingerprint"]), *(str(sub[2] or sub[0]) for sub in key.get("subkeys", []))]
    return any(known.upper().endswith(issuer[-16:]) for known in ids)


def _key_info(key: Mapping[str, Any]) -> _KeyInfo:
    subkeys = key.get("subkey_info", {})
    return _KeyInfo(
        fingerprint=str(key["fingerprint"]),
        user_id=_user_id(key),
        expires=_timestamp(key.get("expires")),
        subkey_expiry={str(key_id): _timestamp(info.get("expires")) for key_id, info in subkeys.items()},
    )


def _user_id(key: Mapping[str, Any]) -> str:
    uids = key.get("uids") or []
    return str(uids[0]) if uids else "no user id"


def _timestamp(value: object) -> int | None:
    return int(str(value)) if value not in (None, "") else None


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _key_files_in(directories: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise KeyFileError(f"--keys {directory}: not a directory")
        files += sorted(path for path in directory.iterdir() if path.suffix in KEY_FILE_SUFFIXES and path.is_file())
    return files


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read key file {path}: {error.strerror}") from None


@contextmanager
def _gnupg_home() -> Iterator[Path]:
    """A private, empty GNUPGHOME, removed afterwards (short path: gpg puts sockets in it)."""
    home = Path(tempfile.mkdtemp(prefix="cv-gpg-"))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _import_gnupg() -> Any:
    """python-gnupg, once gpg itself is known to be installed."""
    if shutil.which("gpg") is None:
        raise ToolMissing("gpg", "gnupg")
    import gnupg

    return gnupg
