"""``cpython-verify releases``: list CPython releases from python.org's release metadata."""

from __future__ import annotations

import json
from datetime import date

import click

from verify.commands.output import Report, output_options


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _check_series(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from verify.source import names

    for text in value:
        if not names.matches(names.SERIES_PATTERN, text):
            raise click.BadParameter(f"{text!r} is not a release series (e.g. 3.13)")
    return value


@click.command("releases")
@click.option("--since", callback=_parse_date, help="Only releases on or after this date (YYYY-MM-DD).")
@click.option("--url", help="Release metadata URL or file (default: $CPYTHON_VERIFY_RELEASES_URL or python.org's API).")
@click.option("--prereleases", is_flag=True, help="Include alphas, betas and release candidates.")
@click.option(
    "--series", "series", multiple=True, callback=_check_series, help="Only these series, e.g. 3.13 (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (releases/v1: what `plan --releases` reads).")
@click.option(
    "--allow-empty",
    is_flag=True,
    help="When no release matches --since (a night with no release), print an empty list and exit 0.",
)
@output_options
def releases(
    since: date | None, url: str | None, prereleases: bool, series: tuple[str, ...], as_json: bool, allow_empty: bool
) -> None:
    """List CPython releases from python.org's release metadata (or a mirror), newest first.

    Exit 1 with one line when the feed holds no CPython 3 release at all, when a --series has no
    release in it, or when nothing matches (unless --allow-empty); 2 when the feed cannot be read.

    \b
    Examples:
      cpython-verify releases --since 2025-06-01
      cpython-verify releases --series 3.13 --prereleases --json -o releases.json
      cpython-verify releases --url mirror/releases.json
    """
    from verify.site.releases_feed import (
        check_selection,
        default_feed_url,
        fetch_feed,
        parse_feed,
        releases_to_json,
        select,
    )

    report = Report.current()
    feed = url or default_feed_url()
    found, notes = parse_feed(fetch_feed(feed))
    chosen = select(found, since=since, include_prereleases=prereleases, series=series)
    check_selection(
        found, chosen, feed=feed, since=since, include_prereleases=prereleases, series=series, allow_empty=allow_empty
    )
    if as_json:
        report.echo(json.dumps(releases_to_json(chosen), indent=2, sort_keys=True))
    else:
        for release in chosen:
            when = release.released_at.date().isoformat() if release.released_at else "(no date)"
            report.echo(f"{release.version!s:12} {when}{'  pre-release' if release.pre_release else ''}")
    for note in notes:
        click.echo(f"note: {note}", err=True)
    report.close()
