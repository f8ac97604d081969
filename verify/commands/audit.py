"""``cpython-verify audit PREFIX``: audit an installed Python against its verified source release."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from verify import progress
from verify.commands.options import source_options
from verify.commands.output import Report, output_options
from verify.errors import EXIT_FAILED, EXIT_OK, OperationalError
from verify.releases import Version


@click.command("audit")
@click.argument("prefix", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--version", "version_text", required=True, help="The CPython release installed, e.g. 3.11.2.")
@click.option("--against", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A rebuild's manifest: compare ELF binaries and extension modules with it.")
@source_options
@click.option("--reference-python", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An interpreter of the same version, not the audited one (e.g. a rebuild), to recompile .pyc.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to unpack the verified source (default: a temporary directory).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (cpython-verify/audit/v1).")
@click.option("-v", "--verbose", is_flag=True, help="List every finding on the terminal.")
@output_options
def audit(
    prefix: Path,
    version_text: str,
    against: Path | None,
    reference_python: Path | None,
    work_dir: Path | None,
    as_json: bool,
    verbose: bool,
    **params: Any,
) -> None:
    """Audit the Python installed under PREFIX against its verified source release.

    Exit 0 when everything matches, 1 when there are findings, 2 on error.

    \b
    Examples:
      cpython-verify audit /usr --version 3.11.2 --allow-missing openpgp
      cpython-verify audit /opt/python3.13 --version 3.13.5 --against rebuild-3.13.5-default/manifest.json
      cpython-verify audit /usr/local --version 3.13.5 --from ~/distfiles --offline --json -o audit.json
    """
    from verify.assembly import SourceOptions, verified_source_tree
    from verify.audit import audit_installation, find_stdlib
    from verify.manifest import read_manifest
    from verify.report.audit import audit_to_json, render_audit_text

    version = Version.parse(version_text)
    find_stdlib(prefix, version)  # fail before fetching anything if the prefix is wrong
    if work_dir is not None and (work_dir / f"Python-{version}").exists():
        raise OperationalError(
            f"--work-dir {work_dir} already holds Python-{version}; remove it or choose another directory"
        )
    manifest = read_manifest(against) if against is not None else None
    with tempfile.TemporaryDirectory(prefix="cpython-verify-audit-") as scratch:
        base = work_dir or Path(scratch)
        base.mkdir(parents=True, exist_ok=True)
        _verdict, tree = verified_source_tree(version, SourceOptions.from_params(params), base)
        with progress.phase(f"auditing {prefix}"):
            report = audit_installation(prefix, version, tree, against=manifest, reference_python=reference_python)
    with Report.current() as output:
        if as_json:
            output.echo(audit_to_json(report), nl=False)
        else:
            render_audit_text(report, output.console(), verbose=verbose)
        sys.exit(EXIT_OK if report.clean else EXIT_FAILED)
