"""Debian's names for python.org's release files and the archive's defaults, apart from the archive client
(:mod:`verify.source.locations.debian`): a local directory of distfiles finds a tarball under its Debian
name, and the locations are chosen, without loading the archive's index readers.
"""

from __future__ import annotations

from pathlib import Path

from verify.source.releases import Version

DEFAULT_SUITES = ("bookworm", "trixie", "sid")
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

# python.org name suffix -> Debian .orig suffix. Signatures follow their tarball's name.
_ORIG_SUFFIXES = ((".tar.xz", ".orig.tar.xz"), (".tgz", ".orig.tar.gz"))
_SIGNATURE_SUFFIXES = ("", ".asc")


def debian_upstream_version(version: Version) -> str:
    """The upstream version as Debian spells it: ``3.14.0rc1`` sorts before ``3.14.0`` as ``3.14.0~rc1``."""
    if version.pre_kind:
        return f"{version.base}~{version.pre_kind}{version.pre_num}"
    return version.base


def debian_name(package: str, version: Version, filename: str) -> str | None:
    """Debian's name for python.org's ``filename`` (``Python-3.13.5.tar.xz`` -> ``python3.13_3.13.5.orig.tar.xz``).

    ``None`` for files Debian does not carry under an ``.orig`` name (e.g. ``.sigstore`` bundles).
    """
    prefix = f"Python-{version}"
    if not filename.startswith(prefix):
        return None
    rest = filename[len(prefix) :]
    for upstream_suffix, orig_suffix in _ORIG_SUFFIXES:
        for signature in _SIGNATURE_SUFFIXES:
            if rest == upstream_suffix + signature:
                return f"{package}_{debian_upstream_version(version)}{orig_suffix}{signature}"
    return None


def default_package(series: str) -> str:
    """Debian's source package for a series when a recipe names none: ``python3.13``."""
    return f"python{series}"
