"""Debian's source archive as a place to obtain CPython's upstream tarball, and as a digest witness.

Debian ships python.org's tarball unmodified as the ``.orig`` file of its ``python3.X`` source
package (``python3.13_3.13.5.orig.tar.xz`` is ``Python-3.13.5.tar.xz``), often with the upstream
``.asc``. Its ``Sources`` index states the sha256 of each file; when the suite's ``InRelease`` is
checked with ``gpgv`` against Debian's archive keyring, that statement is authenticated by Debian,
independently of python.org.

The mirror is a setting (``$CPYTHON_VERIFY_DEBIAN_MIRROR`` or the constructor) or the host's own apt
configuration: no archive host name is written into this project.

A signed ``InRelease`` must also be current, as apt requires: its ``Date`` may not lie in the future
(beyond :data:`MAX_CLOCK_SKEW`) and its ``Valid-Until``, when present, may not have passed. Otherwise an
old, validly signed index could be replayed to hide a newer one. An archived snapshot is old on
purpose: ``$CPYTHON_VERIFY_DEBIAN_ALLOW_EXPIRED=1`` (or ``allow_expired``) accepts an expired
``Valid-Until``, and the location's notes say so.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

from verify.common.errors import FetchError
from verify.source.locations.apt_sources import AptSource, host_apt_sources
from verify.source.locations.cache import Cache
from verify.source.locations.deb822 import first_paragraph
from verify.source.locations.debian_names import DEFAULT_KEYRING as DEFAULT_KEYRING
from verify.source.locations.debian_names import DEFAULT_SUITES as DEFAULT_SUITES
from verify.source.locations.debian_names import debian_name
from verify.source.locations.debian_names import debian_upstream_version as debian_upstream_version
from verify.source.locations.http import HttpClient
from verify.source.locations.interface import SourceLocation
from verify.source.models import DigestClaim, FetchedFile
from verify.source.releases import Version

MIRROR_SETTING = "CPYTHON_VERIFY_DEBIAN_MIRROR"
ALLOW_EXPIRED_SETTING = "CPYTHON_VERIFY_DEBIAN_ALLOW_EXPIRED"
"""Set to ``1`` to accept an ``InRelease`` past its ``Valid-Until`` (an archived snapshot as the mirror)."""
MAX_CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future an ``InRelease`` ``Date`` may be: clocks of mirrors and users disagree a little."""
MAX_INDEX_BYTES = 64 * 1024 * 1024
"""Cap on a compressed Sources file (trixie's is ~10 MB)."""
MAX_UNCOMPRESSED_INDEX_BYTES = 512 * 1024 * 1024
"""Cap on a decompressed Sources file (trixie's is ~57 MB): an index is not allowed to be a bomb."""
_MAX_RELEASE_BYTES = 4 * 1024 * 1024


class DebianIndexError(FetchError):
    """A Debian index could not be obtained, authenticated or read."""


# --- names and versions (pure) ---------------------------------------------------------------


def upstream_of(debian_version: str) -> str:
    """The upstream part of a Debian version: no epoch, no revision, no ``~``.

    ``1:3.14.0~rc1-2`` -> ``3.14.0rc1``.
    """
    without_epoch = debian_version.split(":", 1)[1] if ":" in debian_version else debian_version
    upstream = without_epoch.rsplit("-", 1)[0] if "-" in without_epoch else without_epoch
    return upstream.replace("~", "")


# --- Sources and Release parsing (pure) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file of a Debian source package, as its ``Checksums-Sha256`` lists it."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class SourceStanza:
    """One source package version in a ``Sources`` index."""

    package: str
    version: str
    directory: str
    files: tuple[SourceFile, ...]

    @property
    def upstream_version(self) -> str:
        """The upstream version this package version packages (``3.13.5`` for ``3.13.5-2+deb13u5``)."""
        return upstream_of(self.version)

    def file(self, name: str) -> SourceFile | None:
        """The listed file called ``name``, if any."""
        return next((item for item in self.files if item.name == name), None)


def _checksums(value: str, where: str) -> tuple[SourceFile, ...]:
    files = []
    for line in value.splitlines():
        words = line.split()
        if not words:
            continue
        if len(words) != 3 or not re.fullmatch(r"[0-9a-f]{64}", words[0]) or not words[1].isdigit():
            raise DebianIndexError(f"{where}: malformed Checksums-Sha256 line {line.strip()!r}")
        files.append(SourceFile(name=words[2], size=int(words[1]), sha256=words[0]))
    return tuple(files)


