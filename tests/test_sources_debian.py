"""Debian's source archive: real Sources stanzas, a signed fake mirror over real HTTP, the real mirror (slow)."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from httpserver import Fault, FaultyServer

from verify.common.errors import FetchError
from verify.source.locations.apt_sources import parse_deb822_sources, parse_one_line_sources
from verify.source.locations.cache import Cache
from verify.source.locations.debian import (
    ALLOW_EXPIRED_SETTING,
    MIRROR_SETTING,
    DebianArchive,
    DebianIndexError,
    check_release_freshness,
    debian_name,
    debian_upstream_version,
    decompress_index,
    find_package,
    mirror_from_apt,
    parse_release,
    resolve_debian_mirror,
    upstream_of,
)
from verify.source.locations.http import HttpClient, HttpSettings
from verify.source.releases import Version

DATA = Path(__file__).parent / "data" / "debian"
V3135 = Version.parse("3.13.5")
TARBALL = "Python-3.13.5.tar.xz"
TARBALL_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
ASC_SHA256 = "da6e013d98dcf8fc6696cdb2872b0051fc8fdeb632f73ef9f54d7b5a68647401"
POOL = "pool/main/p/python3.13"


# --- names, versions, stanzas ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "filename", "expected"),
    [
        ("3.13.5", "Python-3.13.5.tar.xz", "python3.13_3.13.5.orig.tar.xz"),
        ("3.13.5", "Python-3.13.5.tar.xz.asc", "python3.13_3.13.5.orig.tar.xz.asc"),
        ("3.13.5", "Python-3.13.5.tgz", "python3.13_3.13.5.orig.tar.gz"),
        ("3.13.5", "Python-3.13.5.tgz.asc", "python3.13_3.13.5.orig.tar.gz.asc"),
        ("3.14.0rc1", "Python-3.14.0rc1.tar.xz", "python3.13_3.14.0~rc1.orig.tar.xz"),
        ("3.13.5", "Python-3.13.5.tar.xz.sigstore", None),
        ("3.13.5", "Python-3.13.6.tar.xz", None),
        ("3.13.5", "Python-3.13.5.zip", None),
    ],
)
def test_debian_name(version: str, filename: str, expected: str | None) -> None:
    assert debian_name("python3.13", Version.parse(version), filename) == expected


def test_versions() -> None:
    assert upstream_of("3.13.5-2+deb13u5") == "3.13.5"
    assert upstream_of("1:3.14.0~rc1-2") == "3.14.0rc1"
    assert upstream_of("3.13.5") == "3.13.5"
    assert debian_upstream_version(Version.parse("3.14.0b2")) == "3.14.0~b2"


def test_real_trixie_stanza() -> None:
    (stanza,) = find_package((DATA / "trixie-python3.13.Sources").read_text(), "python3.13")
    assert (stanza.version, stanza.upstream_version, stanza.directory) == ("3.13.5-2+deb13u5", "3.13.5", POOL)
    orig = stanza.file("python3.13_3.13.5.orig.tar.xz")
    assert orig is not None and (orig.sha256, orig.size) == (TARBALL_SHA256, 22_856_016)
    assert len(stanza.files) == 4


def test_real_sid_index_with_two_versions_and_other_packages() -> None:
    text = "\n".join((DATA / name).read_text() for name in ("bookworm-python3.11.Sources", "sid-python3.13.Sources"))
    stanzas = find_package(text, "python3.13")
    assert [stanza.upstream_version for stanza in stanzas] == ["3.13.15", "3.13.18"]
    assert find_package(text, "python3.1") == [], "a package name is matched whole, not as a prefix"
    (py311,) = find_package(text, "python3.11")
    orig = py311.file("python3.11_3.11.2.orig.tar.gz")
    assert orig is not None and orig.sha256 == "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849"


def test_malformed_checksums_and_unsafe_directory_are_errors() -> None:
    stanza = (DATA / "trixie-python3.13.Sources").read_text()
    with pytest.raises(DebianIndexError, match="malformed Checksums-Sha256"):
        find_package(stanza.replace(TARBALL_SHA256, "zz" * 32), "python3.13")
    with pytest.raises(DebianIndexError, match="unsafe Directory"):
        find_package(stanza.replace(f"Directory: {POOL}", "Directory: ../../etc"), "python3.13")


def test_decompress_refuses_bombs_and_truncation() -> None:
    bomb = lzma.compress(b"\n" * 2_000_000)
    with pytest.raises(DebianIndexError, match="more than 1000000 bytes"):
        decompress_index(bomb, "xz", where="x", limit=1_000_000)
    with pytest.raises(DebianIndexError, match="truncated xz"):
        decompress_index(bomb[:50], "xz", where="x")
    with pytest.raises(DebianIndexError, match="corrupt gz"):
        decompress_index(b"not gzip", "gz", where="x")
    assert decompress_index(gzip.compress(b"Package: a\n"), "gz", where="x") == "Package: a\n"


DEB822 = """\
Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_apt_configuration() -> None:
    security_first = DEB822.split("\n\n")[1] + "\n\n" + DEB822.split("\n\n")[0]
    assert mirror_from_apt(parse_deb822_sources(security_first)) == "http://mirror.invalid/debian"
    one_line = "deb [signed-by=/x.gpg] https://m.invalid/debian/ bookworm main\n"
    assert mirror_from_apt(parse_one_line_sources(one_line)) == "https://m.invalid/debian"
    assert mirror_from_apt(parse_one_line_sources("deb http://m.invalid/ubuntu jammy main\n")) is None


