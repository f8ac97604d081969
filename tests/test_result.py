"""The result directory as the one contract between stages: written through RebuildRecord, read by
``compare``, ``attest``, ``verify-attestation`` and ``peers`` through the same model; a record that is
missing, truncated, older or foreign is one line and exit 2 for every reader."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.result import ResultDir, ResultDirError
from verify.source.releases import Version


@pytest.fixture
def result(tmp_path: Path, cpython_fixtures: Path) -> Path:
    return make_result(tmp_path / "result", cpython_fixtures / TARBALL)


def test_every_reader_reads_the_same_record(result: Path, tmp_path: Path) -> None:
    record = ResultDir.open(result).read_record()
    # compare: the record's inputs are the side's inputs.
    completed = run_cli("compare", result, result, "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["a"]["inputs"] == record.inputs.to_json()
    # attest, then verify-attestation --result and peers --ours: all through the model.
    private, public = openssl_keypair(tmp_path, "rebuilder")
    assert run_cli("attest", result, "--signing-key", private).returncode == 0
    verified = run_cli(
        "verify-attestation", result / "attestation.intoto.json", "--public-key", public, "--result", result
    )
    assert verified.returncode == 0, verified.stderr
    peers = run_cli("peers", "3.13.5", "--ours", result, "--attestation", result / "attestation.intoto.json",
                    "--public-key", public, "--threshold", "1", "--json")  # fmt: skip
    assert peers.returncode == 0, peers.stderr
    assert json.loads(peers.stdout)["independent"] == 1


BREAKERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (lambda r: (r / "rebuild.json").unlink(), "rebuild record not found"),
    "truncated": (
        lambda r: (r / "rebuild.json").write_bytes((r / "rebuild.json").read_bytes()[:100]),
        "not valid JSON",
    ),
    "older": (
        lambda r: (r / "rebuild.json").write_text('{"format": "cpython-verify/rebuild/v1", "version": "3.13.5"}'),
        "older format cpython-verify/rebuild/v1",
    ),
    "foreign": (lambda r: (r / "rebuild.json").write_text('{"format": "someone-else/v9"}'), "not a cpython-verify"),
    "format-not-a-string": (lambda r: (r / "rebuild.json").write_text('{"format": ["x"]}'), "not a cpython-verify"),
    "wrong-field-type": (
        lambda r: (r / "rebuild.json").write_text(
            json.dumps({**json.loads((r / "rebuild.json").read_text()), "version": 3})
        ),
        "malformed rebuild record: version",
    ),
}


@pytest.mark.parametrize("breaker", sorted(BREAKERS))
@pytest.mark.parametrize("reader", ["attest", "peers", "compare"])
def test_a_broken_record_is_one_line_and_exit_2_for_every_reader(
    result: Path, tmp_path: Path, cpython_fixtures: Path, breaker: str, reader: str
) -> None:
    private, public = openssl_keypair(tmp_path, "k")
    # A valid peer attestation, so that only our broken record can make peers fail.
    peer = make_result(tmp_path / "peer", cpython_fixtures / TARBALL)
    assert run_cli("attest", peer, "--signing-key", private).returncode == 0
    damage, message = BREAKERS[breaker]
    damage(result)
    arguments = {
        "attest": ("attest", result, "--signing-key", private),
        "peers": (
            "peers",
            "3.13.5",
            "--ours",
            result,
            "--attestation",
            peer / "attestation.intoto.json",
            "--public-key",
            public,
        ),
        "compare": ("compare", result, result),
    }[reader]
    completed = run_cli(*arguments)
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], completed.stderr
    assert "Traceback" not in completed.stderr


def test_record_round_trips_through_the_model(result: Path) -> None:
    directory = ResultDir.open(result)
    record, raw = directory.read_record_with_bytes()
    directory.write_record(record)
    assert directory.record_path.read_bytes() == raw, "the record is written deterministically"
    with pytest.raises(ResultDirError, match="not a rebuild result"):
        ResultDir.open(result / "root")


def test_the_record_s_version_is_the_version_value(result: Path) -> None:
    directory = ResultDir.open(result)
    record, raw = directory.read_record_with_bytes()
    assert record.version == Version.parse("3.13.5")
    assert json.loads(raw)["version"] == "3.13.5"  # written as the version's own spelling


@pytest.mark.parametrize("written", ["3.13.05", "banana", " 3.13.5", "2.7.18", "3.13.5\n"])
def test_a_record_whose_version_is_not_a_release_version_is_refused(result: Path, written: str) -> None:
    path = result / "rebuild.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": written}))
    with pytest.raises(ResultDirError, match="malformed rebuild record: version") as caught:
        ResultDir.open(result).read_record()
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="reading as another user needs root to switch users")
def test_a_published_result_is_readable_by_another_user(tmp_path: Path, cpython_fixtures: Path) -> None:
    """The nightly workflow rebuilds with sudo and attests as a normal user: every file of the
    published result must be readable by someone else (0644 files, 0755 directories)."""
    from verify.result.publish import publish

    # pytest's own temporary root is private (0700): work where "nobody" can traverse.
    tmp_path = Path(tempfile.mkdtemp(prefix="cpython-verify-modes-", dir="/tmp"))
    tmp_path.chmod(0o755)
    made = make_result(tmp_path / "cache-entry", cpython_fixtures / TARBALL)
    (made / "logs").mkdir(mode=0o700)
    (made / "logs" / "make.log").write_text("built\n")
    (made / "logs" / "make.log").chmod(0o600)
    record = ResultDir.open(made).read_record()
    (tmp_path / "published").mkdir(mode=0o755)
    out = tmp_path / "published" / "result"
    os.umask(0o077)  # a root shell with a private umask must still publish readable files
    try:
        publish(ResultDir(made), record, out)
    finally:
        os.umask(0o022)
    files = [path for path in out.rglob("*") if path.is_file() and not path.is_symlink()]
    assert files
    for path in [out, *files]:
        completed = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "test", "-r", str(path)], check=False
        )
        assert completed.returncode == 0, f"{path} is not readable by nobody ({oct(path.stat().st_mode)})"
    shutil.rmtree(tmp_path)
