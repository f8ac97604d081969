"""Slow: the main job end to end on the real 3.13.5 release, as the README runs it.

check = verify the signed source -> rebuild twice in the pinned environment -> compare with a peer ->
sign an attestation; then the attestation is checked by a third party's command and fails after any
byte change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

# The release tier (docs/testing.md): check builds 3.13.5 twice (its second, varied build is a second real
# release build, which CI does not make). CI runs the same assertions on the tiny release
# (tests/test_check_tiny.py) and the real 3.13.5's default build through rebuild + attest (test_tool_image).
pytestmark = [pytest.mark.slow, pytest.mark.release]


def test_check_verifies_rebuilds_compares_and_attests(
    tmp_path: Path, cpython_fixtures: Path, shared_rebuild_cache: Path
) -> None:
    # The environment cache is shared with the other slow tests (the rootfs is built once). The rebuild
    # cache is the session's shared one: in the release tier this test is the first to use it, so both
    # builds really run here, and the later release tests (the local workflow, test_rebuild_real's fixed
    # build path) reuse them.
    key = tmp_path / "rebuilder.pem"
    first = tmp_path / "first"
    args = ("check", "3.13.5", "--from", cpython_fixtures, "--offline", "--signing-key", key, "--create-key",
            "--rebuild-cache", shared_rebuild_cache)  # fmt: skip
    result = run_cli(*args, "--out", first, "--json", timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "cpython-verify/check/v1" and summary["ok"] is True
    assert summary["source"]["sha256"] == "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
    assert summary["rebuild"]["reproducible"] is True, summary["rebuild"]
    assert summary["attestation"]["signed"] and summary["attestation"]["new_key"]
    # The recipe's own record of where its profile was measured (docs/reproducibility.md, "Recipe status").
    assert summary["recipe"] == {"profile": "default", "measured_on": ["3.13.5"]}
    assert json.loads((first / "check.json").read_text()) == summary
    # The two builds' comparison, as compare's HTML report in the record's words.
    report = (first / "compare.html").read_text()
    assert "reproducible: the build varied in cpus, hostname, locale, time, timezone is identical" in report

    # A second rebuilder (here: the same machine, from its cache) compares with the first as a peer.
    second = run_cli(*args, "--out", tmp_path / "second", "--peer", first, "--json", timeout=3600)
    assert second.returncode == 0, second.stdout + second.stderr
    peers = json.loads(second.stdout)["peers"]
    assert [peer["identical"] for peer in peers] == [True]

    # A third party checks the attestation with the public key and the published result.
    attestation = first / "attestation.intoto.json"
    public_key = Path(str(key) + ".pub")
    checked = run_cli("verify-attestation", attestation, "--public-key", public_key, "--result", first)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = bytearray(attestation.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.intoto.json"
    tampered.write_bytes(bytes(data))
    rejected = run_cli("verify-attestation", tampered, "--public-key", public_key, "--result", first)
    assert rejected.returncode in (1, 2), rejected.stdout + rejected.stderr
    assert "Traceback" not in rejected.stdout + rejected.stderr
