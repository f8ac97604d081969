"""``cpython-verify audit INPUT...``: audit an installed Python against its verified source release.

An input is a directory (a prefix such as ``/usr``, or an unpacked root file system), an OCI image
(``docker save`` / ``podman save`` archive, or an OCI layout directory), a tar archive (such as
python-build-standalone's ``install_only``), or one or more ``.deb`` packages. Nothing from an input
is ever executed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from verify.commands.aliases import version_and_inputs
from verify.commands.options import source_options
from verify.commands.output import Report, output_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED, EXIT_OK
from verify.common.fsutil import write_atomic
from verify.source.releases import Version

if TYPE_CHECKING:
    from verify.source.assembly import SourceOptions


@click.command("audit")
@click.argument("arguments", nargs=-1, required=True, metavar="VERSION INPUT...")
# The old spelling `audit INPUT... --version X.Y.Z`, for one release.
@click.option("--version", "old_version", hidden=True)
@click.option(
    "--prefix",
    "prefix_text",
    metavar="PATH",
    help="The installation prefix inside the input (e.g. usr, opt/python); default: where lib/pythonX.Y "
    "or lib64/pythonX.Y is.",
)
# verify.audit.layout.LIBRARY_DIRS, spelled out so that --help does not import the audit.
@click.option(
    "--libdir",
    type=click.Choice(["lib", "lib64"]),
    help="The library directory holding the standard library when both lib/pythonX.Y and lib64/pythonX.Y "
    "hold one (default: the one that does).",
)
@click.option(
    "--free-threaded",
    is_flag=True,
    help="Audit the free-threaded build (pythonX.Yt) where both builds are installed (default: the one there "
    "is; the default build when both are).",
)
@click.option(
    "--patches",
    "patches_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A quilt series directory (e.g. a Debian source package's debian/patches) to attribute changes to.",
)
# The tables' names (verify.audit.conventions.DISTRIBUTIONS), spelled out so that --help does not import the audit.
@click.option(
    "--distribution",
    type=click.Choice(["auto", "debian", "alpine", "arch", "none"]),
    default="auto",
    show_default=True,
    help="Whose packaging conventions explain files (docs/audit.md); auto reads os-release and packages.",
)
@click.option(
    "--against",
    type=click.Path(exists=True, path_type=Path),
    metavar="MANIFEST-OR-RESULT",
    help="A rebuild (result directory, install tree, or manifest file): compare ELF binaries and "
    "extension modules with it; with its files, each difference is explained as compare does.",
)
@source_options
@click.option(
    "--reference-python",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An interpreter of the same version, not the audited one (e.g. a rebuild), to recompile .pyc.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Unpack the inputs and the verified source into a new directory inside this one and keep it, to diff "
    "by hand (default: a temporary directory, removed afterwards).",
)
@click.option(
    "--diff",
    "show_diffs",
    is_flag=True,
    help="Show the unified diff of each unexplained text file against the verified source (also with -v).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (docs/audit-json.md).")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML report to this file.",
)
@output_options
def audit(
    arguments: tuple[str, ...],
    old_version: str | None,
    prefix_text: str | None,
    libdir: str | None,
    free_threaded: bool,
    patches_dir: Path | None,
    distribution: str,
    against: Path | None,
    source: SourceOptions,
    reference_python: Path | None,
    work_dir: Path | None,
    as_json: bool,
    html_path: Path | None,
    show_diffs: bool,
) -> None:
    """Audit the Python in INPUT... against CPython VERSION's verified source release.

    Exit 0 when nothing inside the installation is unexplained and the audit compared what it was given (for
    packages: their share of an installation; otherwise a whole installation), 1 when something is unexplained,
    nothing was compared, or the input holds no file of the standard library; 2 on error.

    \b
    Examples:
      cpython-verify audit 3.11.2 /usr --allow-missing openpgp --patches debian/patches
      cpython-verify audit 3.13.5 image.tar --against rebuild-3.13.5-default
      cpython-verify audit 3.11.2 libpython3.11-minimal_*.deb libpython3.11-stdlib_*.deb python3.11-minimal_*.deb \\
        --from ~/distfiles --offline --json -o audit.json
    """
    from verify.audit import audit_installation, find_stdlib
    from verify.audit.elf import RebuildSide
    from verify.audit.inputs import locate_installation, read_patch_series
    from verify.audit.release import check_release, release_witnesses
    from verify.audit.sources import SOURCE_PARTS
    from verify.compare.sides import load_side
    from verify.report.audit import audit_to_html, audit_to_json, render_audit_text
    from verify.source.assembly import verified_source_tree
    from verify.source.recipes import load_recipe

    version_text, inputs = version_and_inputs(arguments, old_version)
    version = Version.parse(version_text)
    patches = read_patch_series(patches_dir) if patches_dir is not None else []
    rebuild_notes: tuple[str, ...] = ()
    rebuild = None
    if against is not None:
        side = load_side(against, "rebuild")
        rebuild = RebuildSide(side.manifest, side.root, side.manifest.inputs)
        rebuild_notes = side.notes
    kept: Path | None = None
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        kept = Path(tempfile.mkdtemp(prefix="cpython-verify-audit-", dir=work_dir))
    with _scratch_directory(kept) as scratch:
        located = locate_installation(
            inputs, version.series, Path(scratch), prefix_text, distribution, libdir, free_threaded
        )
        # Fail before fetching anything if the prefix is wrong or the installation is another release.
        stdlib = find_stdlib(located.prefix, version, located.libdir, located.abi)
        check_release(version, release_witnesses(located.prefix, stdlib, version.series, located.packages))
        recipe = load_recipe(version.series, source.recipes_dir)
        verdict, tree = verified_source_tree(
            version, source, Path(scratch) / "source", parts=SOURCE_PARTS, recipe=recipe
        )
        with progress.phase(f"auditing {located.prefix}"):
            report = audit_installation(
                located.prefix,
                version,
                tree,
                against=rebuild,
                reference_python=reference_python,
                patches=patches,
                distribution=located.distribution,
                install_prefix=located.install_prefix,
                libdir=located.libdir,
                packages=located.packages,
                abi=located.abi,
            )
    report = dataclasses.replace(
        report,
        prefix=located.install_prefix,
        stdlib=f"{located.install_prefix.rstrip('/')}/{located.libdir}/python{version.series}{located.abi}",
        inputs=located.descriptions,
        packages=located.packages,
        patch_series=str(patches_dir) if patches_dir is not None else None,
        out_of_scope=located.out_of_scope,
        recipe_config_args=recipe.build.profiles["default"].configure if recipe.build is not None else (),
        notes=(
            *report.notes,
            *located.notes,
            *rebuild_notes,
            *([f"the inputs and the verified source are kept in {kept} (--work-dir)"] if kept else []),
        ),
        source=verdict,
    )
    kept_text = str(kept) if kept is not None else None
    if html_path is not None:
        write_atomic(html_path, audit_to_html(report, work_dir=kept_text).encode("utf-8"))
    with Report.current() as output:
        if as_json:
            output.echo(audit_to_json(report), nl=False)
        else:
            console = output.console(bounded_lines=True)
            render_audit_text(report, console, verbose=output.verbose, diffs=show_diffs, work_dir=kept_text)
        sys.exit(EXIT_OK if report.passed else EXIT_FAILED)


@contextlib.contextmanager
def _scratch_directory(kept: Path | None) -> Iterator[str]:
    """``kept`` (the user's ``--work-dir``, left in place afterwards), or a temporary directory removed after."""
    if kept is not None:
        yield str(kept)
        return
    with tempfile.TemporaryDirectory(prefix="cpython-verify-audit-") as scratch:
        yield scratch
