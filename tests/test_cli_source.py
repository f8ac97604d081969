"""``cpython-verify source`` end to end, as a user runs it: real files, real gpg, real Sigstore.

Every bad input must give a one-line reason, a non-zero exit code and no traceback.
"""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, run_cli

RELEASE = "Python-3.13.5.tar.xz"


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    combined = result.stdout + result.stderr
    assert result.returncode == code, combined
    assert "Traceback" not in combined
    assert fragment in combined, combined


@pytest.fixture
def distfiles(tmp_path: Path, cpython_fixtures: Path) -> Path:
    """A packager's distfiles directory holding the real 3.13.5 tarball and both real signatures."""
    directory = tmp_path / "distfiles"
    directory.mkdir()
    for name in (RELEASE, RELEASE + ".asc", RELEASE + ".sigstore"):
        shutil.copyfile(cpython_fixtures / name, directory / name)
    return directory


def test_real_release_verifies_with_both_signatures_named(distfiles: Path, tmp_path: Path) -> None:
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", "--json", cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["format"] == "cpython-verify/source-verdict/v1"
    assert verdict["verified"] is True
    assert verdict["tarball"]["sha256"] == "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
    signatures = {item["kind"]: item for item in verdict["signatures"]}
    assert signatures["openpgp"]["status"] == "verified"
    assert signatures["openpgp"]["signer"] == "7169605F62C751356D054A26A821E680E5FA6305"
    assert signatures["openpgp"]["signed_at"].startswith("2025-06-11")
    assert any("expired" in note for note in signatures["openpgp"]["notes"])
    assert signatures["sigstore"]["status"] == "verified"
    assert signatures["sigstore"]["signer"] == "thomas@python.org"
    assert verdict["patchlevel"] == {"found": "3.13.5", "ok": True}


def test_text_verdict_names_signers(distfiles: Path, tmp_path: Path) -> None:
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    assert "Thomas Wouters" in result.stdout
    assert "thomas@python.org" in result.stdout
    assert "VERIFIED: CPython 3.13.5" in result.stdout


def test_digest_claims_agree_and_disagree(distfiles: Path, tmp_path: Path, cpython_fixtures: Path) -> None:
    metadata = cpython_fixtures / "release-metadata" / "3.13.5.json"
    good = run_cli(
        "source",
        "3.13.5",
        "--from",
        distfiles,
        "--offline",
        "--release-metadata",
        metadata,
        "--json",
        cache=tmp_path / "c",
    )
    assert good.returncode == 0, good.stderr
    assert all(check["agrees"] for check in json.loads(good.stdout)["digests"])
    bad = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--sha256", "peer-a=" + "0" * 64, cache=tmp_path / "c"
    )
    assert_clean_failure(bad, 1, "sha256 disagrees with peer-a (--sha256)")


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_flipped_byte_fails_both_signatures(distfiles: Path, tmp_path: Path) -> None:
    _flip_byte(distfiles / RELEASE, 10_000_000)
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", "--json", cache=tmp_path / "c")
    assert_clean_failure(result, 1, '"verified": false')
    statuses = {item["kind"]: item["status"] for item in json.loads(result.stdout)["signatures"]}
    assert statuses == {"openpgp": "failed", "sigstore": "failed"}


def test_truncated_tarball_fails(distfiles: Path, tmp_path: Path) -> None:
    tarball = distfiles / RELEASE
    tarball.write_bytes(tarball.read_bytes()[:1_000_000])
    assert_clean_failure(
        run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c"), 1, "BAD signature"
    )


def test_renamed_older_release_is_caught_by_patchlevel(distfiles: Path, tmp_path: Path) -> None:
    """A correctly signed tarball of another release, renamed: signatures bind bytes, not names."""
    for name in list(distfiles.iterdir()):
        name.rename(distfiles / name.name.replace("3.13.5", "3.13.4"))
    result = run_cli("source", "3.13.4", "--from", distfiles, "--offline", cache=tmp_path / "c")
    assert_clean_failure(result, 1, "Include/patchlevel.h says 3.13.5, requested 3.13.4")


def test_signature_for_another_release(distfiles: Path, tmp_path: Path, cpython_fixtures: Path) -> None:
    shutil.copyfile(cpython_fixtures / "Python-3.13.10.tar.xz.sigstore", distfiles / (RELEASE + ".sigstore"))
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c")
    assert_clean_failure(result, 1, "sigstore: ")
    assert "NOT VERIFIED" in result.stdout


