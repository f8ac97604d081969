"""Click options shared by every command that obtains a verified source (source, rebuild, audit, check)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

SIGNATURE_CHOICE = click.Choice(["openpgp", "sigstore"])


def source_options(function: F) -> F:
    """Decorate a command with the options that say where source bytes and trust come from."""
    decorators = [
        click.option(
            "--from",
            "from_dirs",
            multiple=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Local directory of release files (a packager's distfiles); python.org or Debian names. Repeatable.",
        ),
        click.option(
            "--mirror",
            "mirrors",
            multiple=True,
            metavar="URL",
            help="Mirror with python.org's /ftp/python layout (URL/3.13.5/Python-3.13.5.tar.xz). Repeatable.",
        ),
        click.option(
            "--debian/--no-debian",
            default=False,
            help="Also look in Debian's source archive (mirror from $CPYTHON_VERIFY_DEBIAN_MIRROR or apt's "
            "configuration) and cross-check its sha256.",
        ),
        click.option(
            "--offline",
            is_flag=True,
            help="Use only --from directories: no python.org, mirrors or Debian.",
        ),
        click.option(
            "--sha256",
            "sha256_claims",
            multiple=True,
            metavar="[LABEL=]HEX",
            help="An independently obtained sha256 of the tarball (e.g. a peer's); any disagreement fails. Repeatable.",
        ),
        click.option(
            "--release-metadata",
            "release_metadata",
            multiple=True,
            metavar="FILE|URL",
            help="Release metadata (python.org API or release-tracker JSON) to cross-check digests against.",
        ),
        click.option(
            "--keys",
            "key_dirs",
            multiple=True,
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Directory of extra OpenPGP public keys; only keys pinned by the recipe are used. Repeatable.",
        ),
        click.option(
            "--require",
            "require",
            multiple=True,
            type=SIGNATURE_CHOICE,
            help="Require this signature kind even if the series does not publish it for this version.",
        ),
        click.option(
            "--allow-missing",
            "allow_missing",
            multiple=True,
            type=SIGNATURE_CHOICE,
            help="Knowingly accept that this signature kind is absent (the report says it was not checked).",
        ),
        click.option(
            "--sigstore-online",
            is_flag=True,
            help="Refresh Sigstore's trust root over the network instead of the embedded offline copy.",
        ),
        click.option(
            "--cache",
            "cache_dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar="CPYTHON_VERIFY_CACHE",
            help="Cache root: downloads, environments/, rebuilds/ (default: $XDG_CACHE_HOME/cpython-verify).",
        ),
        click.option(
            "--recipes",
            "recipes_dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            envvar="CPYTHON_VERIFY_RECIPES",
            help="Directory of recipes (default: the ones installed with the package, recipes/).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function
