"""Click options shared by every command that obtains a verified source (source, rebuild, audit, check).

Each group of options reaches its command as one typed value, built here, at the command line's edge:
VERSION as a :class:`~verify.source.releases.Version`, the source options as a
:class:`~verify.source.assembly.SourceOptions`, and ``rebuild``'s and ``check``'s options as the
:class:`~verify.chain.RebuildRequest` the chain runs. No command receives its options as a dictionary.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from verify.commands.aliases import renamed
from verify.common.errors import OperationalError
from verify.rebuild.settings import VARIATIONS, parse_variations
from verify.source.names import RUNNER_NAMES
from verify.source.releases import Version

if TYPE_CHECKING:
    from verify.chain import RebuildRequest
    from verify.source.assembly import SourceOptions
    from verify.source.models import FetchedFile

F = TypeVar("F", bound=Callable[..., Any])

SIGNATURE_CHOICE = click.Choice(["openpgp", "sigstore"])

RUNNER_CHOICE = click.Choice(RUNNER_NAMES)


class VersionType(click.ParamType[Version]):
    """VERSION, parsed to a :class:`Version` as click reads it: after this, no command sees it as text.

    A malformed version is the source stage's one-line :class:`~verify.common.errors.VersionError` (exit 2),
    not a click usage error: the message is the one every other place that parses a version gives."""

    name = "version"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Version:
        return value if isinstance(value, Version) else Version.parse(str(value))


VERSION = VersionType()


def passed_as(
    argument: str,
    options: Sequence[Callable[[Any], Any]],
    build: Callable[..., object],
    *,
    consumes: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Decorate a command with ``options`` whose values reach it as one value: ``argument=build(**values)``.

    ``consumes`` names values an outer decorator delivers that ``build`` also takes (VERSION, the source
    options). The command declares ``argument`` with its type; mypy checks ``build``'s keyword parameters."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def grouped(*args: Any, **values: Any) -> Any:
            taken = {name: values.pop(name) for name in (*names, *consumes)}
            return function(*args, **{argument: build(**taken)}, **values)

        declared = len(grouped.__dict__.get("__click_params__", ()))
        for option in reversed(options):
            option(grouped)
        added: list[click.Parameter] = grouped.__dict__.get("__click_params__", [])[declared:]
        names = tuple(param.name for param in added if param.expose_value and param.name is not None)
        return grouped  # type: ignore[return-value]

    return decorate


def source_options(function: F) -> F:
    """Decorate a command with the options that say where source bytes and trust come from; they reach it
    as ``source: SourceOptions``."""

    def source_from(**values: Any) -> SourceOptions:
        from verify.source.assembly import SourceOptions

        return SourceOptions(**values)

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
    return passed_as("source", decorators, source_from)(function)


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


def rebuild_options(*, for_check: bool = False) -> Callable[[F], F]:
    """Decorate ``rebuild`` (or, ``for_check``, ``check``) with VERSION, the source options and the build
    options; they reach the command as ``request: RebuildRequest``.

    ``check`` always builds twice and never bisects, so it has no ``--twice`` or ``--bisect``; without
    ``--vary`` its second build varies :data:`verify.chain.CHECK_VARIATIONS`, ``rebuild``'s every variation."""
    twice_only = [
        click.option("--twice", is_flag=True, help="Build a second time with --vary variations and compare."),
    ]
    bisect_only = [
        click.option(
            "--bisect", is_flag=True, help="With --twice: re-run with one variation at a time to name the culprits."
        ),
    ]
    options = [
        click.option(
            "--profile", default="default", show_default=True, help="Recipe build profile (e.g. default, pgo-lto)."
        ),
        click.option(
            "--runner", "runner_name", type=RUNNER_CHOICE, default="bwrap", show_default=True, help="Sandbox runner."
        ),
        click.option(
            "--rootfs",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Use this rootfs tarball as the recipe's environment instead of building it.",
        ),
        *([] if for_check else twice_only),
        click.option(
            "--vary",
            "vary",
            multiple=True,
            metavar="LIST",
            help=f"Variations for the second build (comma-separated; default all): {', '.join(VARIATIONS)}.",
        ),
        *([] if for_check else bisect_only),
        click.option(
            "--pgo-profile",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="With an --enable-optimizations profile: reuse this pgo-profile.tar instead of a training run.",
        ),
        click.option(
            "--pgo-profile-sha256",
            metavar="HEX",
            help="The pinned sha256 of --pgo-profile (required with it: an unpinned profile is never used).",
        ),
        click.option(
            "--reuse-profile",
            is_flag=True,
            help="With --twice and a PGO profile whose training is deterministic: the second build reuses the "
            "profile the baseline trained instead of training its own (by default it trains again, independently).",
        ),
        click.option("--force", is_flag=True, help="Rebuild even when the cache has this exact build."),
        click.option("--jobs", type=click.IntRange(min=1), help="make -j (default: the number of CPUs)."),
        click.option(
            "--out",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Result directory (default: ./rebuild-VERSION-PROFILE).",
        ),
        click.option(
            "--rebuild-cache",
            "rebuild_cache",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where finished rebuilds are cached (default: the --cache root's rebuilds/).",
        ),
    ]
    build: Callable[..., RebuildRequest] = (
        functools.partial(rebuild_request, twice=True, bisect=False, for_check=True) if for_check else rebuild_request
    )

    def decorate(function: F) -> F:
        requested = passed_as("request", options, build, consumes=("version", "source"))(function)
        return click.argument("version", type=VERSION)(source_options(requested))

    return decorate


def rebuild_request(
    *,
    version: Version,
    source: SourceOptions,
    profile: str,
    runner_name: str,
    rootfs: Path | None,
    twice: bool,
    vary: tuple[str, ...],
    bisect: bool,
    pgo_profile: Path | None,
    pgo_profile_sha256: str | None,
    reuse_profile: bool,
    force: bool,
    jobs: int | None,
    out_dir: Path | None,
    rebuild_cache: Path | None,
    for_check: bool = False,
) -> RebuildRequest:
    """The chain's request from ``rebuild``'s options, or ``for_check`` from ``check``'s."""
    from verify.chain import CHECK_VARIATIONS, RebuildRequest

    if vary and not twice:
        raise OperationalError("--vary needs --twice")
    unless_varied = CHECK_VARIATIONS if for_check else frozenset(VARIATIONS)
    variations = parse_variations(vary) if vary else unless_varied
    return RebuildRequest(
        version=version,
        source=source,
        profile=profile,
        runner=runner_name,
        rootfs=rootfs,
        twice=twice,
        variations=variations,
        bisect=bisect,
        pgo_profile=_pinned_pgo_profile(pgo_profile, pgo_profile_sha256),
        reuse_profile=reuse_profile,
        force=force,
        jobs=jobs,
        out_dir=out_dir,
        rebuild_cache=rebuild_cache,
    )


def _pinned_pgo_profile(path: Path | None, sha256: str | None) -> FetchedFile | None:
    """The ``--pgo-profile`` file with its pinned digest (checked again as the build copies it)."""
    from verify.source.models import FetchedFile

    if path is None:
        if sha256:
            raise OperationalError("--pgo-profile-sha256 needs --pgo-profile")
        return None
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise OperationalError("--pgo-profile needs --pgo-profile-sha256 with the profile's 64-hex-digit sha256")
    return FetchedFile(path.name, path, sha256.lower(), path.stat().st_size, str(path))
