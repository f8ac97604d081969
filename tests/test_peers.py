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
from conftest import run_cli
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.attest import AttestationError, decide
from verify.attest.peers import Claim
from verify.result import ResultDir


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
        assert run_cli("attest", result, "--signing-key", private, "--rebuilder-id", name, "--out", out).returncode == 0
        shutil.copyfile(result / "manifest.json", published / f"{name}.manifest.json")
        paths[name], paths[f"{name}.pub"], paths[f"{name}.result"] = out, public, result
    paths["published"] = published
    return paths


def _trust(fleet: dict[str, Path], *names: str) -> list[str]:
    return [argument for name in names for argument in ("--public-key", str(fleet[f"{name}.pub"]))]


def test_two_of_three_agree(fleet: dict[str, Path]) -> None:
    completed = run_cli(
        "peers",
        "3.13.5",
        "--dir",
        fleet["published"],
        "--threshold",
        "2",
        *_trust(fleet, "alice", "bob", "carol"),
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)
    assert verdict["met"] is True
    assert verdict["independent"] == 3
    assert len(verdict["agreeing"]) == 2
    [dissent] = verdict["dissenting"]
    assert dissent["origin"].endswith("carol.intoto.json")
    assert dissent["files"] == [{"path": "opt/python/lib/python3.13/LICENSE.txt", "changes": ["content"]}]


def test_text_output_names_the_dissenter_and_file(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.5", "--dir", fleet["published"], *_trust(fleet, "alice", "bob", "carol"))
    assert completed.returncode == 0
    assert completed.stdout.startswith("MET: 2 of 3 independent rebuilders agree")
    assert "DISAGREES" in completed.stdout and "opt/python/lib/python3.13/LICENSE.txt" in completed.stdout


def test_threshold_not_met_is_exit_1(fleet: dict[str, Path]) -> None:
    completed = run_cli(
        "peers", "3.13.5", "--dir", fleet["published"], "--threshold", "3", *_trust(fleet, "alice", "bob", "carol")
    )
    assert completed.returncode == 1
    assert completed.stdout.startswith("NOT MET: 2 of 3")


def test_threshold_that_cannot_be_met_says_so(fleet: dict[str, Path]) -> None:
    completed = run_cli(
        "peers", "3.13.5", "--dir", fleet["published"], "--threshold", "4", *_trust(fleet, "alice", "bob", "carol")
    )
    assert completed.returncode == 1
    assert "threshold 4 cannot be met, only 3 independent" in completed.stdout


def test_ours_is_the_reference(fleet: dict[str, Path]) -> None:
    """With carol's result as ours, alice and bob disagree with us: 1 of 3 (us) is below k=2."""
    completed = run_cli(
        "peers",
        "3.13.5",
        "--attestation",
        fleet["alice"],
        "--attestation",
        fleet["bob"],
        "--ours",
        fleet["carol.result"],
        *_trust(fleet, "alice", "bob"),
        "--json",
    )
    assert completed.returncode == 1
    verdict = json.loads(completed.stdout)
    assert verdict["agreeing"] == ["this rebuild"]
    assert len(verdict["dissenting"]) == 2

    completed = run_cli(
        "peers",
        "3.13.5",
        "--attestation",
        fleet["alice"],
        "--attestation",
        fleet["carol"],
        "--ours",
        fleet["bob.result"],
        *_trust(fleet, "alice", "carol"),
        "--json",
    )
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
    completed = run_cli(
        "peers",
        "3.13.5",
        "--attestation",
        fleet["alice"],
        "--attestation",
        copy,
        "--threshold",
        "2",
        *_trust(fleet, "alice"),
    )
    assert completed.returncode == 1
    assert "counted once" in completed.stdout


def test_wrong_version_is_rejected(fleet: dict[str, Path]) -> None:
    completed = run_cli("peers", "3.13.4", "--dir", fleet["published"], "--threshold", "1", *_trust(fleet, "alice"))
    assert completed.returncode == 1
    assert "not 3.13.4" in completed.stdout


def test_a_manifest_that_is_not_the_attested_one_is_ignored(fleet: dict[str, Path], tmp_path: Path) -> None:
    shutil.copyfile(fleet["carol"], tmp_path / "carol.intoto.json")
    shutil.copyfile(fleet["alice.result"] / "manifest.json", tmp_path / "carol.manifest.json")  # a lie
    completed = run_cli(
        "peers",
        "3.13.5",
        "--attestation",
        fleet["alice"],
        "--attestation",
        fleet["bob"],
        "--attestation",
        tmp_path / "carol.intoto.json",
        *_trust(fleet, "alice", "bob", "carol"),
    )
    assert completed.returncode == 0
    assert "is not the attested manifest" in completed.stdout


# --------------------------------------------------------------------------- our own rebuild counts once


@pytest.fixture
def ours(tmp_path: Path, cpython_fixtures: Path) -> dict[str, Path]:
    """Our result directory, attested the way ``check`` does it: into RESULT/attestation.intoto.json."""
    result = make_result(tmp_path / "ours", cpython_fixtures / TARBALL, runner="bwrap-ours")
    private, public = openssl_keypair(tmp_path, "ours")
    assert run_cli("attest", result, "--signing-key", private, "--rebuilder-id", "us").returncode == 0
    return {"result": result, "attestation": result / "attestation.intoto.json", "key": private, "pub": public}


def test_our_own_attestation_is_not_a_second_rebuilder(ours: dict[str, Path]) -> None:
    """Issue #10: `peers --ours R --attestation R/attestation.intoto.json --threshold 2` was MET 2 of 2."""
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--public-key",
        ours["pub"],
        "--threshold",
        "2",
    )
    assert completed.returncode == 1
    assert completed.stdout.startswith("NOT MET: threshold 2 cannot be met, only 1 independent rebuilder(s) counted")
    assert f"note: {ours['attestation']} was recognised as ours" in completed.stdout
    assert "Traceback" not in completed.stderr

    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--public-key",
        ours["pub"],
        "--threshold",
        "2",
        "--json",
    )
    verdict = json.loads(completed.stdout)
    assert verdict["met"] is False
    assert verdict["independent"] == 1
    assert verdict["agreeing"] == ["this rebuild"]
    assert verdict["dissenting"] == [] and verdict["rejected"] == []
    [note] = verdict["notes"]
    assert "it attests our rebuild.json" in note


