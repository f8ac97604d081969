"""Which CPython release an installation says it is, checked before anything is compared.

Auditing the files of one release against the source of another would list every file that changed
between the two as "modified": a thousand differences that say nothing about the installation. So the
audit first reads what the installation itself records about its release, and refuses in one line when
any of it names another release than the VERSION audited. The witnesses, each read without running anything:

* ``build-details*.json`` in the standard library (PEP 739, installed from 3.14 on; Debian names it
  ``build-details..<multiarch>.json``): ``language.version_info``;
* ``include/pythonX.Y*/patchlevel.h``: ``PY_VERSION``;
* the Debian packages the installation came from (``libpythonX.Y-stdlib 3.14.10-1``): the upstream part
  of the version of each package of the ``pythonX.Y`` family.

An installation with no witness (an old series without the headers) is audited as VERSION says;
the report's notes say that nothing recorded the release.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from verify.audit.model import AuditError
from verify.common.errors import VersionError
from verify.common.fsutil import NotARegularFile, read_regular_file
from verify.common.jsonutil import loads_bounded
from verify.source.releases import Version

WITNESS_MAX_BYTES: Final = 64 << 10
"""A ``patchlevel.h`` or ``build-details.json`` is a few KiB; a larger one is not read."""

_PY_VERSION: Final = re.compile(rb'^#define\s+PY_VERSION\s+"([^"\n]{1,40})"', re.MULTILINE)
_RELEASE_LEVELS: Final = {"alpha": "a", "beta": "b", "candidate": "rc"}
_DEBIAN_UPSTREAM: Final = re.compile(r"^(?:\d+:)?(?P<upstream>[0-9][0-9A-Za-z.~+]*?)(?:-[0-9A-Za-z.+~]+)?$")


class ReleaseMismatch(AuditError):
    """The installation records another release than the one it is to be audited against."""


@dataclass(frozen=True, slots=True)
class ReleaseWitness:
    """One place in the installation that names its release."""

    release: str
    """The release it names, as CPython spells it (``3.14.10``, ``3.15.0rc1``)."""
    source: str
    """Where: a path relative to the prefix, or ``Debian package NAME VERSION``."""


def _read(path: Path) -> bytes | None:
    try:
        data = read_regular_file(path, WITNESS_MAX_BYTES)
    except (OSError, NotARegularFile):
        return None
    return data if len(data) <= WITNESS_MAX_BYTES else None


def _from_build_details(data: bytes) -> str | None:
    try:
        document: Any = loads_bounded(data)
        info = document["language"]["version_info"]
        major, minor, micro = (int(info[key]) for key in ("major", "minor", "micro"))
        level, serial = str(info["releaselevel"]), int(info["serial"])
    except (ValueError, TypeError, KeyError):  # ValueError: not JSON, or nested past the budget
        return None
    if level == "final":
        return f"{major}.{minor}.{micro}"
    if level not in _RELEASE_LEVELS:
        return None
    return f"{major}.{minor}.{micro}{_RELEASE_LEVELS[level]}{serial}"


def _from_debian_version(version: str) -> str | None:
    """``3.14.10-1`` -> ``3.14.10``; ``3.15.0~rc1-1`` -> ``3.15.0rc1``; anything else -> None."""
    match = _DEBIAN_UPSTREAM.match(version)
    if match is None:
        return None
    upstream = match.group("upstream").replace("~", "").split("+", 1)[0]
    try:
        return str(Version.parse(upstream))
    except VersionError:
        return None


def _parsed(text: str) -> str | None:
    try:
        return str(Version.parse(text))
    except VersionError:
        return None


def release_witnesses(
    prefix: Path, stdlib: Path, series: str, packages: Sequence[str] = ()
) -> tuple[ReleaseWitness, ...]:
    """Every release the installation under ``prefix`` (standard library ``stdlib``) records, with where."""
    witnesses: list[ReleaseWitness] = []
    for path in sorted(stdlib.glob("build-details*.json")):
        data = _read(path)
        release = _from_build_details(data) if data is not None else None
        if release is not None:
            witnesses.append(ReleaseWitness(release, path.relative_to(prefix).as_posix()))
    for path in sorted((prefix / "include").glob(f"python{series}*/patchlevel.h")):
        data = _read(path)
        match = _PY_VERSION.search(data) if data is not None else None
        release = _parsed(match.group(1).decode("ascii", "replace")) if match else None
        if release is not None:
            witnesses.append(ReleaseWitness(release, path.relative_to(prefix).as_posix()))
    family = re.compile(rf"^(?:lib)?python{re.escape(series)}(?:-[a-z0-9.+-]+)?$")
    for package in packages:
        name, _, version = package.partition(" ")
        release = _from_debian_version(version) if family.match(name) else None
        if release is not None:
            witnesses.append(ReleaseWitness(release, f"Debian package {package}"))
    return tuple(witnesses)


def check_release(version: Version, witnesses: Sequence[ReleaseWitness]) -> None:
    """Refuse (:class:`ReleaseMismatch`, one line) when a witness names another release than ``version``."""
    releases = sorted({witness.release for witness in witnesses})
    if not releases or releases == [str(version)]:
        return
    if len(releases) == 1:
        sources = ", ".join(witness.source for witness in witnesses[:4])
        more = f" and {len(witnesses) - 4} more" if len(witnesses) > 4 else ""
        raise ReleaseMismatch(
            f"the installation is Python {releases[0]}, not {version} (recorded by {sources}{more}): refusing to "
            f"compare it with {version}'s source; audit it against its own release "
            f"(cpython-verify audit {releases[0]} ...)"
        )
    said = ", ".join(f"{witness.source} says {witness.release}" for witness in witnesses[:6])
    raise ReleaseMismatch(
        f"the installation records several releases ({said}), so it is not one release to compare with "
        f"{version}'s source: refusing"
    )
