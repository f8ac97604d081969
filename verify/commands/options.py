"""Click options shared by every command that obtains a verified source (source, rebuild, audit, check)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from verify.commands.aliases import renamed

F = TypeVar("F", bound=Callable[..., Any])

SIGNATURE_CHOICE = click.Choice(["openpgp", "sigstore"])

RUNNER_NAMES = ("bwrap", "docker", "podman")
"""The sandboxes ``--runner`` chooses from in every command (verify.environments.runners.RUNNERS, spelled
out so that ``--help`` does not import the sandboxes; a test keeps the two equal)."""

RUNNER_CHOICE = click.Choice(RUNNER_NAMES)


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
            help="Use only --from directories and the cache (release files verified before): no python.org, "
            "mirrors or Debian.",
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


def signing_options(function: F) -> F:
    """``--signing-key FILE`` (must exist) with ``--create-key``, or ``--sigstore``: how ``attest`` and
    ``check`` sign. The old ``--key`` stays one release as a hidden, warned alias of ``--signing-key``."""
    key_type = click.Path(dir_okay=False, path_type=Path)
    decorators = [
        click.option(
            "--signing-key",
            "signing_key",
            type=key_type,
            help="Sign offline with this PEM private key (Ed25519 or P-256; an encrypted key's passphrase is read "
            "from $CPYTHON_VERIFY_KEY_PASSPHRASE). It must exist, unless --create-key. Verifiers use its public "
            "key with --public-key.",
        ),
        click.option(
            "--create-key",
            is_flag=True,
            help="If --signing-key's file does not exist, create a new Ed25519 key there (its public key beside "
            "it as KEY.pub). Never replaces a key.",
        ),
        renamed("--key", "--signing-key", "signing_key", type=key_type),
        click.option("--sigstore", is_flag=True, help="Sign keyless with Sigstore (the CI's ambient OIDC identity)."),
        click.option(
            "--identity-token", envvar="SIGSTORE_ID_TOKEN", help="OIDC token for --sigstore (default: ambient)."
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function
