"""``cpython-verify cache``: look after the caches. ``cache check`` checks every entry of every kind.

Exit codes: 0 every entry intact, 1 some entry failed its check (it was removed, unless the cache is
read-only), 2 the check could not run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from verify.commands.output import Report, output_options
from verify.common.errors import EXIT_FAILED, EXIT_OK, OperationalError


@click.group("cache")
def cache() -> None:
    """Look after the caches (downloads, environments, rebuilds).

    \b
    Examples:
      cpython-verify cache check
      cpython-verify cache check --cache /srv/cpython-verify-cache --json
    """


@cache.command("check")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CPYTHON_VERIFY_CACHE",
    help="Cache root (default: $XDG_CACHE_HOME/cpython-verify).",
)
@click.option(
    "--rebuild-cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="The rebuild cache, when it is not the cache root's rebuilds/.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (cpython-verify/cache-check/v1).")
@output_options
def check(cache_dir: Path | None, rebuild_cache: Path | None, as_json: bool) -> None:
    """Check every cache entry as it is checked before use, and remove what fails.

    Downloads and .deb files are hashed against the digest their names promise, rootfs tarballs too;
    unpacked rootfs trees and rebuilds are compared, file by file, with their manifests (and rebuilds
    with their seals and records). Entries that fail are removed and listed, never used again;
    staging areas that no live process holds (a killed run's) are removed too. Entries another run
    is building at the time are left alone.
    """
    from verify.common.cachecheck import CacheCheck
    from verify.environments.rootfs import EnvironmentCache
    from verify.rebuild.cache import RebuildCache, rebuild_cache_dir
    from verify.source.locations.cache import Cache

    report = Report.current()
    for given in (cache_dir, rebuild_cache):
        if given is not None and given.exists() and not given.is_dir():
            raise OperationalError(f"{given} is not a cache directory (not a directory)")
    downloads = Cache.at(cache_dir)
    environments = EnvironmentCache.at(cache_dir)
    kinds = [
        *downloads.check_all(),
        environments.debs.check_all(),
        environments.check_all(),
        RebuildCache(rebuild_cache_dir(cache_dir, rebuild_cache)).check_all(),
    ]
    result = CacheCheck(tuple(kinds))
    if as_json:
        report.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        for line in result.text():
            report.echo(line)
    report.close()
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)
