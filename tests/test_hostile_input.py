"""Hostile input that used to escape as a traceback: each now ends in a verdict or a one-line error."""

from __future__ import annotations

import base64
import copy
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from verify.attest.errors import AttestationRejected
from verify.attest.verification import TrustedIdentities, verify_attestation_file
from verify.compare.comparators import FilePair, explain
from verify.manifest import MANIFEST_FORMAT, ManifestError, read_manifest
from verify.pyc.values import short_repr
from verify.source.models import CheckStatus
from verify.source.recipes import SigstorePolicy
from verify.source.signatures.sigstore import verify_sigstore

ROOT = Path(__file__).resolve().parent.parent
LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1").resolve()
THOMAS = SigstorePolicy(identity="thomas@python.org", issuer="https://accounts.google.com", since=None)


@pytest.fixture(scope="module")
def real_bundle(cpython_fixtures: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((cpython_fixtures / "Python-3.13.5.tar.xz.sigstore").read_bytes())
    return document


def _with_integrated_time(bundle: dict[str, Any], value: str) -> dict[str, Any]:
    changed = copy.deepcopy(bundle)
    changed["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = value
    return changed


def _with_corrupt_san(bundle: dict[str, Any]) -> dict[str, Any]:
    # Two bytes inside the SubjectAlternativeName extension's value become zeros: the DER still frames,
    # but the SAN holds extra data, which cryptography reports (ValueError) only when the SAN is read.
    changed = copy.deepcopy(bundle)
    material = changed["verificationMaterial"]["certificate"]
    der = base64.b64decode(material["rawBytes"])
    san = der.find(bytes.fromhex("0603551d11"))
    assert san > 0
    material["rawBytes"] = base64.b64encode(der[: san + 11] + b"\0\0" + der[san + 13 :]).decode()
    return changed


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: _with_integrated_time(b, str(10**12)), "year 33658 is out of range"),
        (lambda b: _with_integrated_time(b, str(2**63 - 1)), "the bundle is malformed"),
        (_with_corrupt_san, "ASN.1 parsing error"),
    ],
    ids=["integrated-time-far-future", "integrated-time-int64-max", "corrupt-san"],
)
def test_hostile_sigstore_bundle_is_a_failed_check_with_one_line(
    cpython_fixtures: Path, real_bundle: dict[str, Any], mutate: Any, reason: str
) -> None:
    evidence = verify_sigstore(
        cpython_fixtures / "Python-3.13.5.tar.xz", json.dumps(mutate(real_bundle)).encode(), THOMAS
    )
    assert evidence.status is CheckStatus.FAILED
    assert reason in evidence.detail and "\n" not in evidence.detail


def test_oversized_sigstore_bundle_is_refused_unparsed(cpython_fixtures: Path) -> None:
    evidence = verify_sigstore(cpython_fixtures / "Python-3.13.5.tar.xz", b"{" + b" " * (2 << 20) + b"}", THOMAS)
    assert evidence.status is CheckStatus.FAILED and "over 1024 KiB" in evidence.detail


@pytest.mark.parametrize("value", [str(10**12), str(2**63 - 1)])
def test_trusted_identities_refuse_out_of_range_integrated_time(
    tmp_path: Path, real_bundle: dict[str, Any], value: str
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_with_integrated_time(real_bundle, value)))
    trust = TrustedIdentities((("thomas@python.org", "https://accounts.google.com"),))
    with pytest.raises(AttestationRejected, match="malformed bundle"):
        verify_attestation_file(path, trust)


def test_trusted_identities_refuse_a_corrupt_san(tmp_path: Path, real_bundle: dict[str, Any]) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(_with_corrupt_san(real_bundle)))
    trust = TrustedIdentities((("thomas@python.org", "https://accounts.google.com"),))
    with pytest.raises(AttestationRejected, match="Sigstore verification failed"):
        verify_attestation_file(path, trust)


