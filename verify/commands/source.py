"""``cpython-verify source VERSION``: fetch a release's source and verify it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from verify.commands.options import VERSION, source_options
from verify.commands.output import Report, output_options
from verify.common.errors import EXIT_FAILED, EXIT_OK
from verify.source.assembly import verify_release_source

if TYPE_CHECKING:
    from verify.source.assembly import SourceOptions
    from verify.source.releases import Version


@click.command()
@click.argument("version", type=VERSION)
@source_options
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON (docs/source-verdict.md).")
@output_options
def source(version: Version, source: SourceOptions, as_json: bool) -> None:
    """Fetch CPython VERSION's source tarball and signatures, and verify them.

    Checks every signature the series publishes (OpenPGP against the pinned release-manager key,
    Sigstore against the pinned identity and issuer), cross-checks the sha256 against every
    independent source given, and checks Include/patchlevel.h names VERSION.

    Exit 0 verified, 1 not verified, 2 could not decide (network, arguments).

    \b
    Examples:
      cpython-verify source 3.13.5
      cpython-verify source 3.13.5 --from ~/distfiles --offline
      cpython-verify source 3.13.5 --debian --sha256 peer=93e583f2...d640 --json -o verdict.json
    """
    from verify.source.recipes import load_recipe
    from verify.source.report import verdict_to_json, verdict_to_text

    with Report.current() as report:
        verdict = verify_release_source(version, source, recipe=load_recipe(version.series, source.recipes_dir))
        if as_json:
            report.echo(verdict_to_json(verdict), nl=False)
        else:
            report.echo(verdict_to_text(verdict, verbose=report.verbose, color=report.color))
        raise click.exceptions.Exit(EXIT_OK if verdict.verified else EXIT_FAILED)