def test_mirror_setting_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MIRROR_SETTING, "http://127.0.0.1:9/debian/")
    assert resolve_debian_mirror() == "http://127.0.0.1:9/debian"
    assert resolve_debian_mirror("http://127.0.0.1:8/d") == "http://127.0.0.1:8/d"
    monkeypatch.delenv(MIRROR_SETTING)
    (tmp_path / "etc" / "apt" / "sources.list.d").mkdir(parents=True)
    (tmp_path / "etc" / "apt" / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert resolve_debian_mirror(root=tmp_path) == "http://mirror.invalid/debian"


def test_parse_release() -> None:
    release = parse_release(
        "Suite: stable\nCodename: trixie\nSHA256:\n"
        f" {TARBALL_SHA256} 123 main/source/Sources.xz\n {ASC_SHA256} 9 main/source/Sources.gz\n"
    )
    assert (release.suite, release.codename) == ("stable", "trixie")
    assert release.sha256["main/source/Sources.xz"] == (TARBALL_SHA256, 123)


# --- a signed mirror over real HTTP -------------------------------------------------------------


@dataclass
class Signer:
    """A throwaway OpenPGP key in its own GNUPGHOME, made with the real gpg."""

    home: Path
    keyring: Path

    def clearsign(self, text: str, out: Path) -> None:
        subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--clearsign", "-o", str(out)],
            input=text.encode(),
            check=True,
            capture_output=True,
        )


def make_signer(name: str) -> Iterator[Signer]:
    # A short path: gpg-agent's socket path must fit in sun_path.
    home = Path(tempfile.mkdtemp(prefix="cvgpg-"))
    try:
        home.chmod(0o700)
        subprocess.run(
            [
                "gpg",
                "--homedir",
                str(home),
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                f"{name} <archive@test.invalid>",
                "ed25519",
                "sign",
                "never",
            ],
            check=True,
            capture_output=True,
        )
        keyring = home / "archive-keyring.gpg"
        exported = subprocess.run(["gpg", "--homedir", str(home), "--export"], check=True, capture_output=True)
        keyring.write_bytes(exported.stdout)
        yield Signer(home, keyring)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def signer() -> Iterator[Signer]:
    yield from make_signer("Test Archive")