@pytest.mark.parametrize("kind", [["text"], {"a": 1}, 7, None, "x" * 10_000])
def test_manifest_entry_kind_of_the_wrong_type_is_one_line(tmp_path: Path, kind: object) -> None:
    entry = {"path": "a", "kind": kind, "mode": "0644", "sha256": "0" * 64, "size": 1}
    path = tmp_path / "m.json"
    path.write_text(f'{{"format":"{MANIFEST_FORMAT}","inputs":{{}},"entries":[\n{json.dumps(entry)}\n]}}\n')
    with pytest.raises(ManifestError, match="entry 2: 'kind' ") as caught:
        read_manifest(path)
    assert len(caught.value.message) < 300


def test_manifest_inputs_nested_too_deep_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(f'{{"format":"{MANIFEST_FORMAT}","inputs":{{"x":{"[" * 200}{"]" * 200}}},"entries":[\n]}}\n')
    with pytest.raises(ManifestError, match="nested deeper"):
        read_manifest(path)


def test_compare_html_with_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for side, content in ((a, b"one\n"), (b, b"two\n")):
        side.mkdir()
        (side / "plain.txt").write_bytes(b"same\n")
        with open(bytes(side) + b"/name-\xff.txt", "wb") as stream:  # pathlib takes no bytes names
            stream.write(content)
    html = tmp_path / "report.html"
    # The terminal report prints the name's bytes as they are, like ls (run_cli keeps them as surrogate escapes).
    completed = run_cli("compare", a, b, "--html", html, timeout=120)
    assert completed.returncode == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    page = html.read_text(encoding="utf-8")
    assert "name-\\xff.txt" in page


def test_short_repr_names_an_int_too_large_for_repr() -> None:
    assert short_repr(1 << 20_000) == "<int of 20001 bits>"
    assert short_repr(-(1 << 1999)) == repr(-(1 << 1999))[:77] + "..."


def _libz_with_section(tmp_path: Path, content: bytes) -> bytes:
    blob = tmp_path / "section.bin"
    blob.write_bytes(content)
    out = tmp_path / "libz.so"
    subprocess.run(
        [
            "objcopy",
            "--add-section",
            f".debug_bad={blob}",
            "--set-section-flags",
            ".debug_bad=readonly",
            str(LIBZ),
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    data = bytearray(out.read_bytes())
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, _ = struct.unpack_from("<HHH", data, 0x3A)
    last = shoff + (shnum - 1) * shentsize  # objcopy puts the added section last but the string table
    for header in (last, last - shentsize):
        (flags,) = struct.unpack_from("<Q", data, header + 8)
        (size,) = struct.unpack_from("<Q", data, header + 32)
        if size == len(content):
            struct.pack_into("<Q", data, header + 8, flags | 0x800)  # SHF_COMPRESSED
            return bytes(data)
    raise AssertionError("added section not found")


def test_elf_with_a_corrupt_compressed_section_is_unparseable_not_a_crash(tmp_path: Path) -> None:
    corrupt = _libz_with_section(tmp_path, struct.pack("<IIQQ", 1, 0, 4096, 1) + b"not zlib at all" * 10)
    verdict = explain(FilePair("libz.so", "elf-shared-object", "elf-shared-object", LIBZ.read_bytes(), corrupt))
    assert verdict.comparator == "binary"
    assert verdict.explanation.startswith("unparseable ELF in B: zlib.error")
    assert verdict.details[0].startswith("not readable as elf (unparseable ELF in B")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:64] + b"\xff" * 8 + d[72:],  # e_shoff far past the end
        lambda d: d[:0x3C] + b"\xff\xff" + d[0x3E:],  # e_shnum 65535
        lambda d: d[:0x3E] + b"\xfe\xff" + d[0x40:],  # e_shstrndx out of range
        lambda d: d[: len(d) // 2],  # truncated
    ],
    ids=["shoff", "shnum", "shstrndx", "truncated"],
)
def test_elf_header_corruption_is_unparseable_not_a_crash(mutate: Any) -> None:
    real = LIBZ.read_bytes()
    verdict = explain(FilePair("libz.so", "elf-shared-object", "elf-shared-object", real, mutate(real)))
    assert verdict.comparator in ("binary", "elf")
    if verdict.comparator == "binary":
        assert verdict.explanation.startswith("unparseable ELF in B")


