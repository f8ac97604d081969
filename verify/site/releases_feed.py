"""Release discovery: which CPython releases exist, from python.org's release metadata or a mirror of it.

python.org serves every release as one JSON list at ``/api/v2/downloads/release/``; each item has
``name`` (``"Python 3.13.5"``), ``version`` (the major number), ``is_published``, ``pre_release``,
``release_date`` (ISO 8601, sometimes null) and ``release_page``. Items that are not CPython 3
releases, not published, or malformed are skipped and *noted*, never fatal: one odd record must not
hide the rest of the feed from a scheduled job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from verify.common.errors import FetchError, NothingToDo, OperationalError, VersionError
from verify.common.fsutil import read_regular_file
from verify.common.jsonutil import JsonLimitError, loads_bounded
from verify.common.limits import JSON_MAX_DEPTH
from verify.source.releases import Version

DEFAULT_RELEASES_URL: Final = "https://www.python.org/api/v2/downloads/release/"
RELEASES_URL_VARIABLE: Final = "CPYTHON_VERIFY_RELEASES_URL"
MAX_FEED_BYTES: Final = 32 << 20
RELEASES_FORMAT: Final = "cpython-verify/releases/v1"
"""The real feed is a few hundred kilobytes; a larger answer is not the feed."""


class FeedError(OperationalError):
    """The release feed could not be obtained or is not the expected JSON list."""


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One published CPython release."""

    version: Version
    released_at: datetime | None
    pre_release: bool
    page: str | None


def releases_to_json(releases: Iterable[ReleaseInfo]) -> dict[str, Any]:
    """What ``releases --json`` prints, through the model ``plan --releases`` reads it with: the releases,
    newest first, with the format id."""
    from verify.site.release_listing import ListedRelease, ReleaseListing

    listed = [
        ListedRelease(
            version=release.version,
            series=release.version.series,
            released_at=release.released_at.isoformat() if release.released_at else None,
            pre_release=release.pre_release,
            page=release.page,
        )
        for release in releases
    ]
    return ReleaseListing(format=RELEASES_FORMAT, releases=tuple(listed)).to_json()


def default_feed_url() -> str:
    """``$CPYTHON_VERIFY_RELEASES_URL`` (a mirror, or a local file) or python.org's API."""
    return os.environ.get(RELEASES_URL_VARIABLE) or DEFAULT_RELEASES_URL


def parse_feed(document: bytes) -> tuple[tuple[ReleaseInfo, ...], tuple[str, ...]]:
    """Parse the feed into releases (newest first) and notes about the items skipped."""
    try:
        items = loads_bounded(document)
    except JsonLimitError:
        raise FeedError(
            f"the release feed is nested too deeply (over {JSON_MAX_DEPTH} levels) to be the release list"
        ) from None
    except ValueError as error:
        raise FeedError(f"the release feed is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(items, list):
        raise FeedError("the release feed is not a JSON list of releases")
    releases: dict[Version, ReleaseInfo] = {}
    notes: list[str] = []
    skipped_other = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            notes.append(f"item {index}: not a release record; skipped")
            continue
        name = item["name"]
        if item.get("version") != 3 or not name.startswith("Python 3."):
            skipped_other += 1  # Python 2, "Python install manager", ...: not ours, not worth a line each
            continue
        if item.get("is_published") is not True:
            notes.append(f"{name}: not published; skipped")
            continue
        try:
            version = Version.parse(name.removeprefix("Python "))
        except VersionError:
            notes.append(f"{name}: not a CPython release version; skipped")
            continue
        released_at = _timestamp(item.get("release_date"))
        if item.get("release_date") is not None and released_at is None:
            notes.append(f"{name}: unreadable release_date {item.get('release_date')!r}")
        page = item.get("release_page")
        page = page if isinstance(page, str) else None
        info = ReleaseInfo(version, released_at, item.get("pre_release") is True, page)
        if version in releases:
            notes.append(f"{name}: listed twice; the first record is kept")
            continue
        releases[version] = info
    if skipped_other:
        notes.append(f"{skipped_other} record(s) that are not CPython 3 releases skipped")
    return tuple(sorted(releases.values(), key=lambda release: release.version, reverse=True)), tuple(notes)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select(
    releases: Iterable[ReleaseInfo],
    *,
    since: date | None = None,
    include_prereleases: bool = False,
    series: Sequence[str] = (),
) -> tuple[ReleaseInfo, ...]:
    """Releases on or after ``since`` (a release without a date is kept: it cannot be shown to be old)."""
    chosen = []
    for release in releases:
        if release.pre_release and not include_prereleases:
            continue
        if series and release.version.series not in series:
            continue
        if since is not None and release.released_at is not None and release.released_at.date() < since:
            continue
        chosen.append(release)
    return tuple(chosen)


def check_selection(
    found: Sequence[ReleaseInfo],
    chosen: Sequence[ReleaseInfo],
    *,
    feed: str,
    since: date | None = None,
    include_prereleases: bool = False,
    series: Sequence[str] = (),
    allow_empty: bool = False,
) -> None:
    """Refuse an empty answer with one line (:class:`NothingToDo`, exit 1): a feed without any CPython 3
    release is not the release list, a series the feed has no release of is a mistake, and no release
    matching is success only when ``allow_empty`` says an empty night is expected."""
    if not found:
        raise NothingToDo(f"the release feed {feed} holds no published CPython 3 release record")
    missing = [name for name in series if not any(release.version.series == name for release in found)]
    if missing:
        raise NothingToDo(
            f"the release feed has no release of series {', '.join(missing)} (its newest is {found[0].version})"
        )
    if not chosen and not allow_empty:
        asked = [f"since {since.isoformat()}"] if since else []
        asked += [f"series {', '.join(series)}"] if series else []
        asked += [] if include_prereleases else ["final releases only"]
        raise NothingToDo(f"no release in the feed matches ({'; '.join(asked)}); --allow-empty accepts an empty list")


def fetch_feed(url: str, *, timeout: float = 30.0) -> bytes:
    """The feed's bytes from an http(s) URL, a ``file://`` URL or a local path."""
    if url.startswith(("http://", "https://")):
        from verify.source.locations.http import HttpClient, HttpSettings

        client = HttpClient.quiet(
            HttpSettings(connect_timeout=timeout, read_timeout=timeout, attempts=3, max_bytes=MAX_FEED_BYTES)
        )
        try:
            body = client.get_bytes(url, max_bytes=MAX_FEED_BYTES)
        except FetchError as error:
            raise FeedError(f"cannot fetch the release feed: {error.message}") from None
        finally:
            client.close()
        if body is None:
            raise FeedError(f"the release feed is not at {url} (404)")
        return body
    path = Path(url.removeprefix("file://"))
    try:
        body = read_regular_file(path, MAX_FEED_BYTES)
    except OSError as error:
        raise FeedError(f"cannot read the release feed {path}: {error.strerror or error}") from None
    if len(body) > MAX_FEED_BYTES:
        raise FeedError(f"the release feed {path} is larger than {MAX_FEED_BYTES >> 20} MiB")
    return body