@pytest.fixture(scope="module")
def other_signer() -> Iterator[Signer]:
    yield from make_signer("Someone Else")


def release_time(offset: timedelta) -> str:
    """A ``Date``/``Valid-Until`` value ``offset`` from now, as Debian writes it."""
    return format_datetime(datetime.now(UTC) + offset, usegmt=True)


def write_suite(
    root: Path,
    suite: str,
    sources: str,
    signer: Signer,
    *,
    codename: str | None = None,
    dates: str | None = None,
) -> None:
    """dists/<suite>/: Sources.xz and Sources.gz, and an InRelease listing their sha256, signed.

    ``dates`` are the InRelease's date fields (default: ``Date`` now, and no ``Valid-Until``).
    """
    source_dir = root / "dists" / suite / "main" / "source"
    source_dir.mkdir(parents=True, exist_ok=True)
    xz, gz = lzma.compress(sources.encode()), gzip.compress(sources.encode())
    (source_dir / "Sources.xz").write_bytes(xz)
    (source_dir / "Sources.gz").write_bytes(gz)
    if dates is None:
        dates = f"Date: {release_time(timedelta())}\n"
    release = (
        f"Origin: Test\nSuite: {suite}\nCodename: {codename or suite}\n{dates}Components: main\nSHA256:\n"
        f" {hashlib.sha256(xz).hexdigest()} {len(xz)} main/source/Sources.xz\n"
        f" {hashlib.sha256(gz).hexdigest()} {len(gz)} main/source/Sources.gz\n"
    )
    signer.clearsign(release, root / "dists" / suite / "InRelease")


@pytest.fixture(scope="module")
def mirror_root(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path, signer: Signer) -> Path:
    """A Debian-like mirror: the real trixie stanza for python3.13, and the real files in pool/."""
    root = tmp_path_factory.mktemp("debian")
    pool = root / POOL
    pool.mkdir(parents=True)
    (pool / "python3.13_3.13.5.orig.tar.xz").symlink_to(cpython_fixtures / TARBALL)
    (pool / "python3.13_3.13.5.orig.tar.xz.asc").symlink_to(cpython_fixtures / (TARBALL + ".asc"))
    others = (DATA / "bookworm-python3.11.Sources").read_text()
    write_suite(root, "trixie", others + "\n" + (DATA / "trixie-python3.13.Sources").read_text(), signer)
    write_suite(root, "sid", (DATA / "sid-python3.13.Sources").read_text(), signer)
    return root


@pytest.fixture
def mirror_server(mirror_root: Path) -> Iterator[FaultyServer]:
    with FaultyServer(mirror_root) as running:
        yield running


def archive(
    mirror_server: FaultyServer, tmp_path: Path, keyring: Path | None, *, cache: Cache | None = None, **kwargs: object
) -> DebianArchive:
    client = HttpClient.quiet(HttpSettings(attempts=2, backoff=0.01, read_timeout=5))
    return DebianArchive(
        "python3.13",
        mirror=mirror_server.url,
        client=client,
        cache=cache or Cache(tmp_path / "cache"),
        keyring=keyring,
        **kwargs,  # type: ignore[arg-type]
    )


def test_fetch_real_tarball_and_signature_by_debian_names(
    mirror_server: FaultyServer, tmp_path: Path, signer: Signer
) -> None:
    debian = archive(mirror_server, tmp_path, signer.keyring, suites=("bookworm", "trixie", "sid"))
    fetched = debian.fetch(V3135, TARBALL)
    assert fetched is not None
    assert (fetched.name, fetched.sha256, fetched.size) == (TARBALL, TARBALL_SHA256, 22_856_016)
    assert fetched.origin == f"{mirror_server.url}/{POOL}/python3.13_3.13.5.orig.tar.xz"
    signature = debian.fetch(V3135, TARBALL + ".asc")
    assert signature is not None and signature.sha256 == ASC_SHA256 and signature.name == TARBALL + ".asc"
    assert debian.fetch(V3135, TARBALL + ".sigstore") is None
    assert debian.fetch(Version.parse("3.13.6"), "Python-3.13.6.tar.xz") is None
    assert debian.notes == [f"Debian suite bookworm: no InRelease at {mirror_server.url}/dists/bookworm"]
    assert debian.description == f"Debian {mirror_server.url} (bookworm trixie sid)"


