"""Sigstore verification with sigstore-python and its embedded production trust root, offline:
the real 3.13.5 tarball, every other real bundle against its published sha256, and failures."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from verify.source.models import CheckStatus, SignatureKind
from verify.source.recipes import SigstorePolicy, load_recipe
from verify.source.signatures.sigstore import verify_sigstore

TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
_BUNDLE_NAME = re.compile(r"^Python-(?P<version>3\.(?P<minor>\d+)\.\d+(?:(?:a|b|rc)\d+)?)\.(tar\.xz|tgz)\.sigstore$")


def _policy(series: str) -> SigstorePolicy:
    policy = load_recipe(series).sigstore
    assert policy is not None
    return policy


def _published_sha256(cpython_fixtures: Path, version: str, filename: str) -> str:
    """The release tracker's sha256 of ``filename``, cross-checked with python.org's field when it has one;
    for a release the fixtures hold no record of, the sha256 of the real tarball beside the bundle."""
    metadata = cpython_fixtures / "release-metadata" / f"{version}.json"
    if not metadata.exists():
        return hashlib.sha256((cpython_fixtures / filename).read_bytes()).hexdigest()
    records = json.loads(metadata.read_text())
    for record in records:
        if record["raw"]["url"].rsplit("/", 1)[-1] == filename:
            published = record["raw"].get("sha256")
            assert published in (None, record["sha256"])
            return str(record["sha256"])
    raise AssertionError(f"{filename} not in release-metadata/{version}.json")


def _other_bundles(cpython_fixtures: Path) -> list[str]:
    names = sorted(path.name for path in cpython_fixtures.glob("*.sigstore"))
    return [name for name in names if name != "Python-3.13.5.tar.xz.sigstore"]


def test_real_tarball_verifies(cpython_fixtures: Path) -> None:
    bundle = (cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_bytes()
    evidence = verify_sigstore(
        cpython_fixtures / "Python-3.13.5.tar.xz", bundle, _policy("3.13"), bundle_origin="fixtures"
    )
    assert evidence.kind is SignatureKind.SIGSTORE
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    assert evidence.signer == "thomas@python.org"
    assert evidence.signer_name == "https://accounts.google.com"
    assert evidence.signed_at is not None and evidence.signed_at.isoformat() == "2025-06-11T17:46:23+00:00"
    assert evidence.signature_origin == "fixtures"
    # The same bundle against the digest alone (how releases without a local tarball are checked).
    by_digest = verify_sigstore(TARBALL_SHA256, bundle, _policy("3.13"))
    assert by_digest.status is CheckStatus.VERIFIED
    assert by_digest.signed_at == evidence.signed_at


def test_every_published_bundle_verifies_against_its_published_digest(cpython_fixtures: Path) -> None:
    names = _other_bundles(cpython_fixtures)
    # At least: .tar.xz and .tgz of 3.11.2, 3.12.10-13, 3.13.10-13, 3.14.0-4, and 3.13.5.tgz; every bundle the
    # fixtures hold is checked (3.15.0rc1's against its tarball), so a new one cannot pass unread.
    assert len(names) >= 29
    failures = []
    for name in names:
        match = _BUNDLE_NAME.match(name)
        assert match is not None, name
        version, series = match["version"], f"3.{match['minor']}"
        digest = _published_sha256(cpython_fixtures, version, name.removesuffix(".sigstore"))
        policy = _policy(series)
        evidence = verify_sigstore(digest, (cpython_fixtures / name).read_bytes(), policy)
        if evidence.status is not CheckStatus.VERIFIED:
            failures.append(f"{name}: {evidence.detail}")
        elif (evidence.signer, evidence.signer_name) != (policy.identity, policy.issuer) or not evidence.signed_at:
            failures.append(f"{name}: incomplete evidence {evidence}")
    assert failures == []


def test_older_bundle_format_against_the_real_tarball(cpython_fixtures: Path) -> None:
    bundle = (cpython_fixtures / "Python-3.11.2.tgz.sigstore").read_bytes()
    assert b"bundle+json;version=0.2" in bundle
    evidence = verify_sigstore(cpython_fixtures / "Python-3.11.2.tgz", bundle, _policy("3.11"))
    assert evidence.status is CheckStatus.VERIFIED, evidence.detail
    assert evidence.signer == "pablogsal@python.org"


def test_wrong_identity_and_wrong_issuer(cpython_fixtures: Path) -> None:
    bundle = (cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_bytes()
    right = _policy("3.13")
    hugo = _policy("3.14")
    wrong_identity = verify_sigstore(TARBALL_SHA256, bundle, replace(right, identity="hugo@python.org"))
    assert wrong_identity.status is CheckStatus.FAILED
    assert wrong_identity.detail == (
        "signed by thomas@python.org (issuer https://accounts.google.com), not by hugo@python.org"
    )
    wrong_issuer = verify_sigstore(TARBALL_SHA256, bundle, replace(right, issuer=hugo.issuer))
    assert wrong_issuer.status is CheckStatus.FAILED
    assert wrong_issuer.detail == (
        "signed by thomas@python.org via issuer https://accounts.google.com, not https://github.com/login/oauth"
    )


def test_bundle_for_another_file(cpython_fixtures: Path, tmp_path: Path) -> None:
    other = (cpython_fixtures / "Python-3.13.5.tgz.sigstore").read_bytes()
    evidence = verify_sigstore(cpython_fixtures / "Python-3.13.5.tar.xz", other, _policy("3.13"))
    assert evidence.status is CheckStatus.FAILED
    assert evidence.detail.startswith(f"the bundle is not for this file (sha256 {TARBALL_SHA256})")
    # A tampered artifact: one flipped byte.
    data = bytearray((cpython_fixtures / "Python-3.13.5.tar.xz").read_bytes())
    data[12345] ^= 0x01
    tampered = tmp_path / "Python-3.13.5.tar.xz"
    tampered.write_bytes(bytes(data))
    bundle = (cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_bytes()
    evidence = verify_sigstore(tampered, bundle, _policy("3.13"))
    assert evidence.status is CheckStatus.FAILED
    assert "the bundle is not for this file" in evidence.detail


@pytest.mark.parametrize(
    "bundle",
    [b"", b"not json at all", b"[]", b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}', b"\xff\xfe"],
)
def test_malformed_bundle(bundle: bytes) -> None:
    evidence = verify_sigstore(TARBALL_SHA256, bundle, _policy("3.13"))
    assert evidence.status is CheckStatus.FAILED
    assert evidence.detail.startswith("not a Sigstore bundle"), evidence.detail
    assert "\n" not in evidence.detail and len(evidence.detail) <= 240


def test_tampered_bundle_signature(cpython_fixtures: Path) -> None:
    document = json.loads((cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_text())
    signature = document["messageSignature"]["signature"]
    document["messageSignature"]["signature"] = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    evidence = verify_sigstore(TARBALL_SHA256, json.dumps(document).encode(), _policy("3.13"))
    assert evidence.status is CheckStatus.FAILED
    assert "\n" not in evidence.detail


def test_bad_artifact_argument(cpython_fixtures: Path) -> None:
    bundle = (cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_bytes()
    with pytest.raises(ValueError, match="64 hex digits"):
        verify_sigstore("abc", bundle, _policy("3.13"))


def test_import_and_one_verification_time(cpython_fixtures: Path) -> None:
    """The CLI's speed target counts import time: measure it in a fresh interpreter."""
    script = (
        "import time, sys; t0 = time.perf_counter()\n"
        "import verify.source.signatures.sigstore as s\n"
        "t1 = time.perf_counter()\n"
        "from pathlib import Path\nfrom verify.source.recipes import load_recipe\n"
        "d = Path(sys.argv[1])\n"
        "e = s.verify_sigstore(d / 'Python-3.13.5.tar.xz', (d / 'Python-3.13.5.tar.xz.sigstore').read_bytes(),"
        " load_recipe('3.13').sigstore)\n"
        "t2 = time.perf_counter()\n"
        "print(e.status, round(t1 - t0, 3), round(t2 - t1, 3), 'sigstore' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(cpython_fixtures)], capture_output=True, text=True, check=True
    ).stdout.split()
    status, module_import, verification, eager = out[0], float(out[1]), float(out[2]), out[3]
    assert status == "verified"
    # Importing the module must not import sigstore (that is paid only when a bundle is checked).
    assert module_import < 0.5, module_import
    assert verification < 10, verification
    assert eager == "True"
