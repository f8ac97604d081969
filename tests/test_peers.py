"""``peers``: k-of-n agreement over real, signed attestations from independent (keyed) rebuilders."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_attest_support import TARBALL, make_result, openssl_keypair, run_cli

from verify.attest import AttestationError, decide
from verify.attest.peers import Claim


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path) -> dict[str, Path]:
    """Three rebuilders with their own keys: alice and bob build the same tree (different runners),
    carol's tree differs in one file. Each publishes NAME.intoto.json + NAME.manifest.json."""
    base = tmp_path_factory.mktemp("fleet")
    published = base / "published"
    published.mkdir()
    paths: dict[str, Path] = {}
    for name, variant, runner in (("alice", "", "bwrap"), ("bob", "", "podman"), ("carol", " (patched)", "bwrap")):
        result = make_result(base / name, cpython_fixtures / TARBALL, variant=variant, runner=runner)
        private, public = openssl_keypair(base, name)
        out = published / f"{name}.intoto.json"
        assert run_cli("attest", result, "--key", private, "--rebuilder-id", name, "--out", out).returncode == 0
        shutil.copyfile(result / "manifest.json", published / f"{name}.manifest.json")
        paths[name], paths[f"{name}.pub"], paths[f"{name}.result"] = out, public, result
    paths["published"] = published
    return paths


def _trust(fleet: dict[str, Path], *names: str) -> list[str]:
    return [argument for name in names for argument in ("--key", str(fleet[f"{name}.pub"]))]


def test_two_of_three_agree(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], "--threshold", "2",
                        *_trust(fleet, "alice", "bob", "carol"), "--json")
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)
    assert verdict["met"] is True
    assert verdict["independent"] == 3
    assert len(verdict["agreeing"]) == 2
    [dissent] = verdict["dissenting"]
    assert dissent["origin"].endswith("carol.intoto.json")
    assert dissent["files"] == [{"path": "opt/python/lib/python3.13/LICENSE.txt", "change": "content"}]


def test_text_output_names_the_dissenter_and_file(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], *_trust(fleet, "alice", "bob", "carol"))
    assert completed.returncode == 0
    assert completed.stdout.startswith("MET: 2 of 3 independent rebuilders agree")
    assert "DISAGREES" in completed.stdout and "opt/python/lib/python3.13/LICENSE.txt" in completed.stdout


def test_threshold_not_met_is_exit_1(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], "--threshold", "3",
                        *_trust(fleet, "alice", "bob", "carol"))
    assert completed.returncode == 1
    assert completed.stdout.startswith("NOT MET: 2 of 3")


def test_threshold_that_cannot_be_met_says_so(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], "--threshold", "4",
                        *_trust(fleet, "alice", "bob", "carol"))
    assert completed.returncode == 1
    assert "threshold 4 cannot be met, only 3 independent" in completed.stdout


def test_ours_is_the_reference(fleet: dict[str, Path]) -> None:
    """With carol's result as ours, alice and bob disagree with us: 1 of 3 (us) is below k=2."""
    completed = run_cli("peers", "3.13.5", "--attestation", fleet["alice"], "--attestation", fleet["bob"],
                        "--ours", fleet["carol.result"], *_trust(fleet, "alice", "bob"), "--json")
    assert completed.returncode == 1
    verdict = json.loads(completed.stdout)
    assert verdict["agreeing"] == ["this rebuild"]
    assert len(verdict["dissenting"]) == 2

    completed = run_cli("peers", "3.13.5", "--attestation", fleet["alice"], "--attestation", fleet["carol"],
                        "--ours", fleet["bob.result"], *_trust(fleet, "alice", "carol"), "--json")
    assert completed.returncode == 0
    verdict = json.loads(completed.stdout)
    assert verdict["agreeing"][0] == "this rebuild" and len(verdict["agreeing"]) == 2  # bob's tree = alice's
    assert verdict["dissenting"][0]["origin"].endswith("carol.intoto.json")


def test_untrusted_signers_are_rejected_not_counted(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], *_trust(fleet, "alice", "carol"), "--json")
    verdict = json.loads(completed.stdout)
    assert completed.returncode == 1  # alice vs carol: a tie, no majority
    assert verdict["reference_tree_sha256"] is None
    assert [r["origin"].endswith("bob.intoto.json") for r in verdict["rejected"]] == [True]
    assert "no signature verifies" in verdict["rejected"][0]["reason"]


def test_the_same_signer_counts_once(fleet: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "alice-again.intoto.json"
    shutil.copyfile(fleet["alice"], copy)
    completed = run_cli("peers", "3.13.5", "--attestation", fleet["alice"], "--attestation", copy,
                        "--threshold", "2", *_trust(fleet, "alice"))
    assert completed.returncode == 1
    assert "counted once" in completed.stdout


def test_wrong_version_is_rejected(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.4", "--dir", fleet["published"], "--threshold", "1", *_trust(fleet, "alice"))
    assert completed.returncode == 1
    assert "not 3.13.4" in completed.stdout


def test_a_manifest_that_is_not_the_attested_one_is_ignored(fleet: dict[str, Path], tmp_path: Path) -> None:
    shutil.copyfile(fleet["carol"], tmp_path / "carol.intoto.json")
    shutil.copyfile(fleet["alice.result"] / "manifest.json", tmp_path / "carol.manifest.json")  # a lie
    completed = run_cli("peers", "3.13.5", "--attestation", fleet["alice"], "--attestation", fleet["bob"],
                        "--attestation", tmp_path / "carol.intoto.json", *_trust(fleet, "alice", "bob", "carol"))
    assert completed.returncode == 0
    assert "is not the attested manifest" in completed.stdout


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(fleet: dict[str, Path]) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(fleet["published"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_attestations_by_url(fleet: dict[str, Path], served: str) -> None:
    completed = run_cli("peers", "3.13.5", *[a for n in ("alice", "bob", "carol")
                                             for a in ("--attestation", f"{served}/{n}.intoto.json")],
                        *_trust(fleet, "alice", "bob", "carol"), "--json")
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)
    assert verdict["dissenting"][0]["files"][0]["path"] == "opt/python/lib/python3.13/LICENSE.txt"
    completed = run_cli("peers", "3.13.5", "--attestation", f"{served}/nobody.intoto.json", *_trust(fleet, "alice"))
    assert completed.returncode == 1
    assert "not found" in completed.stdout


def test_decide_is_pure_and_checks_its_threshold() -> None:
    claims = [Claim("a", "key:a", "3.13.5", "default", "1" * 64), Claim("b", "key:b", "3.13.5", "default", "1" * 64),
              Claim("c", "key:c", "3.13.5", "default", "2" * 64)]
    verdict = decide(claims, version="3.13.5", profile="default", threshold=2)
    assert verdict.met and verdict.agreeing == ("key:a", "key:b")
    assert verdict.dissenting[0].differences is None  # no manifests: files unknown, not invented
    with pytest.raises(AttestationError):
        decide(claims, version="3.13.5", profile="default", threshold=0)
    split = [*claims, Claim("c2", "key:c", "3.13.5", "default", "3" * 64)]
    verdict = decide(split, version="3.13.5", profile="default", threshold=2)
    assert "key:c" not in verdict.agreeing and len(verdict.rejected) == 2
