"""Digest claims from release metadata: python.org's JSON API and cpython-release-tracker records.

Both are *claims*, compared with the digest of the bytes actually fetched; neither is a signature.
Each statement keeps an honest label of who made it: python.org's own ``sha256`` field and the
tracker's independently computed sha256 are separate claims, even when they come in one file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from verify.common.errors import FetchError, OperationalError
from verify.common.fsutil import read_regular_file
from verify.common.jsonutil import loads_bounded
from verify.source.locations.http import HttpClient
from verify.source.models import DigestClaim
from verify.source.releases import Version

PYTHON_ORG_API = "https://www.python.org/api/v2/downloads"
MAX_METADATA_BYTES = 32 * 1024 * 1024
_SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_RELEASE_ID_RE = re.compile(r"/release/(\d+)/?$")


class MetadataError(OperationalError):
    """Release metadata is unreadable, of an unknown shape, or says nothing about the file."""


def _basename(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def _digest(value: object) -> str | None:
    """A sha256 hex string, lower-cased; None for null/empty; an error for anything else."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise MetadataError(f"not a sha256 digest: {value!r}")
    return value.lower()


def _size(value: object) -> int | None:
    """A record's ``filesize``: a positive integer, else None (the size is a hint for messages, not a check)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _records(data: object) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and isinstance(data.get("results"), list):
        data = data["results"]  # a paginated API answer
    if not isinstance(data, list) or not all(isinstance(item, Mapping) for item in data):
        raise MetadataError("release metadata must be a JSON list of file records")
    return list(data)


def claims_from_release_metadata(data: object, filename: str, *, origin: str) -> list[DigestClaim]:
    """Claims about ``filename`` in parsed release metadata, in either format:

    * cpython-release-tracker ``versions/<v>.json``: ``[{"raw": {python.org record}, "sha256": tracker's}]``
    * python.org's ``release_file`` API answer: ``[{"url": ..., "sha256_sum": ...}]``

    Records of other files are ignored; a record of a known shape with a malformed digest is an error.
    """
    claims = []
    for record in _records(data):
        raw = record.get("raw")
        if isinstance(raw, Mapping):  # the tracker's format
            if _basename(str(raw.get("url", ""))) != filename:
                continue
            published = _digest(raw.get("sha256"))
            size = _size(raw.get("filesize"))
            if published:
                claims.append(DigestClaim(f"python.org release-file sha256 (as recorded by {origin})", published, size))
            computed = _digest(record.get("sha256"))
            if computed:
                claims.append(
                    DigestClaim(f"cpython-release-tracker's own sha256 of the download ({origin})", computed, size)
                )
        elif "url" in record:  # python.org's API
            if _basename(str(record["url"])) != filename:
                continue
            published = _digest(record.get("sha256_sum"))
            if published:
                claims.append(
                    DigestClaim(
                        f"python.org release API sha256_sum ({origin})", published, _size(record.get("filesize"))
                    )
                )
        else:
            raise MetadataError(f"{origin}: a record has neither 'raw' nor 'url'")
    return claims


def load_json(source: str, *, client: HttpClient) -> object:
    """A JSON document from a file path or an http(s) URL."""
    if source.startswith(("http://", "https://")):
        body = client.get_bytes(source, max_bytes=MAX_METADATA_BYTES)
        if body is None:
            raise MetadataError(f"{source}: not found (HTTP 404)")
    else:
        try:
            body = read_regular_file(Path(source), MAX_METADATA_BYTES)
        except OSError as exc:
            raise MetadataError(f"{source}: cannot read: {exc.strerror}") from None
        if len(body) > MAX_METADATA_BYTES:
            raise MetadataError(f"{source}: larger than {MAX_METADATA_BYTES} bytes")
    try:
        # Bounded nesting: 100,000 nested lists raised RecursionError from inside the decoder. ValueError
        # also covers undecodable bytes and numbers past the interpreter's integer-digit limit.
        return loads_bounded(body)
    except ValueError as exc:
        raise MetadataError(f"{source}: not valid JSON ({' '.join(str(exc).split())[:200]})") from None


class ReleaseMetadataFiles:
    """A claim provider over user-supplied release metadata (``--release-metadata FILE|URL``).

    The user asked for these cross-checks, so a source that says nothing about the file is an
    error rather than a silently skipped check.
    """

    def __init__(self, sources: Sequence[str], *, client: HttpClient) -> None:
        """``sources``: paths or URLs of JSON documents."""
        self._sources = tuple(sources)
        self._client = client
        self._loaded: dict[str, object] = {}

    def __call__(self, version: Version, filename: str) -> list[DigestClaim]:
        """Every claim about ``filename`` in every source."""
        claims = []
        for source in self._sources:
            if source not in self._loaded:
                self._loaded[source] = load_json(source, client=self._client)
            found = claims_from_release_metadata(self._loaded[source], filename, origin=source)
            if not found:
                raise MetadataError(f"{source}: states no sha256 for {filename} (CPython {version})")
            claims += found
        return claims


class PythonOrgReleaseAPI:
    """A claim provider asking python.org's download API for a release file's ``sha256_sum``.

    python.org being unreachable, or having no digest for the file, is a note, not an error: this is
    an extra witness, and the signatures remain the evidence.
    """

    def __init__(self, *, client: HttpClient, api: str = PYTHON_ORG_API) -> None:
        """``api`` is the ``/api/v2/downloads`` base URL (a test server's, in tests)."""
        self._client = client
        self._api = api.rstrip("/")
        self.notes: list[str] = []

    def __call__(self, version: Version, filename: str) -> list[DigestClaim]:
        """python.org's claim about ``filename``, or none (with a note saying why)."""
        try:
            return self._claims(version, filename)
        except (FetchError, MetadataError) as error:
            self.notes.append(f"python.org release API not consulted: {error.message}")
            return []

    def _claims(self, version: Version, filename: str) -> list[DigestClaim]:
        name = f"Python {version}"
        releases_url = f"{self._api}/release/?name={quote(name)}"
        releases = _records(load_json(releases_url, client=self._client))
        release = next((item for item in releases if item.get("name") == name), None)
        if release is None:
            self.notes.append(f"python.org release API knows no release named {name!r}")
            return []
        match = _RELEASE_ID_RE.search(str(release.get("resource_uri", "")))
        if match is None:
            raise MetadataError(f"{releases_url}: release has no usable resource_uri")
        files_url = f"{self._api}/release_file/?release={match.group(1)}"
        files = [
            item
            for item in _records(load_json(files_url, client=self._client))
            if _basename(str(item.get("url", ""))) == filename
        ]
        claims = claims_from_release_metadata(files, filename, origin=files_url)
        if not claims:
            self.notes.append(f"python.org release API states no sha256 for {filename}")
        return claims