def test_bundle_for_another_file(distfiles: Path, tmp_path: Path, cpython_fixtures: Path) -> None:
    shutil.copyfile(cpython_fixtures / "Python-3.13.5.tgz.sigstore", distfiles / (RELEASE + ".sigstore"))
    assert_clean_failure(
        run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c"), 1, "NOT VERIFIED"
    )


def _recipes_with(tmp_path: Path, old: str, new: str) -> Path:
    recipes = tmp_path / "recipes"
    shutil.copytree(PROJECT_ROOT / "recipes", recipes)
    path = recipes / "cpython-3.13.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return recipes


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('identity = "thomas@python.org"', 'identity = "hugo@python.org"', "sigstore: "),
        ('issuer = "https://accounts.google.com"', 'issuer = "https://github.com/login/oauth"', "sigstore: "),
    ],
    ids=["wrong-identity", "wrong-issuer"],
)
def test_wrong_sigstore_identity_or_issuer(distfiles: Path, tmp_path: Path, old: str, new: str, fragment: str) -> None:
    recipes = _recipes_with(tmp_path, old, new)
    result = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--recipes", recipes, "--json", cache=tmp_path / "c"
    )
    assert_clean_failure(result, 1, '"verified": false')
    evidence = {item["kind"]: item for item in json.loads(result.stdout)["signatures"]}
    assert evidence["sigstore"]["status"] == "failed"
    assert evidence["openpgp"]["status"] == "verified"


def test_wrong_series_key_is_a_failure(distfiles: Path, tmp_path: Path, keys_fixtures: Path) -> None:
    """Pin 3.13 to Pablo Galindo Salgado's key (the 3.10/3.11 signer): Thomas Wouters' signature must fail."""
    recipes = _recipes_with(
        tmp_path, "7169605F62C751356D054A26A821E680E5FA6305", "A035C8C19219BA821ECEA86B64E628F8D684696D"
    )
    result = run_cli(
        "source",
        "3.13.5",
        "--from",
        distfiles,
        "--offline",
        "--recipes",
        recipes,
        "--keys",
        keys_fixtures,
        cache=tmp_path / "c",
    )
    assert_clean_failure(result, 1, "openpgp: ")
    assert "7169605F62C751356D054A26A821E680E5FA6305" in result.stdout


def test_unknown_key_and_missing_key_material(distfiles: Path, tmp_path: Path) -> None:
    recipes = _recipes_with(tmp_path, 'keys = ["keys/thomas-wouters.debian-trixie-python3.13.asc"]', "keys = []")
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", "--recipes", recipes, cache=tmp_path / "c")
    assert_clean_failure(result, 1, "--keys")


def test_malformed_asc_and_bundle(distfiles: Path, tmp_path: Path) -> None:
    (distfiles / (RELEASE + ".asc")).write_text("-----BEGIN PGP SIGNATURE-----\ngarbage\n-----END PGP SIGNATURE-----\n")
    (distfiles / (RELEASE + ".sigstore")).write_text('{"mediaType": "nonsense"}')
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", "--json", cache=tmp_path / "c")
    assert_clean_failure(result, 1, '"verified": false')
    statuses = {item["kind"]: item["status"] for item in json.loads(result.stdout)["signatures"]}
    assert statuses == {"openpgp": "failed", "sigstore": "failed"}