def test_digest_claim_is_labelled_and_authenticated(
    mirror_server: FaultyServer, tmp_path: Path, signer: Signer
) -> None:
    claims = archive(mirror_server, tmp_path, signer.keyring).digest_claims(V3135, TARBALL)
    assert [(claim.source, claim.sha256) for claim in claims] == [
        ("Debian trixie Sources index (python3.13 3.13.5-2+deb13u5)", TARBALL_SHA256)
    ]


def test_second_fetch_uses_the_cache(mirror_server: FaultyServer, tmp_path: Path, signer: Signer) -> None:
    cache = Cache(tmp_path / "cache")
    fetched = archive(mirror_server, tmp_path, signer.keyring, cache=cache).fetch(V3135, TARBALL)
    assert fetched is not None
    cache.admit(fetched)  # as a verified source verdict does: an unverified download is not kept
    archive(mirror_server, tmp_path, signer.keyring).fetch(V3135, TARBALL)
    assert len(mirror_server.requests_for(f"/{POOL}/python3.13_3.13.5.orig.tar.xz")) == 1
    assert len(mirror_server.requests_for("/dists/trixie/main/source/Sources.xz")) == 1, (
        "index cached by its signed digest"
    )
    assert len(mirror_server.requests_for("/dists/trixie/InRelease")) == 2, "the signed InRelease is read every time"


def test_signature_by_another_key_is_refused(mirror_server: FaultyServer, tmp_path: Path, other_signer: Signer) -> None:
    with pytest.raises(DebianIndexError, match="InRelease signature does not verify"):
        archive(mirror_server, tmp_path, other_signer.keyring).fetch(V3135, TARBALL)


def test_digest_claims_swallow_index_errors_into_notes(
    mirror_server: FaultyServer, tmp_path: Path, other_signer: Signer
) -> None:
    debian = archive(mirror_server, tmp_path, other_signer.keyring)
    assert debian.digest_claims(V3135, TARBALL) == []
    assert any("InRelease signature does not verify" in note for note in debian.notes)


def test_tampered_index_is_refused(tmp_path: Path, cpython_fixtures: Path, signer: Signer, mirror_root: Path) -> None:
    with FaultyServer(mirror_root) as mirror_server:
        forged = (DATA / "trixie-python3.13.Sources").read_text().replace(TARBALL_SHA256, "0" * 64)
        mirror_server.add("/dists/trixie/main/source/Sources.xz", lzma.compress(forged.encode()))
        with pytest.raises(DebianIndexError, match=r"is not \w+ as the signed InRelease states"):
            archive(mirror_server, tmp_path, signer.keyring).fetch(V3135, TARBALL)
    # The live run holds its (empty) quarantine by a lock file beside it; anything else would be kept data.
    kept = [path for path in (tmp_path / "cache").rglob("*") if path.is_file() and not path.name.startswith("run-")]
    assert kept == [], "the forged index is neither cached nor left in the quarantine"


def test_inrelease_of_another_suite_is_refused(tmp_path: Path, signer: Signer, cpython_fixtures: Path) -> None:
    # A validly signed index of one suite replayed in another's place (a downgrade to old packages).
    root = tmp_path / "mirror"
    write_suite(root, "trixie", (DATA / "trixie-python3.13.Sources").read_text(), signer, codename="bookworm")
    (root / "dists" / "sid").symlink_to(root / "dists" / "trixie")
    with FaultyServer(root) as mirror_server:
        assert (
            len(archive(mirror_server, tmp_path, signer.keyring, suites=("trixie",)).digest_claims(V3135, TARBALL)) == 1
        )
        with pytest.raises(DebianIndexError, match="is for suite trixie/bookworm, not sid"):
            archive(mirror_server, tmp_path, signer.keyring, suites=("sid",)).fetch(V3135, TARBALL)