def find_package(sources_text: str, package: str, *, where: str = "Sources") -> list[SourceStanza]:
    """Every stanza of ``package`` in a ``Sources`` index, in index order.

    Scans for the package's ``Package:`` lines instead of parsing all ~40,000 stanzas.
    """
    stanzas = []
    for match in re.finditer(rf"^Package:[ \t]*{re.escape(package)}[ \t]*$", sources_text, re.MULTILINE):
        start = sources_text.rfind("\n\n", 0, match.start())
        end = sources_text.find("\n\n", match.end())
        block = sources_text[start + 2 if start >= 0 else 0 : end if end >= 0 else len(sources_text)]
        fields = first_paragraph(block)
        if "Version" not in fields or "Directory" not in fields:
            raise DebianIndexError(f"{where}: stanza of {package} lacks Version or Directory")
        directory = fields["Directory"]
        if directory.startswith("/") or ".." in directory.split("/"):
            raise DebianIndexError(f"{where}: {package} has an unsafe Directory {directory!r}")
        stanzas.append(
            SourceStanza(
                package=package,
                version=fields["Version"],
                directory=directory,
                files=_checksums(fields.get("Checksums-Sha256", ""), where),
            )
        )
    return stanzas


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    """What a suite's (In)Release file says: its names and the sha256 of each index."""

    suite: str | None
    codename: str | None
    sha256: dict[str, tuple[str, int]]
    """Index path (``main/source/Sources.xz``) -> (sha256, size)."""
    date: datetime | None = None
    """When the archive signed it (``Date``)."""
    valid_until: datetime | None = None
    """When it stops being current (``Valid-Until``), if the archive says."""


def _release_time(fields: dict[str, str], name: str, where: str) -> datetime | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        raise DebianIndexError(f"{where}: malformed {name} {value[:80]!r}") from None
    # Debian writes UTC; a date without a zone is read as UTC too.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_release(text: str, *, where: str = "InRelease") -> ReleaseFile:
    """Parse the (verified) body of an ``InRelease``/``Release`` file."""
    fields = first_paragraph(text)
    sums: dict[str, tuple[str, int]] = {}
    for line in fields.get("SHA256", "").splitlines():
        words = line.split()
        if len(words) == 3 and re.fullmatch(r"[0-9a-f]{64}", words[0]) and words[1].isdigit():
            sums[words[2]] = (words[0], int(words[1]))
    return ReleaseFile(
        suite=fields.get("Suite"),
        codename=fields.get("Codename"),
        sha256=sums,
        date=_release_time(fields, "Date", where),
        valid_until=_release_time(fields, "Valid-Until", where),
    )


def check_release_freshness(
    release: ReleaseFile, now: datetime, *, allow_expired: bool = False, where: str = "InRelease"
) -> list[str]:
    """Refuse a ``Release`` that is not current at ``now``; return notes about what was allowed.

    ``Date`` must be present and not later than ``now`` plus :data:`MAX_CLOCK_SKEW`; ``Valid-Until``,
    when present, must not have passed, unless ``allow_expired`` (an archived snapshot), which is
    noted.
    """
    if release.date is None:
        raise DebianIndexError(f"{where}: states no Date; cannot tell whether it is current")
    if release.date > now + MAX_CLOCK_SKEW:
        raise DebianIndexError(
            f"{where}: dated {release.date:%Y-%m-%d %H:%M:%S %Z}, in the future (now {now:%Y-%m-%d %H:%M:%S %Z}); "
            "a clock is wrong or the index is forged"
        )
    if release.valid_until is not None and release.valid_until < now:
        expired = f"{where}: expired on {release.valid_until:%Y-%m-%d %H:%M:%S %Z} (Valid-Until)"
        if not allow_expired:
            raise DebianIndexError(
                f"{expired}; an old index may hide newer packages. For an archived snapshot, set "
                f"{ALLOW_EXPIRED_SETTING}=1"
            )
        return [f"{expired}, accepted because {ALLOW_EXPIRED_SETTING} is set"]
    return []


def allow_expired_from_environment() -> bool:
    """``$CPYTHON_VERIFY_DEBIAN_ALLOW_EXPIRED``: ``1`` accepts an expired ``Valid-Until``; unset or ``0``
    does not; anything else is an error."""
    value = os.environ.get(ALLOW_EXPIRED_SETTING, "").strip()
    if value not in ("", "0", "1"):
        raise FetchError(f"{ALLOW_EXPIRED_SETTING}={value[:40]!r}: expected 1 or 0")
    return value == "1"


def mirror_from_apt(sources: Iterable[AptSource]) -> str | None:
    """The first http(s) URI of the configured sources whose path ends in ``/debian`` (not ``-security``)."""
    for source in sources:
        parts = urlsplit(source.uri)
        if parts.scheme in ("http", "https") and parts.path.rstrip("/").endswith("/debian"):
            return source.uri.rstrip("/")
    return None