def test_missing_signature_is_required_unless_knowingly_allowed(distfiles: Path, tmp_path: Path) -> None:
    (distfiles / (RELEASE + ".sigstore")).unlink()
    missing = run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c")
    assert_clean_failure(missing, 1, "requires it")
    allowed = run_cli(
        "source",
        "3.13.5",
        "--from",
        distfiles,
        "--offline",
        "--allow-missing",
        "sigstore",
        "--json",
        cache=tmp_path / "c",
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    statuses = {item["kind"]: item["status"] for item in json.loads(allowed.stdout)["signatures"]}
    assert statuses == {"openpgp": "verified", "sigstore": "not-required"}


def test_allowing_everything_missing_never_verifies(tmp_path: Path, cpython_fixtures: Path) -> None:
    directory = tmp_path / "only-tarball"
    directory.mkdir()
    shutil.copyfile(cpython_fixtures / RELEASE, directory / RELEASE)
    result = run_cli(
        "source",
        "3.13.5",
        "--from",
        directory,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--allow-missing",
        "sigstore",
        cache=tmp_path / "c",
    )
    assert_clean_failure(result, 1, "at least one must verify")


def test_unsigned_hostile_tarball_is_refused(tmp_path: Path) -> None:
    """An xz bomb under the release's name: no signature can vouch for it, and nothing blows up."""
    directory = tmp_path / "hostile"
    directory.mkdir()
    with lzma.open(directory / RELEASE, "wb", preset=9) as stream:
        block = b"\0" * (1 << 20)
        for _ in range(256):
            stream.write(block)
    result = run_cli(
        "source", "3.13.5", "--from", directory, "--offline", "--allow-missing", "openpgp", cache=tmp_path / "c"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["source", "3.13"], "not a CPython release version"),
        (["source", "3.99.1", "--offline", "--from", "."], "no recipe for CPython 3.99"),
        # --offline alone uses the cache: an empty one has nothing, and the error says what to give.
        (["source", "3.13.5", "--offline"], "source not found (Python-3.13.5.tar.xz, Python-3.13.5.tgz) at: cache"),
        (["source", "3.13.5", "--offline"], "give a directory that holds it with --from DIR"),
        (["source", "3.13.5", "--sha256", "xyz", "--from", "."], "expected [LABEL=]<64 hex digits>"),
        (
            ["source", "3.13.5", "--require", "sigstore", "--allow-missing", "sigstore", "--from", "."],
            "both name sigstore",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_cli(*args, cache=tmp_path / "c")
    assert_clean_failure(result, 2, fragment)
    assert len(result.stderr.strip().splitlines()) == 1


def test_not_found_anywhere_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("source", "3.13.5", "--from", empty, "--offline", cache=tmp_path / "c")
    assert_clean_failure(result, 2, "CPython 3.13.5 source not found")


SHA256_3135 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"


def test_the_verdict_names_its_evidence_and_relaxations_in_one_closing_line(distfiles: Path, tmp_path: Path) -> None:
    """Tarball, sha256, each signature, digest claims and what was relaxed: in the last text line and in JSON."""
    both = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--sha256", f"peer={SHA256_3135}", cache=tmp_path / "c"
    )
    assert both.returncode == 0, both.stderr
    assert both.stdout.splitlines()[-1] == (
        f"VERIFIED: CPython 3.13.5 source Python-3.13.5.tar.xz sha256 {SHA256_3135} (2 of 2 signature(s) verified: "
        "openpgp ok, sigstore ok; 1 of 1 digest claim(s) agree; relaxed: nothing)"
    )
    assert "  relaxed  nothing" in both.stdout.splitlines()
    unused = run_cli(
        "source",
        "3.13.5",
        "--from",
        distfiles,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--json",
        cache=tmp_path / "c2",
    )
    document = json.loads(unused.stdout)
    assert document["relaxed"] == ["--allow-missing openpgp: not used (the openpgp signature was found and checked)"]
    assert document["coverage"] == {
        "signatures": 2,
        "signatures_checked": 2,
        "signatures_verified": 2,
        "digest_claims": 0,
        "digest_claims_agreeing": 0,
    }
    assert document["verdict"].endswith("relaxed: --allow-missing openpgp (not used))")
    (distfiles / (RELEASE + ".asc")).unlink()
    relaxed = run_cli(
        "source", "3.13.5", "--from", distfiles, "--offline", "--allow-missing", "openpgp", cache=tmp_path / "c3"
    )
    assert relaxed.returncode == 0, relaxed.stderr
    last = relaxed.stdout.splitlines()[-1]
    assert last.startswith("VERIFIED: ") and "(1 of 2 signature(s) verified: openpgp not checked, sigstore ok;" in last
    assert last.endswith("relaxed: --allow-missing openpgp)")
    assert (
        "  relaxed  --allow-missing openpgp: no openpgp signature was found, and none was required"
        in relaxed.stdout.splitlines()
    )


def test_a_failed_verdict_still_ends_with_its_one_verdict_line(
    distfiles: Path, tmp_path: Path, cpython_fixtures: Path
) -> None:
    shutil.copyfile(cpython_fixtures / "Python-3.13.10.tar.xz.sigstore", distfiles / (RELEASE + ".sigstore"))
    result = run_cli("source", "3.13.5", "--from", distfiles, "--offline", cache=tmp_path / "c")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1].startswith(
        f"NOT VERIFIED: CPython 3.13.5 source Python-3.13.5.tar.xz sha256 {SHA256_3135} "
        "(1 of 2 signature(s) verified: openpgp ok, sigstore FAILED;"
    )
    assert "sigstore: " in lines[-1] and sum("VERIFIED" in line for line in lines) == 1