def test_a_copy_of_our_attestation_elsewhere_is_still_ours(ours: dict[str, Path], tmp_path: Path) -> None:
    """Recognised by the attested rebuild.json digest, not by where the file lies."""
    elsewhere = tmp_path / "published" / "us.intoto.json"
    elsewhere.parent.mkdir()
    shutil.copyfile(ours["attestation"], elsewhere)
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--dir",
        elsewhere.parent,
        "--public-key",
        ours["pub"],
        "--threshold",
        "2",
        "--json",
    )
    assert completed.returncode == 1
    verdict = json.loads(completed.stdout)
    assert verdict["independent"] == 1
    assert "recognised as ours" in verdict["notes"][0]


def test_a_second_attestation_by_our_key_counts_once_as_ours(
    ours: dict[str, Path], tmp_path: Path, cpython_fixtures: Path
) -> None:
    """Our key signs the same tree again, from another result directory (another rebuild.json): still ours."""
    again = make_result(tmp_path / "again", cpython_fixtures / TARBALL, runner="podman-ours")
    second = tmp_path / "again.intoto.json"
    assert run_cli("attest", again, "--signing-key", ours["key"], "--out", second).returncode == 0
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--attestation",
        second,
        "--public-key",
        ours["pub"],
        "--threshold",
        "2",
        "--json",
    )
    assert completed.returncode == 1
    verdict = json.loads(completed.stdout)
    assert verdict["independent"] == 1
    assert verdict["agreeing"] == ["this rebuild"]
    notes = verdict["notes"]
    assert len(notes) == 2 and all("recognised as ours" in note for note in notes)
    assert "it attests our rebuild.json" in notes[0]
    assert "the signer of our own rebuild's attestation" in notes[1]


def test_an_attestation_inside_our_result_directory_is_ours(
    ours: dict[str, Path], tmp_path: Path, cpython_fixtures: Path
) -> None:
    """Whatever it attests and whoever signed it: a file in our result directory is our evidence, not a peer's."""
    other = make_result(tmp_path / "other", cpython_fixtures / TARBALL, runner="podman-other")
    private, public = openssl_keypair(tmp_path, "second-key")
    inside = ours["result"] / "old" / "attestation.intoto.json"
    assert run_cli("attest", other, "--signing-key", private, "--out", inside).returncode == 0
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        inside,
        "--public-key",
        public,
        "--threshold",
        "2",
        "--json",
    )
    assert completed.returncode == 1
    verdict = json.loads(completed.stdout)
    assert verdict["independent"] == 1
    [note] = verdict["notes"]
    assert "it lies inside our result directory" in note


def test_an_independent_peer_still_meets_the_threshold_with_ours(ours: dict[str, Path], fleet: dict[str, Path]) -> None:
    """alice built the same tree with her own key: 2 of 2, and our own attestation is noted, not counted."""
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--attestation",
        fleet["alice"],
        "--public-key",
        ours["pub"],
        *_trust(fleet, "alice"),
        "--threshold",
        "2",
        "--json",
    )
    assert completed.returncode == 0, completed.stdout
    verdict = json.loads(completed.stdout)
    assert verdict["independent"] == 2
    assert verdict["agreeing"][0] == "this rebuild" and verdict["agreeing"][1].startswith("key:")
    assert any("recognised as ours" in note for note in verdict["notes"])
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--attestation",
        fleet["alice"],
        "--public-key",
        ours["pub"],
        *_trust(fleet, "alice"),
        "--threshold",
        "3",
    )
    assert completed.returncode == 1
    assert "only 2 independent rebuilder(s) counted" in completed.stdout