# -- smaller problems: templates, versions ----------------------------------------------------------------

RECIPE = """schema = 1
series = "3.13"
[source]
filenames = [{filename}]
urls = [{url}]
[signatures]
publishes = ["sigstore"]
[signatures.sigstore]
identity = "thomas@python.org"
issuer = "https://accounts.google.com"
"""


@pytest.mark.parametrize(
    ("filename", "url", "message"),
    [
        ('"Python-{version}.tgz"', '"https://x.org/{version.__class__}/{filename}"', "unknown placeholder"),
        ('"Python-{version}.tgz"', '"https://x.org/{version[0]}/{filename}"', "unknown placeholder"),
        ('"Python-{version:>300000000}.tgz"', '"https://x.org/{filename}"', "no format spec or conversion"),
        ('"Python-{version!r}.tgz"', '"https://x.org/{filename}"', "no format spec or conversion"),
        ('"Python-{version}.tgz"', '"https://x.org/{filename"', "not a valid template"),
        ('"Python-{}.tgz"', '"https://x.org/{filename}"', "unknown placeholder"),
        ('"../Python-{version}.tgz"', '"https://x.org/{filename}"', "must be a plain file name"),
    ],
)
def test_recipe_templates_take_only_bare_known_placeholders(
    tmp_path: Path, filename: str, url: str, message: str
) -> None:
    from verify.common.errors import RecipeError
    from verify.source.recipes import parse_recipe

    text = RECIPE.format(filename=filename, url=url).encode()
    with pytest.raises(RecipeError, match=message):
        parse_recipe(text, tmp_path / "cpython-3.13.toml")


def test_recipe_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    from verify.common.errors import RecipeError
    from verify.source.recipes import parse_recipe

    with pytest.raises(RecipeError, match="nested too deeply"):
        parse_recipe(b"x = " + b"[" * 50_000 + b"]" * 50_000, tmp_path / "cpython-3.13.toml")


@pytest.mark.parametrize("text", ["3.\u0661\u0663.5", "3.13.\u0665", "\uff13.13.5", "3.13.5rc\u0661", "3.13.5\n\n1"])
def test_version_digits_are_ascii_only(text: str) -> None:
    from verify.common.errors import VersionError
    from verify.source.releases import Version

    with pytest.raises(VersionError):
        Version.parse(text)
    assert str(Version.parse(" 3.13.5\n")) == "3.13.5"


