"""Interop: what `attest` writes is read by other tools' own code, not only by ours.

* securesystemslib (the DSSE and key library of in-toto and TUF) verifies our offline envelopes from
  the public key alone: ``Envelope.verify`` matches signatures by key id, so ours must be its key id.
* in-toto-attestation's own protobuf ``Statement`` type parses and validates both Statements, and
  its SLSA ``Provenance`` message parses our provenance predicate strictly (no unknown field, RFC 3339
  times, the right types everywhere).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from test_attest_support import (
    FINISHED_AT,
    RECIPE_SHA256,
    ROOTFS_SHA256,
    STARTED_AT,
    TARBALL,
    TARBALL_SHA256,
    make_result,
    openssl_keypair,
)

from verify.attest import TrustedKeys, load_public_key, verify_attestation_file
from verify.attest.provenance import builder_uri
from verify.attest.verification import VerifiedAttestation, VerifiedProvenance
from verify.manifest import Manifest, manifest_digest, scan_tree

PROJECT = "https://github.com/cpython-verify/cpython-verify"


@pytest.fixture(scope="module", params=["ed25519", "p256"])
def attested(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path):
    """A result attested with an openssl key (both supported algorithms): (result, public key, verdict, provenance)."""
    base = tmp_path_factory.mktemp(request.param)
    differing = [
        {
            "path": "opt/python/lib/python3.13/os.py",
            "kind": "python-source",
            "changes": ["content"],
            "category": "build-path",
            "explanation": "the build directory is recorded in a string",
        }
    ]
    result = make_result(base / "result", cpython_fixtures / TARBALL, reproducible=False, differences=differing)
    private, public = openssl_keypair(base, "packager", request.param)
    completed = run_cli("attest", result, "--signing-key", private, "--rebuilder-id", "rebuilder.example.org")
    assert completed.returncode == 0, completed.stderr
    verdict, provenance = result / "attestation.intoto.json", result / "attestation.provenance.intoto.json"
    assert f"provenance: {provenance}" in completed.stdout
    return result, public, verdict, provenance


def _statement(path: Path) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
    return statement


@pytest.mark.parametrize("which", ["verdict", "provenance"])
def test_securesystemslib_verifies_the_envelope_from_the_public_key_alone(attested, which: str) -> None:
    _, public, verdict, provenance = attested
    key = SSlibKey.from_crypto(load_pem_public_key(public.read_bytes()))
    envelope = Envelope.from_dict(json.loads((verdict if which == "verdict" else provenance).read_text()))
    assert [signature.keyid for signature in envelope.signatures.values()] == [key.keyid]
    accepted = envelope.verify([key], 1)
    assert list(accepted) == [key.keyid]
    assert json.loads(envelope.pae().split(b" ", 4)[4])["_type"] == "https://in-toto.io/Statement/v1"


def test_securesystemslib_refuses_another_key(attested, tmp_path: Path) -> None:
    from securesystemslib.exceptions import VerificationError

    _, _, verdict, _ = attested
    _, other = openssl_keypair(tmp_path, "other")
    envelope = Envelope.from_dict(json.loads(verdict.read_text()))
    with pytest.raises(VerificationError):
        envelope.verify([SSlibKey.from_crypto(load_pem_public_key(other.read_bytes()))], 1)


@pytest.mark.parametrize("which", ["verdict", "provenance"])
def test_in_toto_attestation_statement_type_validates_both(attested, which: str) -> None:
    _, _, verdict, provenance = attested
    document = _statement(verdict if which == "verdict" else provenance)
    parsed = json_format.ParseDict(document, statement_pb2.Statement())
    statement = Statement.copy_from_pb(parsed)
    statement.validate()  # raises ValueError on a malformed Statement
    assert statement.pb.predicate_type == (
        "https://slsa.dev/provenance/v1" if which == "provenance" else f"{PROJECT}/attestation/rebuild-verdict/v1"
    )
    assert [subject.name for subject in statement.pb.subject] == [
        "install-tree",
        "opt/python/bin/python3.13",
        "opt/python/lib/libpython3.13.so.1.0",
    ]


def test_provenance_is_slsa_v1_as_in_toto_attestation_parses_it(attested) -> None:
    result, _, _, provenance_path = attested
    predicate = _statement(provenance_path)["predicate"]
    # Strict: an unknown field, a wrong type or a timestamp that is not RFC 3339 raises ParseError.
    provenance = json_format.ParseDict(predicate, provenance_pb2.Provenance())
    definition, run = provenance.build_definition, provenance.run_details
    for dependency in (*definition.resolved_dependencies, *run.byproducts):
        ResourceDescriptor.copy_from_pb(dependency).validate()

    assert definition.build_type == f"{PROJECT}/rebuild/v1"
    assert json_format.MessageToDict(definition.external_parameters) == {
        "version": "3.13.5",
        "profile": "default",
        "variations": ["build_path", "umask"],
    }
    dependencies = {item.name: item for item in definition.resolved_dependencies}
    tarball = dependencies[TARBALL]
    assert tarball.digest["sha256"] == TARBALL_SHA256
    assert tarball.uri == f"https://www.python.org/ftp/python/3.13.5/{TARBALL}"
    signers = json_format.MessageToDict(tarball.annotations)["verifiedBy"]
    assert {(s["kind"], s["signer"]) for s in signers} == {
        ("openpgp", "7169605F62C751356D054A26A821E680E5FA6305"),
        ("sigstore", "thomas@python.org"),
    }
    assert dependencies["recipes/cpython-3.13.toml"].digest["sha256"] == RECIPE_SHA256
    assert dependencies["rootfs/bookworm-cpython.tar"].digest["sha256"] == ROOTFS_SHA256
    assert run.builder.id == "urn:cpython-verify:rebuilder:rebuilder.example.org"
    assert run.metadata.started_on.ToJsonString() == STARTED_AT
    assert run.metadata.finished_on.ToJsonString() == FINISHED_AT
    byproducts = {item.name: item.digest["sha256"] for item in run.byproducts}
    assert set(byproducts) == {"manifest.json", "rebuild.json", "source-verdict.json"}

    # The tarball is an input only: never a subject of either Statement.
    statement = _statement(provenance_path)
    assert TARBALL not in {subject["name"] for subject in statement["subject"]}
    # The install tree subject is the tree's canonical manifest with empty inputs, recomputed here.
    tree = next(subject for subject in statement["subject"] if subject["name"] == "install-tree")
    assert tree["digest"] == {"sha256": manifest_digest(Manifest(entries=scan_tree(result / "root")))}


def test_verdict_carries_the_comparators_category_and_explanation(attested) -> None:
    _, public, verdict, _ = attested
    verified = verify_attestation_file(verdict, TrustedKeys((load_public_key(public),)))
    assert isinstance(verified, VerifiedAttestation)
    difference = verified.predicate.result.differences[0]
    assert (difference.category, difference.explanation) == (
        "build-path",
        "the build directory is recorded in a string",
    )
    assert verified.predicate.rebuilder.id == "urn:cpython-verify:rebuilder:rebuilder.example.org"
    assert verified.predicate.rebuilder.name == "rebuilder.example.org"


def test_verify_attestation_reads_the_provenance_and_checks_the_tree(attested, tmp_path: Path) -> None:
    result, public, _, provenance = attested
    verified = verify_attestation_file(provenance, TrustedKeys((load_public_key(public),)))
    assert isinstance(verified, VerifiedProvenance)
    assert (verified.version, verified.profile) == ("3.13.5", "default")
    completed = run_cli("verify-attestation", provenance, "--public-key", public, "--result", result)
    assert completed.returncode == 0, completed.stderr
    assert "SLSA provenance" in completed.stdout and "is the attested tree" in completed.stdout

    # The source tarball is checked as the attested input (a resolved dependency), never as a subject.
    forged = tmp_path / TARBALL
    forged.write_bytes(b"not the release")
    completed = run_cli("verify-attestation", provenance, "--public-key", public, "--artifact", forged)
    assert completed.returncode == 1
    assert "the attested source tarball: an input" in completed.stdout and "subject digest mismatch" in completed.stderr

    copy = tmp_path / "copy"
    shutil.copytree(result, copy, symlinks=True)
    (copy / "root" / "opt" / "python" / "lib" / "python3.13" / "extra.py").write_text("x = 1\n")
    completed = run_cli("verify-attestation", provenance, "--public-key", public, "--result", copy)
    assert completed.returncode == 1
    assert "extra" in completed.stderr and "not as attested" in completed.stderr


def test_the_retired_predicate_is_one_line_exit_2(attested, tmp_path: Path) -> None:
    from verify.attest import load_private_key, sign_offline

    _, public, verdict, _ = attested
    statement = _statement(verdict)
    statement["predicateType"] = "https://cpython-verify.dev/attestation/rebuild-verdict/v1"
    old = tmp_path / "old.intoto.json"
    old.write_bytes(sign_offline(json.dumps(statement).encode(), load_private_key(public.with_suffix(".pem"))))
    completed = run_cli("verify-attestation", old, "--public-key", public)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "retired form" in completed.stderr and "re-attest" in completed.stderr


@pytest.mark.parametrize(
    ("configured", "uri"),
    [
        ("rebuilder.example.org", "urn:cpython-verify:rebuilder:rebuilder.example.org"),
        ("Alice's laptop", "urn:cpython-verify:rebuilder:Alice%27s%20laptop"),
        ("https://github.com/o/r/actions/runs/42", "https://github.com/o/r/actions/runs/42"),
        ("urn:example:builder:7", "urn:example:builder:7"),
    ],
)
def test_builder_id_is_always_a_uri(configured: str, uri: str) -> None:
    assert builder_uri(configured) == uri
