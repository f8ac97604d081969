"""The main job end to end on the tiny release, in CI: what tests/test_check_real.py checks on the real 3.13.5.

check = verify the signed source -> rebuild twice in the pinned environment -> compare with a peer ->
sign an attestation; then the attestation is checked by a third party's command and fails after any
byte change. The real 3.13.5's check builds CPython twice, which only the release tier does
(docs/testing.md); here the release is the tiny project dressed as 3.13.5 (test_cache_faults.py's
``tiny_release``: a real tarball, a real OpenPGP signature, its own recipe), built by the shipped bwrap
runner in a real rootfs tarball, so every stage but the build's size is the one a real release meets.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conftest import run_cli
from test_cache_faults import TARBALL, VERSION, TinyRelease, tiny_release

from verify.chain import CHECK_VARIATIONS

__all__ = ["tiny_release"]  # the fixture, imported to be used here


def test_check_verifies_rebuilds_compares_with_a_peer_and_attests_the_tiny_release(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    key, cache, first = tmp_path / "rebuilder.pem", tmp_path / "cache", tmp_path / "first"
    args = (
        "check",
        VERSION,
        *tiny_release.source_args(),
        "--rootfs",
        tiny_release.rootfs,
        "--signing-key",
        key,
        "--create-key",
    )
    result = run_cli(*args, "--out", first, "--json", cache=cache, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "cpython-verify/check/v1" and summary["ok"] is True
    with (tiny_release.distfiles / TARBALL).open("rb") as stream:
        assert summary["source"]["sha256"] == hashlib.file_digest(stream, "sha256").hexdigest()
    assert summary["rebuild"]["reproducible"] is True, summary["rebuild"]
    assert summary["attestation"]["signed"] and summary["attestation"]["new_key"]
    assert summary["recipe"]["profile"] == "default"
    assert json.loads((first / "check.json").read_text()) == summary
    # The two builds' comparison, as compare's HTML report in the record's words.
    report = (first / "compare.html").read_text()
    varied = ", ".join(sorted(CHECK_VARIATIONS))
    assert f"reproducible: the build varied in {varied} is identical" in report

    # A second rebuilder (here: the same machine, from its cache) compares with the first as a peer.
    second = run_cli(*args, "--out", tmp_path / "second", "--peer", first, "--json", cache=cache, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "configure" not in second.stderr, "the second check rebuilt instead of using the cache"
    peers = json.loads(second.stdout)["peers"]
    assert [peer["identical"] for peer in peers] == [True]

    # A third party checks the attestation with the public key and the published result.
    attestation = first / "attestation.intoto.json"
    public_key = Path(f"{key}.pub")
    checked = run_cli("verify-attestation", attestation, "--public-key", public_key, "--result", first)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = bytearray(attestation.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.intoto.json"
    tampered.write_bytes(bytes(data))
    rejected = run_cli("verify-attestation", tampered, "--public-key", public_key, "--result", first)
    assert rejected.returncode in (1, 2), rejected.stdout + rejected.stderr
    assert "Traceback" not in rejected.stdout + rejected.stderr


def test_a_rebuild_reads_its_recipe_once_for_the_source_stage_and_the_build(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    """The chain loads the recipe once and hands it down: the source stage and the build are judged by the
    same bytes, read once (counted as the process opens the file, through a real rebuild of the tiny release)."""
    import os
    import sys

    from verify.chain import RebuildRequest, run_rebuild
    from verify.source.assembly import SourceOptions
    from verify.source.releases import Version

    recipe_file = os.fspath(tiny_release.recipes / "cpython-3.13.toml")
    opened: list[str] = []
    counting = [True]

    def count_opens(event: str, args: tuple[object, ...]) -> None:
        path = args[0] if event == "open" and counting[0] else None
        if isinstance(path, str | bytes | os.PathLike) and os.fsdecode(path) == recipe_file:
            opened.append(event)

    sys.addaudithook(count_opens)  # audit hooks cannot be removed: this one stops counting when the test ends
    try:
        source = SourceOptions(
            from_dirs=(tiny_release.distfiles,),
            offline=True,
            recipes_dir=tiny_release.recipes,
            cache_dir=tmp_path / "cache",
        )
        request = RebuildRequest(
            version=Version.parse(VERSION), source=source, rootfs=tiny_release.rootfs, out_dir=tmp_path / "out"
        )
        outcome = run_rebuild(request)
    finally:
        counting[0] = False
    assert outcome.source.verified and str(outcome.record.version) == VERSION
    assert (tmp_path / "out" / "rebuild.json").is_file()
    assert len(opened) == 1, f"the recipe was read {len(opened)} times for one build"
