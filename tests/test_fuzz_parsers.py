"""Property tests: every parser of untrusted bytes gives a result or the project's own error, nothing else.

Inputs are arbitrary bytes and mutations of real files (the host's stdlib ``.pyc``, the host's libz, an ``ar``
archive made by ``ar``, this project's recipes, a real tarball's layout). Example counts are small so the file
stays within the fast suite; the hypothesis database is not used (``database=None``), so runs are independent.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verify.attest.verification import TrustedIdentities, parse_document
from verify.common.errors import VerifyError
from verify.common.jsonutil import loads_bounded
from verify.compare.comparators import FilePair, explain
from verify.compare.comparators.archive import ArchiveError, ar_members
from verify.compare.comparators.config import makefile_vars, pyconfig_vars, sysconfig_vars
from verify.compare.model import FileComparison
from verify.manifest import read_manifest
from verify.pyc import compare_pyc, load_pyc
from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.locations.metadata import claims_from_release_metadata, load_json
from verify.source.recipes import parse_recipe
from verify.source.releases import Version
from verify.source.unpack import safe_unpack

ROOT = Path(__file__).resolve().parent.parent
HOST_PYC = Path("/usr/lib/python3.11/__pycache__/bisect.cpython-311.pyc").read_bytes()
LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1").resolve().read_bytes()
RECIPE = (ROOT / "recipes" / "cpython-3.13.toml").read_bytes()
SYSCONFIG = Path("/usr/lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py").read_text()

FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes, *, focus: int | None = None) -> bytes:
    """``original`` with a few bytes overwritten, inserted or cut; ``focus`` biases positions to the start."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        limit = min(len(data), focus) if focus and draw(st.booleans()) else len(data)
        if not data:
            break
        position = draw(st.integers(0, max(limit - 1, 0)))
        action = draw(st.sampled_from(["set", "insert", "cut", "truncate", "fill"]))
        if action == "set":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 16))]
        elif action == "truncate":
            del data[position:]
        else:
            data[position : position + 8] = draw(st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\x7f" * 8]))
    return bytes(data)


def _ar(*members: tuple[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, body in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(body):<10}".encode() + b"`\n" + body
        out += b"\n" if len(body) % 2 else b""
    return out


REAL_AR = _ar(("//", b"a-very-long-member-name.o/\n"), ("/0", LIBZ[:4096]), ("short.o/", b"\x7fELF" + b"\0" * 60))


def _assert_verdict(verdict: Any) -> None:
    assert isinstance(verdict, FileComparison)
    assert "\n" not in verdict.explanation


# -- .pyc / marshal ------------------------------------------------------------------------------------


@FAST
@given(st.one_of(st.binary(max_size=300), mutated(HOST_PYC, focus=64)))
def test_pyc_loader(data: bytes) -> None:
    with contextlib.suppress(VerifyError):
        load_pyc(data)


@FAST
@given(mutated(HOST_PYC))
def test_pyc_comparison_and_its_comparator(data: bytes) -> None:
    with contextlib.suppress(VerifyError):
        compare_pyc(HOST_PYC, data)
    _assert_verdict(explain(FilePair("m.pyc", "pyc", "pyc", HOST_PYC, data)))


def test_a_pyc_pair_of_equal_bytes_gets_a_verdict_with_a_known_category() -> None:
    # Found by the fuzzer above: a mutation that changes nothing made the .pyc comparator answer "identical",
    # which is no difference category, and the verdict raised instead of being given.
    _assert_verdict(explain(FilePair("m.pyc", "pyc", "pyc", HOST_PYC, bytes(HOST_PYC))))


# -- ELF and ar -----------------------------------------------------------------------------------------


@settings(FAST, max_examples=40)
@given(mutated(LIBZ, focus=64))
def test_elf_comparator(data: bytes) -> None:
    _assert_verdict(explain(FilePair("libz.so", "elf-shared-object", "elf-shared-object", LIBZ, data)))


@settings(FAST, max_examples=30)
@given(st.data())
def test_elf_comparator_with_section_headers_mutated(data: st.DataObject) -> None:
    # The section header table sits at the end of the file: mutate there too.
    shoff = int.from_bytes(LIBZ[0x28:0x30], "little")
    tail = data.draw(mutated(LIBZ[shoff:]))
    _assert_verdict(explain(FilePair("libz.so", "elf-shared-object", "elf-shared-object", LIBZ, LIBZ[:shoff] + tail)))


@FAST
@given(st.one_of(st.binary(max_size=200).map(lambda b: b"!<arch>\n" + b), mutated(REAL_AR, focus=160)))
def test_ar_reader_and_comparator(data: bytes) -> None:
    with contextlib.suppress(ArchiveError):
        ar_members(data)
    _assert_verdict(explain(FilePair("libx.a", "static-archive", "static-archive", REAL_AR, data)))


# -- configuration text ---------------------------------------------------------------------------------


@FAST
@given(st.one_of(st.text(max_size=300), st.text(max_size=100).map(lambda t: SYSCONFIG.replace("'", t, 3))))
def test_config_parsers(text: str) -> None:
    result = sysconfig_vars(text)
    assert result is None or isinstance(result, dict)
    makefile_vars(text)
    pyconfig_vars(text)
    data = text.encode("utf-8", "surrogatepass")
    for kind, name in (("sysconfigdata", "_sysconfigdata__x.py"), ("text", "Makefile"), ("text", "pyconfig.h")):
        _assert_verdict(explain(FilePair(name, kind, kind, SYSCONFIG.encode(), data)))


# -- manifests and JSON ---------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
_entry_keys = st.sampled_from(["path", "kind", "mode", "size", "sha256", "target", "pyc", "x"])


@FAST
@given(st.lists(st.dictionaries(_entry_keys, _json_values, max_size=7), max_size=4), st.binary(max_size=40))
def test_manifest_reader(entries: list[dict[str, Any]], junk: bytes) -> None:
    lines = ",\n".join(json.dumps(entry) for entry in entries)
    document = b'{"format":"cpython-verify/manifest/v1","inputs":{},"entries":[\n' + lines.encode() + b"\n]}\n"
    with tempfile.TemporaryDirectory() as scratch:
        for index, raw in enumerate((document, junk, document[: len(document) // 2] + junk)):
            path = Path(scratch) / f"m{index}.json"
            path.write_bytes(raw)
            with contextlib.suppress(VerifyError):
                read_manifest(path)


@FAST
@given(
    st.one_of(
        _json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=60),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    )
)
def test_release_metadata_readers(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "metadata.json"
        path.write_bytes(raw)
        try:
            data = load_json(str(path), client=HttpClient(HttpSettings()))
            claims_from_release_metadata(data, "Python-3.13.5.tar.xz", origin="fuzz")
        except VerifyError:
            pass
    # loads_bounded is the layer below: its callers turn ValueError into their own errors.
    with contextlib.suppress(ValueError):
        loads_bounded(raw)


@settings(FAST, max_examples=25)
@given(
    st.one_of(
        _json_values,
        st.dictionaries(
            st.sampled_from(["mediaType", "verificationMaterial", "dsseEnvelope", "messageSignature"]),
            _json_values,
            max_size=4,
        ),
    )
)
def test_attestation_and_bundle_readers(value: Any) -> None:
    raw = json.dumps(value).encode()
    try:
        document = parse_document(raw, "fuzz.json")
        TrustedIdentities((("x@example.org", "https://example.org"),)).open(
            {**document, "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}, raw, "fuzz.json"
        )
    except VerifyError:
        pass


@settings(FAST, max_examples=25)
@given(st.one_of(_json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=60)))
def test_sigstore_bundle_reader(raw: bytes) -> None:
    from verify.source.models import CheckStatus
    from verify.source.recipes import SigstorePolicy
    from verify.source.signatures.sigstore import verify_sigstore

    policy = SigstorePolicy(identity="thomas@python.org", issuer="https://accounts.google.com", since=None)
    evidence = verify_sigstore("0" * 64, raw, policy)
    assert evidence.status is CheckStatus.FAILED


# -- recipes and versions -------------------------------------------------------------------------------


@FAST
@given(
    st.one_of(
        st.binary(max_size=200),
        mutated(RECIPE),
        st.text(max_size=40).map(lambda t: RECIPE.replace(b"{version}", t.encode("utf-8", "surrogatepass"), 1)),
    )
)
def test_recipe_parser(text: bytes) -> None:
    with contextlib.suppress(VerifyError):
        parse_recipe(text, ROOT / "recipes" / "cpython-3.13.toml")


# Arabic-Indic digits (U+0660-U+0669) among the ASCII ones: Version.parse must refuse them.
_VERSION_LIKE = st.from_regex(r"3\.[0-9\u0660-\u0669]{1,2}\.[0-9]{1,3}(rc[0-9])?", fullmatch=True)


@settings(FAST, max_examples=150)
@given(st.one_of(st.text(max_size=20), _VERSION_LIKE))
def test_version_parse(text: str) -> None:
    try:
        version = Version.parse(text)
    except VerifyError:
        return
    assert str(version).isascii() and Version.parse(str(version)) == version


# -- tar ------------------------------------------------------------------------------------------------


def _tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name, body in (("pkg/README", b"readme\n"), ("pkg/Include/patchlevel.h", b'#define PY_VERSION "3"\n')):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("pkg/link")
        link.type, link.linkname = tarfile.SYMTYPE, "README"
        archive.addfile(link)
    return buffer.getvalue()


TARBALL = _tarball()
# The same archive uncompressed, so mutations hit tar headers rather than the gzip stream.
PLAIN_TAR = subprocess.run(["gzip", "-dc"], input=TARBALL, capture_output=True, check=True).stdout


@settings(FAST, max_examples=40)
@given(st.one_of(mutated(TARBALL), mutated(PLAIN_TAR, focus=1536)))
def test_tar_unpacker(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tarball = Path(scratch) / "t.tar.gz"
        tarball.write_bytes(data)
        with contextlib.suppress(VerifyError):
            safe_unpack(tarball, Path(scratch) / "out")


@pytest.mark.parametrize("data", [b"", b"\x7fELF", LIBZ[:64], LIBZ[:-1]])
def test_elf_edges(data: bytes) -> None:
    _assert_verdict(explain(FilePair("libz.so", "elf-shared-object", "elf-shared-object", LIBZ, data)))
