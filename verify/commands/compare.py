"""``cpython-verify compare A B``: compare two manifests, install trees or rebuild results."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from verify.commands.output import Report, output_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED, EXIT_OK
from verify.common.fsutil import write_atomic


@click.command("compare")
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON (cpython-verify/compare/v1).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML report to this file.",
)
@click.option(
    "--diffoscope",
    "use_diffoscope",
    is_flag=True,
    help="Also run diffoscope on each differing file (only those), with caps.",
)
@click.option(
    "--diffoscope-timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds diffoscope may take per file.",
)
@click.option(
    "--diffoscope-max-output",
    type=click.IntRange(min=1000),
    default=200_000,
    show_default=True,
    help="Characters of diffoscope output kept per file.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Parallel hashing/comparison workers (default: CPUs).")
@output_options
def compare(
    a: Path,
    b: Path,
    as_json: bool,
    html_path: Path | None,
    use_diffoscope: bool,
    diffoscope_timeout: float,
    diffoscope_max_output: int,
    workers: int | None,
) -> None:
    """Compare A and B: each a manifest file, an install tree, or a rebuild result directory.

    Exit 0 when identical, 1 when they differ (or neither has a single entry: nothing compared), 2 on error.

    \b
    Examples:
      cpython-verify compare rebuild-3.13.5-default/manifest.json peer/manifest.json
      cpython-verify compare /opt/python3.13 rebuild-3.13.5-default --html report.html
      cpython-verify compare A B --json -o compare.json --diffoscope
    """
    from verify.compare import DiffoscopeSettings, compare_paths
    from verify.report.compare import comparison_to_json, render_html, render_text

    settings = (
        DiffoscopeSettings(timeout=diffoscope_timeout, max_output=diffoscope_max_output) if use_diffoscope else None
    )
    with Report.current() as report:
        with progress.phase(f"comparing {a} and {b}"):
            comparison = compare_paths(a, b, workers=workers, diffoscope=settings)
        if html_path is not None:
            write_atomic(html_path, render_html(comparison).encode())
        if as_json:
            report.echo(comparison_to_json(comparison), nl=False)
        else:
            if html_path is not None:
                report.echo(f"HTML report: {html_path}")
            render_text(comparison, report.console(), verbose=report.verbose)
        sys.exit(EXIT_OK if comparison.passed else EXIT_FAILED)
