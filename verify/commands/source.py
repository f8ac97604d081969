"""``cpython-verify source VERSION``: fetch a release's source and verify it."""

from __future__ import annotations

from typing import Any

import click

from verify.assembly import SourceOptions, verify_release_source
from verify.commands.options import source_options
from verify.errors import EXIT_FAILED, EXIT_OK
from verify.releases import Version


@click.command()
@click.argument("version")
@source_options
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON (docs/source-verdict.md).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Also write the JSON verdict here.")
@click.option("-v", "--verbose", is_flag=True, help="Show where each file was looked for.")
def source(version: str, as_json: bool, output: str | None, verbose: bool, **params: Any) -> None:
    """Fetch CPython VERSION's source tarball and signatures, and verify them.

    Checks every signature the series publishes (OpenPGP against the pinned release-manager key,
    Sigstore against the pinned identity and issuer), cross-checks the sha256 against every
    independent source given, and checks Include/patchlevel.h names VERSION.

    Exit 0 verified, 1 not verified, 2 could not decide (network, arguments).
    """
    from verify.report.source import verdict_to_json, verdict_to_text

    verdict = verify_release_source(Version.parse(version), SourceOptions.from_params(params))
    document = verdict_to_json(verdict)
    if output:
        from verify.fsutil import write_atomic

        write_atomic(output, document.encode())
    click.echo(document if as_json else verdict_to_text(verdict, verbose=verbose), nl=not as_json)
    raise click.exceptions.Exit(EXIT_OK if verdict.verified else EXIT_FAILED)