def test_an_attestation_of_our_result_with_another_tree_is_rejected(ours: dict[str, Path]) -> None:
    """Our result changed after it was attested: the attestation is ours, and says another tree."""
    (ours["result"] / "root" / "opt" / "python" / "lib" / "python3.13" / "os.py").write_text("import evil\n")
    from verify.manifest import Manifest, read_manifest, scan_tree, write_manifest

    manifest = ours["result"] / "manifest.json"
    digest = write_manifest(
        Manifest(inputs=read_manifest(manifest).inputs, entries=scan_tree(ours["result"] / "root")), manifest
    )
    # Changed consistently (the record names the new manifest): a whole result, but not the attested one.
    result = ResultDir(ours["result"])
    result.write_record(result.read_record().model_copy(update={"manifest_sha256": digest}))
    completed = run_cli(
        "peers",
        "3.13.5",
        "--ours",
        ours["result"],
        "--attestation",
        ours["attestation"],
        "--public-key",
        ours["pub"],
        "--threshold",
        "1",
        "--json",
    )
    verdict = json.loads(completed.stdout)
    assert verdict["independent"] == 1
    [rejected] = verdict["rejected"]
    assert "recognised as ours" in rejected["reason"]
    assert "the result changed after it was attested" in rejected["reason"]


def test_decide_counts_rebuilders_by_identity() -> None:
    tree, other = "1" * 64, "2" * 64
    ours = Claim("R", "this rebuild", "3.13.5", "default", tree, rebuild_sha256="a" * 64, location=Path("/r"))
    mine = Claim(
        "/r/attestation.intoto.json",
        "key:us",
        "3.13.5",
        "default",
        tree,
        rebuild_sha256="a" * 64,
        location=Path("/r/attestation.intoto.json"),
    )
    inside = Claim(
        "/r/x/old.intoto.json",
        "key:us2",
        "3.13.5",
        "default",
        tree,
        rebuild_sha256="b" * 64,
        location=Path("/r/x/old.intoto.json"),
    )
    also_us = Claim("/p/us.intoto.json", "key:us", "3.13.5", "default", tree, rebuild_sha256="c" * 64)
    peer = Claim("/p/alice.intoto.json", "key:alice", "3.13.5", "default", tree, rebuild_sha256="d" * 64)
    twin = Claim("/p/alice-ci.intoto.json", "ci (issuer)", "3.13.5", "default", tree, rebuild_sha256="d" * 64)
    dissent = Claim("/p/carol.intoto.json", "key:carol", "3.13.5", "default", other, rebuild_sha256="e" * 64)
    claims = [mine, inside, also_us, peer, twin, dissent]

    verdict = decide(claims, version="3.13.5", profile="default", threshold=2, ours=ours)
    assert verdict.met
    assert verdict.agreeing == ("this rebuild", "key:alice + ci (issuer)")
    assert [d.signer for d in verdict.dissenting] == ["key:carol"]
    assert verdict.independent == 3
    assert len([note for note in verdict.notes if "recognised as ours" in note]) == 3
    assert any("one and the same rebuild result" in note for note in verdict.notes)

    alone = decide([mine, also_us, inside], version="3.13.5", profile="default", threshold=2, ours=ours)
    assert not alone.met and alone.independent == 1
    # Without --ours nothing is ours, but one signer and one rebuild.json are still one rebuilder each.
    anonymous = decide([mine, also_us, peer, twin], version="3.13.5", profile="default", threshold=3)
    assert anonymous.independent == 2 and not anonymous.met


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
    completed = run_cli(
        "peers",
        "3.13.5",
        *[a for n in ("alice", "bob", "carol") for a in ("--attestation", f"{served}/{n}.intoto.json")],
        *_trust(fleet, "alice", "bob", "carol"),
        "--json",
    )
    assert completed.returncode == 0, completed.stderr
    verdict = json.loads(completed.stdout)
    assert verdict["dissenting"][0]["files"][0]["path"] == "opt/python/lib/python3.13/LICENSE.txt"
    completed = run_cli("peers", "3.13.5", "--attestation", f"{served}/nobody.intoto.json", *_trust(fleet, "alice"))
    assert completed.returncode == 1
    assert "not found" in completed.stdout


def test_decide_is_pure_and_checks_its_threshold() -> None:
    claims = [
        Claim("a", "key:a", "3.13.5", "default", "1" * 64),
        Claim("b", "key:b", "3.13.5", "default", "1" * 64),
        Claim("c", "key:c", "3.13.5", "default", "2" * 64),
    ]
    verdict = decide(claims, version="3.13.5", profile="default", threshold=2)
    assert verdict.met and verdict.agreeing == ("key:a", "key:b")
    assert verdict.dissenting[0].differences is None  # no manifests: files unknown, not invented
    with pytest.raises(AttestationError):
        decide(claims, version="3.13.5", profile="default", threshold=0)
    split = [*claims, Claim("c2", "key:c", "3.13.5", "default", "3" * 64)]
    verdict = decide(split, version="3.13.5", profile="default", threshold=2)
    assert "key:c" not in verdict.agreeing and len(verdict.rejected) == 2
