"""``cpython-verify docs [NAME]``: the documentation installed with the tool."""

from __future__ import annotations

import click

from verify.commands.output import Report, output_options


@click.command("docs")
@click.argument("name", required=False)
@click.option("--path", "path_only", is_flag=True, help="Print where the page is installed instead of its text.")
@output_options
def docs(name: str | None, path_only: bool) -> None:
    """List the documentation installed with the tool, or print page NAME (Markdown).

    The pages --help texts name as docs/NAME.md are these, installed with the package.

    \b
    Examples:
      cpython-verify docs
      cpython-verify docs audit-json
      cpython-verify docs docs/attestation.md --path
    """
    from verify.common import shipped_docs

    with Report.current() as report:
        if name is None:
            for stem, title in shipped_docs.available().items():
                report.echo(f"{stem:18} {title}")
            return
        location, text = shipped_docs.page(name)
        report.echo(location if path_only else text, nl=path_only or not text.endswith("\n"))