def test_source_with_arabic_indic_digits_exits_2_with_one_line() -> None:
    completed = run_cli("source", "3.\u0661\u0663.5", "--offline", "--from", ROOT, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "not a CPython release version" in completed.stderr


# -- smaller problems: the command line ---------------------------------------------------------------------


def test_plan_with_an_unknown_runner_is_a_usage_error() -> None:
    completed = run_cli("plan", "3.13.5", "--runner", "no-such")
    assert completed.returncode == 2 and completed.stdout == ""
    assert completed.stderr == (
        "cpython-verify: error: Invalid value for '--runner': 'no-such' is not one of 'bwrap', 'docker', 'podman'. "
        "(see 'cpython-verify plan --help')\n"
    )
    known = run_cli("plan", "3.13.5", "--runner", "podman", "--json")
    assert known.returncode == 0 and '"runner": "podman"' in known.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "--bogus"), "No such option '--bogus'"),
        (("no-such-command",), "No such command 'no-such-command'"),
        (("source",), "Missing argument 'VERSION'"),
        (("compare", "no-such-tree", "x"), "Invalid value for 'A'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: tuple[str, ...], message: str) -> None:
    completed = run_cli(*args)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("cpython-verify: error: ") and message in completed.stderr
    assert "--help" in completed.stderr


def test_plan_and_merge_refuse_a_fifo_and_deep_json(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "releases.json"
    os.mkfifo(fifo)
    completed = run_cli("plan", "--releases", str(fifo))
    assert completed.returncode == 2 and "not a regular file" in completed.stderr
    deep = tmp_path / "plan.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    completed = run_cli("plan", "--releases", str(deep))
    assert completed.returncode == 2 and "nested deeper" in completed.stderr
    assert completed.stderr.count("\n") == 1


# -- the release feed and the attestation inputs: one bounded JSON reader -----------------------------------

# 100 levels: json.loads reads it without complaint, and it is past the 64-level budget.
NESTED_100 = "[" * 100 + "]" * 100


def _assert_one_line_exit_2(completed: subprocess.CompletedProcess[str], message: str) -> None:
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert message in completed.stderr and "Traceback" not in completed.stderr


def _oversized(path: Path, size: int) -> Path:
    with path.open("wb") as stream:
        stream.truncate(size)  # sparse: the reader still has to refuse it before parsing
    return path


def test_release_feed_file_refuses_deep_json_an_oversized_file_and_a_fifo(tmp_path: Path) -> None:
    import os

    from verify.site.releases_feed import MAX_FEED_BYTES

    deep = tmp_path / "deep.json"
    deep.write_text(NESTED_100)
    _assert_one_line_exit_2(run_cli("releases", "--url", deep), "nested too deeply (over 64 levels)")
    big = _oversized(tmp_path / "big.json", MAX_FEED_BYTES + 1)
    _assert_one_line_exit_2(run_cli("releases", "--url", big), "larger than 32 MiB")
    fifo = tmp_path / "feed.json"
    os.mkfifo(fifo)
    _assert_one_line_exit_2(run_cli("releases", "--url", f"file://{fifo}", timeout=60), "not a regular file")


@pytest.mark.parametrize(
    ("name", "hostile", "message"),
    [
        (
            "source-verdict.json",
            lambda path: path.write_text('{"a": ' * 100 + "1" + "}" * 100),
            "nested deeper than 64 levels",
        ),
        ("rebuild.json", lambda path: path.write_text(NESTED_100), "nested deeper than 64 levels"),
        ("rebuild.json", lambda path: _oversized(path, (16 << 20) + 1), "larger than 16 MiB"),
        ("source-verdict.json", lambda path: _oversized(path, (16 << 20) + 1), "larger than 16 MiB"),
    ],
    ids=["deep-verdict", "deep-record", "huge-record", "huge-verdict"],
)
def test_attest_refuses_hostile_result_files_in_one_line(
    tmp_path: Path, cpython_fixtures: Path, name: str, hostile: Any, message: str
) -> None:
    from test_attest_support import TARBALL, make_result, openssl_keypair

    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    private, _ = openssl_keypair(tmp_path, "rebuilder")
    (result / name).unlink()
    hostile(result / name)
    _assert_one_line_exit_2(run_cli("attest", result, "--signing-key", private), message)
    assert not (result / "attestation.intoto.json").exists()


def test_verify_attestation_refuses_deep_json_and_a_fifo(tmp_path: Path) -> None:
    import os

    from test_attest_support import openssl_keypair

    _, public = openssl_keypair(tmp_path, "rebuilder")
    deep = tmp_path / "deep.intoto.json"
    deep.write_text('{"payload": ' + NESTED_100 + "}")
    _assert_one_line_exit_2(
        run_cli("verify-attestation", deep, "--public-key", public), "nested too deeply (over 64 levels)"
    )
    fifo = tmp_path / "fifo.intoto.json"
    os.mkfifo(fifo)
    _assert_one_line_exit_2(
        run_cli("verify-attestation", fifo, "--public-key", public, timeout=60), "not a regular file"
    )


def test_an_image_whose_index_nests_100000_deep_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """An OCI image's index.json is read with the nesting budget every JSON reader has: it used to reach
    json.loads unbounded and end in a RecursionError traceback."""
    import io
    import tarfile

    image = tmp_path / "image.tar"
    deep = b"[" * 100_000 + b"]" * 100_000
    with tarfile.open(image, "w") as archive:
        for name, blob in (("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'), ("index.json", deep)):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    completed = run_cli("audit", "3.11.2", image, "--offline", "--from", tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "cpython-verify: error: image.tar: index.json: JSON nested deeper than 64 levels"
    ]