def resolve_debian_mirror(mirror: str | None = None, *, root: Path = Path("/")) -> str | None:
    """The mirror to use: the argument, ``$CPYTHON_VERIFY_DEBIAN_MIRROR``, else the host's apt configuration."""
    chosen = mirror or os.environ.get(MIRROR_SETTING)
    if chosen:
        return chosen.rstrip("/")
    return mirror_from_apt(host_apt_sources(root))


# --- decompression and signatures (I/O edges) -----------------------------------------------


def decompress_index(data: bytes, compression: str, *, where: str, limit: int = MAX_UNCOMPRESSED_INDEX_BYTES) -> str:
    """Decompress a Sources file, refusing output over ``limit`` bytes."""
    try:
        if compression == "xz":
            decompressor = lzma.LZMADecompressor()
            output = decompressor.decompress(data, max_length=limit + 1)
            complete = decompressor.eof
        else:
            zdecompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            output = zdecompressor.decompress(data, limit + 1)
            complete = zdecompressor.eof
    except (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise DebianIndexError(f"{where}: corrupt {compression} data ({exc})") from None
    if len(output) > limit:
        raise DebianIndexError(f"{where}: decompresses to more than {limit} bytes")
    if not complete:
        raise DebianIndexError(f"{where}: truncated {compression} data")
    return output.decode("utf-8", errors="replace")


def verify_inrelease(data: bytes, keyring: Path, *, where: str) -> str:
    """Check an ``InRelease`` signature with ``gpgv`` against ``keyring``; return only the signed text."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise DebianIndexError(f"{where}: gpgv is not installed (Debian package 'gpgv'); cannot authenticate")
    if not keyring.is_file():
        raise DebianIndexError(f"{where}: keyring {keyring} does not exist (Debian package 'debian-archive-keyring')")
    with tempfile.TemporaryDirectory(prefix="cpython-verify-gpgv-") as scratch:
        signed = Path(scratch) / "InRelease"
        signed.write_bytes(data)
        body = Path(scratch) / "body"
        result = subprocess.run(
            [gpgv, "--quiet", "--keyring", str(keyring), "--output", str(body), str(signed)],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0 or not body.is_file():
            lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = lines[-1] if lines else f"gpgv exited {result.returncode}"
            raise DebianIndexError(f"{where}: InRelease signature does not verify against {keyring}: {reason}")
        # Only what gpgv says was signed is read: text around the signed block is ignored.
        return body.read_text(encoding="utf-8", errors="replace")


# --- the location ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SuiteIndex:
    suite: str
    stanzas: tuple[SourceStanza, ...]
    authenticated: bool


@dataclass(frozen=True, slots=True)
class _Match:
    suite: str
    stanza: SourceStanza
    file: SourceFile
    authenticated: bool


class DebianArchive(SourceLocation):
    """A Debian mirror's source archive: ``dists/<suite>/main/source/Sources.xz`` and ``pool/``."""

    def __init__(
        self,
        package: str,
        *,
        mirror: str,
        client: HttpClient,
        cache: Cache,
        suites: Sequence[str] = DEFAULT_SUITES,
        keyring: Path | None = DEFAULT_KEYRING,
        allow_expired: bool = False,
    ) -> None:
        """``keyring=None`` skips the ``InRelease`` check; claims are then labelled unauthenticated.
        ``allow_expired`` accepts an ``InRelease`` past its ``Valid-Until`` (an archived snapshot)."""
        self.package = package
        self.mirror = mirror.rstrip("/")
        self.suites = tuple(suites)
        self._client = client
        self._cache = cache
        self._keyring = keyring
        self._allow_expired = allow_expired
        self._indexes: dict[str, _SuiteIndex | None] = {}
        self.notes: list[str] = []
        """Suites that could not be read, and why (skipped suites are data, not exceptions)."""

    @classmethod
    def from_settings(
        cls,
        package: str,
        *,
        client: HttpClient,
        cache: Cache,
        mirror: str | None = None,
        suites: Sequence[str] = DEFAULT_SUITES,
        keyring: Path | None = DEFAULT_KEYRING,
        apt_root: Path = Path("/"),
    ) -> DebianArchive:
        """Use ``mirror``, else ``$CPYTHON_VERIFY_DEBIAN_MIRROR``, else the apt configuration under ``apt_root``;
        accept expired indexes only when ``$CPYTHON_VERIFY_DEBIAN_ALLOW_EXPIRED`` is ``1``."""
        allow_expired = allow_expired_from_environment()
        chosen = resolve_debian_mirror(mirror, root=apt_root)
        if chosen is None:
            raise FetchError(
                f"no Debian mirror: set {MIRROR_SETTING} (the host's apt configuration names no .../debian URI)"
            )
        return cls(
            package,
            mirror=chosen,
            client=client,
            cache=cache,
            suites=suites,
            keyring=keyring,
            allow_expired=allow_expired,
        )

    @property
    def description(self) -> str:
        """``Debian <mirror> (<suites>)``."""
        return f"Debian {self.mirror} ({' '.join(self.suites)})"

    def fetch(self, version: Version, filename: str) -> FetchedFile | None:
        """The file from the first suite whose ``python3.X`` package packages ``version``."""
        matches = self._matches(version, filename)
        if not matches:
            return None
        match = matches[0]
        url = f"{self.mirror}/{match.stanza.directory}/{match.file.name}"
        cached = self._cache.lookup(match.file.sha256)
        if cached is not None:
            return FetchedFile(name=filename, path=cached, sha256=match.file.sha256, size=match.file.size, origin=url)
        return self._client.download(url, self._cache, name=filename)

    def digest_claims(self, version: Version, filename: str) -> list[DigestClaim]:
        """One claim per suite whose Sources index lists ``filename`` for ``version``."""
        try:
            matches = self._matches(version, filename)
        except FetchError as error:
            self.notes.append(f"Debian digest claims unavailable: {error.message}")
            return []
        return [
            DigestClaim(
                source=(
                    f"Debian {match.suite} Sources index ({match.stanza.package} {match.stanza.version}"
                    f"{'' if match.authenticated else ', InRelease signature not checked'})"
                ),
                sha256=match.file.sha256,
                size=match.file.size,
            )
            for match in matches
        ]

    def _matches(self, version: Version, filename: str) -> list[_Match]:
        name = debian_name(self.package, version, filename)
        if name is None:
            return []
        matches = []
        for suite in self.suites:
            index = self._index(suite)
            if index is None:
                continue
            for stanza in index.stanzas:
                listed = stanza.file(name)
                if stanza.upstream_version == str(version) and listed is not None:
                    matches.append(_Match(suite, stanza, listed, index.authenticated))
                    break
        return matches

    def _index(self, suite: str) -> _SuiteIndex | None:
        if suite not in self._indexes:
            self._indexes[suite] = self._load_index(suite)
        return self._indexes[suite]

    def _load_index(self, suite: str) -> _SuiteIndex | None:
        base = f"{self.mirror}/dists/{suite}"
        expected: dict[str, tuple[str, int]] | None = None
        if self._keyring is not None:
            inrelease = self._client.get_bytes(f"{base}/InRelease", max_bytes=_MAX_RELEASE_BYTES)
            if inrelease is None:
                self.notes.append(f"Debian suite {suite}: no InRelease at {base}")
                return None
            where = f"{base}/InRelease"
            release = parse_release(verify_inrelease(inrelease, self._keyring, where=where), where=where)
            self.notes += check_release_freshness(
                release, datetime.now(UTC), allow_expired=self._allow_expired, where=where
            )
            if suite not in (release.suite, release.codename):
                # A validly signed index of another suite, served in this one's place.
                raise DebianIndexError(
                    f"{base}/InRelease: is for suite {release.suite}/{release.codename}, not {suite}"
                )
            expected = release.sha256
        for compression, index_name in (("xz", "Sources.xz"), ("gz", "Sources.gz")):
            path = f"main/source/{index_name}"
            if expected is not None and path not in expected:
                continue
            data = self._index_bytes(f"{base}/{path}", expected.get(path) if expected else None)
            if data is None:
                continue
            text = decompress_index(data, compression, where=f"{base}/{path}")
            stanzas = find_package(text, self.package, where=f"{base}/{path}")
            return _SuiteIndex(suite=suite, stanzas=tuple(stanzas), authenticated=expected is not None)
        self.notes.append(f"Debian suite {suite}: no main/source/Sources index at {base}")
        return None

    def _index_bytes(self, url: str, expected: tuple[str, int] | None) -> bytes | None:
        if expected is None:
            return self._client.get_bytes(url, max_bytes=MAX_INDEX_BYTES)
        digest, size = expected
        # The signed Release names the index by digest, so a cached copy is as good as a download.
        cached = self._cache.lookup(digest)
        if cached is None:
            fetched = self._client.download(url, self._cache, max_bytes=MAX_INDEX_BYTES)
            if fetched is None:
                raise DebianIndexError(f"{url}: listed in the signed InRelease but not on the mirror")
            if fetched.sha256 != digest:
                self._cache.discard(fetched)
                raise DebianIndexError(f"{url}: sha256 {fetched.sha256} is not {digest} as the signed InRelease states")
            # The signed InRelease vouches for these bytes: they may enter the cache.
            cached = self._cache.admit(fetched).path
        data = cached.read_bytes()
        if len(data) != size:
            raise DebianIndexError(f"{url}: {len(data)} bytes, the signed InRelease states {size}")
        return data