# --- InRelease freshness: a replayed old index, a forged future one --------------------------------


def _mirror_with_dates(tmp_path: Path, signer: Signer, cpython_fixtures: Path, dates: str) -> Path:
    """A mirror whose trixie InRelease, really signed, carries ``dates``; the real files in pool/."""
    root = tmp_path / "mirror"
    pool = root / POOL
    pool.mkdir(parents=True)
    (pool / "python3.13_3.13.5.orig.tar.xz").symlink_to(cpython_fixtures / TARBALL)
    write_suite(root, "trixie", (DATA / "trixie-python3.13.Sources").read_text(), signer, dates=dates)
    return root


EXPIRED = f"Date: {release_time(timedelta(days=-10))}\nValid-Until: {release_time(timedelta(days=-3))}\n"


@pytest.mark.parametrize(
    ("dates", "error"),
    [
        (f"Date: {release_time(timedelta(days=1))}\n", r"InRelease: dated \d{4}-.* in the future \(now "),
        (EXPIRED, rf"InRelease: expired on \d{{4}}-.* \(Valid-Until\); .* set {ALLOW_EXPIRED_SETTING}=1$"),
        ("", "InRelease: states no Date; cannot tell whether it is current"),
        ("Date: last Tuesday\n", "InRelease: malformed Date 'last Tuesday'"),
        (f"Date: {release_time(timedelta())}\nValid-Until: soon\n", "InRelease: malformed Valid-Until 'soon'"),
    ],
    ids=["future", "expired", "no-date", "bad-date", "bad-valid-until"],
)
def test_stale_or_future_inrelease_is_refused(
    tmp_path: Path, signer: Signer, cpython_fixtures: Path, dates: str, error: str
) -> None:
    with FaultyServer(_mirror_with_dates(tmp_path, signer, cpython_fixtures, dates)) as mirror_server:
        debian = archive(mirror_server, tmp_path, signer.keyring, suites=("trixie",))
        with pytest.raises(DebianIndexError, match=error) as raised:
            debian.fetch(V3135, TARBALL)
        assert "\n" not in raised.value.message
        assert not mirror_server.requests_for("/dists/trixie/main/source/Sources.xz"), "the index is not even fetched"
        assert archive(mirror_server, tmp_path, signer.keyring, suites=("trixie",)).digest_claims(V3135, TARBALL) == []


@pytest.mark.parametrize(
    "dates",
    [
        f"Date: {release_time(timedelta(minutes=5))}\n",  # within the clock-skew allowance
        f"Date: {release_time(timedelta(days=-2))}\nValid-Until: {release_time(timedelta(days=5))}\n",
    ],
    ids=["small-skew", "still-valid"],
)
def test_current_inrelease_is_accepted(tmp_path: Path, signer: Signer, cpython_fixtures: Path, dates: str) -> None:
    with FaultyServer(_mirror_with_dates(tmp_path, signer, cpython_fixtures, dates)) as mirror_server:
        debian = archive(mirror_server, tmp_path, signer.keyring, suites=("trixie",))
        fetched = debian.fetch(V3135, TARBALL)
        assert fetched is not None and fetched.sha256 == TARBALL_SHA256
        assert debian.notes == []


