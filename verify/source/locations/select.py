"""Which locations to try, in which order, from the user's choices."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from verify.source.locations.cache import Cache, CachedReleaseFiles
from verify.source.locations.debian_names import DEFAULT_KEYRING, DEFAULT_SUITES, default_package
from verify.source.locations.http import HttpClient
from verify.source.locations.interface import SourceLocation
from verify.source.locations.local import LocalDirectory
from verify.source.recipes import Recipe


def build_locations(
    recipe: Recipe,
    *,
    from_dirs: Sequence[Path] = (),
    mirrors: Sequence[str] = (),
    debian: bool = False,
    upstream: bool = True,
    cache: Cache,
    client: HttpClient,
    debian_mirror: str | None = None,
    debian_suites: Sequence[str] = DEFAULT_SUITES,
    debian_keyring: Path | None = DEFAULT_KEYRING,
) -> list[SourceLocation]:
    """Locations in the order they are tried: local directories (no network), the release files earlier
    verified runs left in ``cache``, the user's mirrors, python.org, then Debian's source archive.

    ``upstream=False`` (``--offline``) leaves python.org out; mirrors and Debian are only used when
    asked for. Raises :class:`verify.common.errors.FetchError` for a malformed mirror URL, or when
    ``debian`` is set and no Debian mirror is configured anywhere.
    """
    package = recipe.source.debian_package or default_package(recipe.series)
    locations: list[SourceLocation] = [
        LocalDirectory(directory, cache=cache, debian_package=package, max_bytes=client.settings.max_bytes)
        for directory in from_dirs
    ]
    # The cache is local too: a release verified before is used even with the network down (issue 12).
    locations.append(CachedReleaseFiles(cache))
    if not (mirrors or upstream or debian):
        return locations  # an offline run does not load the network locations' code
    from verify.source.locations.debian import DebianArchive
    from verify.source.locations.upstream import UpstreamLocation

    locations += [UpstreamLocation.mirror(url, client=client, cache=cache) for url in mirrors]
    if upstream:
        locations.append(UpstreamLocation.python_org(recipe, client=client, cache=cache))
    if debian:
        locations.append(
            DebianArchive.from_settings(
                package,
                client=client,
                cache=cache,
                mirror=debian_mirror,
                suites=debian_suites,
                keyring=debian_keyring,
            )
        )
    return locations
