"""OpenPGP verification with real gpg: the real 3.13.5 signature, both copies of its key, wrong and
unknown keys, bad signatures, and keys that expired before or after a signature was made."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from verify.common.errors import ToolMissing
from verify.source.models import CheckStatus, SignatureKind
from verify.source.recipes import OpenPGPPolicy, load_recipe
from verify.source.signatures.gpg import KeyFileError, verify_openpgp

THOMAS = "7169605F62C751356D054A26A821E680E5FA6305"
STEVE = "7ED10B6531D7C8E1BC296021FC624643487034E5"
EXPIRED_COPY = "thomas-wouters.debian-python3.13-signing-key.asc"
REFRESHED_COPY = "thomas-wouters.joshjhall-containers.asc"


@pytest.fixture(scope="session")
def tarball(cpython_fixtures: Path) -> Path:
    return cpython_fixtures / "Python-3.13.5.tar.xz"


@pytest.fixture(scope="session")
def signature(cpython_fixtures: Path) -> bytes:
    return (cpython_fixtures / "Python-3.13.5.tar.xz.asc").read_bytes()


def _policy(*key_files: Path, pinned: tuple[str, ...] = (THOMAS,)) -> OpenPGPPolicy:
    return OpenPGPPolicy(fingerprints=pinned, key_files=key_files)


def _one_line(detail: str) -> None:
    assert detail and "\n" not in detail


def test_shipped_recipe_key_verifies_the_real_release(tarball: Path, signature: bytes) -> None:
    recipe = load_recipe("3.13")
    assert recipe.openpgp is not None
    evidence = verify_openpgp(tarball, signature, recipe.openpgp, signature_origin="fixtures")
    assert evidence.kind is SignatureKind.OPENPGP
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    assert evidence.signer == THOMAS
    assert evidence.signer_name == "Thomas Wouters <thomas@python.org>"
    assert evidence.signed_at == datetime(2025, 6, 11, 17, 45, 54, tzinfo=UTC)
    assert evidence.signature_origin == "fixtures"
    # The shipped copy expired 2026-07-02; the signature predates that, and the report says so.
    assert evidence.notes == ("key expired 2026-07-02, after the signature was made on 2025-06-11",)


@pytest.mark.parametrize("copy", [EXPIRED_COPY, REFRESHED_COPY])
def test_both_copies_of_the_key_verify(tarball: Path, signature: bytes, keys_fixtures: Path, copy: str) -> None:
    evidence = verify_openpgp(tarball, signature, _policy(keys_fixtures / copy))
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    assert evidence.signer == THOMAS
    assert any("expired" in note for note in evidence.notes) == (copy == EXPIRED_COPY)


def test_key_from_extra_dir_and_unpinned_keys_are_ignored_with_a_note(
    tarball: Path, signature: bytes, keys_fixtures: Path
) -> None:
    evidence = verify_openpgp(tarball, signature, _policy(), extra_key_dirs=[keys_fixtures])
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    ignored = [note for note in evidence.notes if note.startswith("ignored key")]
    assert {note.split()[2] for note in ignored} == {
        STEVE,
        "A035C8C19219BA821ECEA86B64E628F8D684696D",
        "E3FF2839C048B25C084DEBE9B26995E310250568",
    }


def test_good_signature_from_a_key_not_pinned_fails_naming_it(
    tarball: Path, signature: bytes, keys_fixtures: Path
) -> None:
    # Pin Steve Dower (who never signs source): Thomas's good signature must not be accepted.
    evidence = verify_openpgp(
        tarball,
        signature,
        _policy(keys_fixtures / "steve-dower.electrum.asc", pinned=(STEVE,)),
        extra_key_dirs=[keys_fixtures],
    )
    assert evidence.status is CheckStatus.FAILED
    assert "good signature from Thomas Wouters" in evidence.detail
    assert "not pinned" in evidence.detail and THOMAS in evidence.detail and STEVE in evidence.detail
    _one_line(evidence.detail)


def test_unknown_key_says_which_and_what_to_pass(tarball: Path, signature: bytes, keys_fixtures: Path) -> None:
    no_keys = verify_openpgp(tarball, signature, _policy())
    assert no_keys.status is CheckStatus.FAILED
    assert no_keys.detail == f"signed by pinned key {THOMAS}, but no copy of it is available; pass --keys DIR"
    pinned_other = verify_openpgp(tarball, signature, _policy(pinned=(STEVE,)))
    assert pinned_other.status is CheckStatus.FAILED
    assert "signed by key" in pinned_other.detail and "no pinned key is available" in pinned_other.detail
    assert "pass --keys DIR" in pinned_other.detail
    steve_key = keys_fixtures / "steve-dower.electrum.asc"
    steve_only = verify_openpgp(tarball, signature, _policy(steve_key, pinned=(STEVE,)))
    assert steve_only.status is CheckStatus.FAILED
    assert "which is not pinned for this series" in steve_only.detail


def test_malformed_signatures(tarball: Path, signature: bytes, keys_fixtures: Path, tmp_path: Path) -> None:
    policy = _policy(keys_fixtures / REFRESHED_COPY)
    armored_junk = b"-----BEGIN PGP SIGNATURE-----\n\nnot base64\n-----END PGP SIGNATURE-----\n"
    for garbage in (b"", b"hello world\n", armored_junk):
        evidence = verify_openpgp(tarball, garbage, policy)
        assert evidence.status is CheckStatus.FAILED
        assert evidence.detail.startswith("not an OpenPGP signature"), evidence.detail
        _one_line(evidence.detail)


def test_bad_signatures(
    tarball: Path, signature: bytes, keys_fixtures: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    policy = _policy(keys_fixtures / REFRESHED_COPY)
    data = tarball.read_bytes()
    flipped = tmp_path / "flipped.tar.xz"
    flipped.write_bytes(data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    truncated = tmp_path / "truncated.tar.xz"
    truncated.write_bytes(data[:-1])
    # A signature for another release: 3.13.5's signature over the 3.11.2 tarball.
    for target in (flipped, truncated, cpython_fixtures / "Python-3.11.2.tgz"):
        evidence = verify_openpgp(target, signature, policy)
        assert evidence.status is CheckStatus.FAILED
        assert evidence.detail.startswith("BAD signature"), evidence.detail
        _one_line(evidence.detail)


def test_unreadable_key_dir_is_an_operational_error(tarball: Path, signature: bytes, tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not a directory"):
        verify_openpgp(tarball, signature, _policy(), extra_key_dirs=[tmp_path / "nope"])


def test_key_file_without_a_key_is_noted(tarball: Path, signature: bytes, keys_fixtures: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.asc").write_text("not a key\n")
    evidence = verify_openpgp(tarball, signature, _policy(keys_fixtures / EXPIRED_COPY), extra_key_dirs=[tmp_path])
    assert evidence.status is CheckStatus.VERIFIED
    assert "junk.asc: no OpenPGP public key found in it; ignored" in evidence.notes


def test_missing_gpg_is_tool_missing(tarball: Path, signature: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing, match="install the Debian package 'gnupg'"):
        verify_openpgp(tarball, signature, _policy())


# --- keys that expire: generated here, with gpg's faked clock for the signing side only ---------


@dataclass(frozen=True)
class ExpiringKey:
    fingerprint: str
    public_key: Path
    data: Path
    before_expiry: bytes
    after_expiry: bytes


def _gpg(home: str, *args: str, at: str | None = None, stdin: bytes | None = None) -> bytes:
    clock = ["--faked-system-time", f"{at}!"] if at else []
    completed = subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *clock, *args],
        input=stdin,
        capture_output=True,
        check=True,
    )
    return completed.stdout


@pytest.fixture(scope="session")
def expiring_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpiringKey]:
    """A key created 2020-01-01 that expires 2021-01-01, with signatures made in 2020 and in 2022.

    gpg will not sign with a key it already considers expired, so both signatures are made while
    the key has no expiry, and the expiry is added afterwards by a self-signature dated 2020-07-01.
    """
    work = tmp_path_factory.mktemp("expiring")
    # Short path: gpg-agent's socket lives in the home directory.
    home = tempfile.mkdtemp(prefix="cv-gpgt-")
    try:
        _gpg(
            home,
            "--quick-gen-key",
            "Test Signer <test@example.invalid>",
            "ed25519",
            "sign",
            "never",
            at="20200101T000000",
        )
        listing = _gpg(home, "--with-colons", "--list-keys").decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
        data = work / "release.tar"
        data.write_bytes(b"pretend release tarball\n" * 1000)
        before = _gpg(home, "--armor", "--detach-sign", "--output", "-", str(data), at="20200601T000000")
        after = _gpg(home, "--armor", "--detach-sign", "--output", "-", str(data), at="20220101T000000")
        _gpg(home, "--quick-set-expire", fingerprint, "2021-01-01", at="20200701T000000")
        public_key = work / "test-signer.asc"
        public_key.write_bytes(_gpg(home, "--armor", "--export", fingerprint))
        yield ExpiringKey(fingerprint, public_key, data, before, after)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_signature_made_before_the_key_expired_is_verified(expiring_key: ExpiringKey) -> None:
    policy = _policy(expiring_key.public_key, pinned=(expiring_key.fingerprint,))
    evidence = verify_openpgp(expiring_key.data, expiring_key.before_expiry, policy)
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    assert evidence.signed_at is not None and evidence.signed_at.date().isoformat() == "2020-06-01"
    assert evidence.notes == ("key expired 2021-01-01, after the signature was made on 2020-06-01",)


def test_signature_made_after_the_key_expired_fails(expiring_key: ExpiringKey) -> None:
    policy = _policy(expiring_key.public_key, pinned=(expiring_key.fingerprint,))
    evidence = verify_openpgp(expiring_key.data, expiring_key.after_expiry, policy)
    assert evidence.status is CheckStatus.FAILED
    assert evidence.detail == (
        f"signature by Test Signer <test@example.invalid> ({expiring_key.fingerprint}) was made on 2022-01-01, "
        "after the key expired on 2021-01-01"
    )


def test_generated_key_not_pinned_fails_naming_it(expiring_key: ExpiringKey) -> None:
    evidence = verify_openpgp(
        expiring_key.data,
        expiring_key.before_expiry,
        _policy(pinned=(THOMAS,)),
        extra_key_dirs=[expiring_key.public_key.parent],
    )
    assert evidence.status is CheckStatus.FAILED
    assert evidence.detail.startswith("good signature from Test Signer <test@example.invalid>")
    assert evidence.signer == expiring_key.fingerprint