def test_expired_snapshot_is_accepted_when_allowed_and_noted(
    tmp_path: Path, signer: Signer, cpython_fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultyServer(_mirror_with_dates(tmp_path, signer, cpython_fixtures, EXPIRED)) as mirror_server:
        monkeypatch.setenv(ALLOW_EXPIRED_SETTING, "1")
        debian = DebianArchive.from_settings(
            "python3.13",
            mirror=mirror_server.url,
            client=HttpClient.quiet(HttpSettings(attempts=1)),
            cache=Cache(tmp_path / "cache"),
            suites=("trixie",),
            keyring=signer.keyring,
        )
        (claim,) = debian.digest_claims(V3135, TARBALL)
        assert claim.sha256 == TARBALL_SHA256
        (note,) = debian.notes
        assert "InRelease: expired on" in note and f"accepted because {ALLOW_EXPIRED_SETTING} is set" in note
        monkeypatch.setenv(ALLOW_EXPIRED_SETTING, "yes please")
        with pytest.raises(FetchError, match=f"{ALLOW_EXPIRED_SETTING}='yes please': expected 1 or 0"):
            DebianArchive.from_settings(
                "python3.13", mirror=mirror_server.url, client=HttpClient.quiet(), cache=Cache(tmp_path)
            )


def test_freshness_rules() -> None:
    now = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    release = parse_release(
        "Suite: trixie\nDate: Tue, 01 Jul 2025 12:09:00 UTC\nValid-Until: Tue, 01 Jul 2025 11:00:00 UTC\n"
    )
    assert release.date == datetime(2025, 7, 1, 12, 9, tzinfo=UTC)
    with pytest.raises(DebianIndexError, match="expired on 2025-07-01 11:00:00 UTC"):
        check_release_freshness(release, now)
    assert check_release_freshness(release, now, allow_expired=True) != []
    with pytest.raises(DebianIndexError, match="in the future"):
        check_release_freshness(release, now - timedelta(minutes=2), allow_expired=True)


def test_without_keyring_claims_say_unauthenticated_and_gz_is_used(
    mirror_server: FaultyServer, tmp_path: Path, mirror_root: Path
) -> None:
    mirror_server.always("/dists/trixie/main/source/Sources.xz", Fault(status=404))
    debian = archive(mirror_server, tmp_path, None, suites=("trixie",))
    (claim,) = debian.digest_claims(V3135, TARBALL)
    assert claim.source == "Debian trixie Sources index (python3.13 3.13.5-2+deb13u5, InRelease signature not checked)"
    assert mirror_server.requests_for("/dists/trixie/main/source/Sources.gz")
    assert not mirror_server.requests_for("/dists/trixie/InRelease")


def test_no_mirror_anywhere_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(MIRROR_SETTING, raising=False)
    (tmp_path / "etc" / "apt").mkdir(parents=True)
    (tmp_path / "etc" / "apt" / "sources.list").write_text("deb http://m.invalid/ubuntu jammy main\n")
    with pytest.raises(FetchError, match=f"no Debian mirror: set {MIRROR_SETTING}"):
        DebianArchive.from_settings("python3.13", client=HttpClient.quiet(), cache=Cache(tmp_path), apt_root=tmp_path)


@pytest.mark.slow
def test_real_mirror_trixie_3_13_5(tmp_path: Path, cpython_fixtures: Path) -> None:
    """The host's apt mirror (or $CPYTHON_VERIFY_DEBIAN_MIRROR), Debian's real archive keyring."""
    debian = DebianArchive.from_settings(
        "python3.13", client=HttpClient.quiet(), cache=Cache(tmp_path / "cache"), suites=("trixie",)
    )
    fetched = debian.fetch(V3135, TARBALL)
    assert fetched is not None and fetched.sha256 == TARBALL_SHA256
    assert fetched.path.read_bytes() == (cpython_fixtures / TARBALL).read_bytes()
    signature = debian.fetch(V3135, TARBALL + ".asc")
    assert signature is not None
    assert signature.path.read_bytes() == (cpython_fixtures / (TARBALL + ".asc")).read_bytes()
    (claim,) = debian.digest_claims(V3135, TARBALL)
    assert claim.sha256 == TARBALL_SHA256 and claim.source.startswith("Debian trixie Sources index (python3.13 3.13.5-")
