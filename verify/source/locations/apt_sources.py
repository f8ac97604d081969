"""Which Debian mirror to use: a setting, else the host's own apt configuration.

No registry host is written into the project: the mirror comes from ``--mirror`` /
``$CPYTHON_VERIFY_DEBIAN_MIRROR`` or from the entries in ``/etc/apt/sources.list.d/*.sources``
(deb822) and ``/etc/apt/sources.list`` (one-line format) that serve the wanted suite, or else another
suite of the same Debian archive (a bookworm host's mirror serves trixie).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verify.common.errors import OperationalError
from verify.source.locations.deb822 import iter_paragraphs

MIRROR_SETTING = "CPYTHON_VERIFY_DEBIAN_MIRROR"
SNAPSHOT_SETTING = "CPYTHON_VERIFY_DEBIAN_SNAPSHOT"
"""A snapshot archive URL (``.../archive/debian/<YYYYMMDDTHHMMSSZ>``) used when the mirror dropped a pinned version."""


class MirrorError(OperationalError):
    """No Debian mirror is configured, or the configured one cannot be used.

    Defined here, below both the source stage (Debian's source packages) and the environment stage
    (rootfs packages), which read the same apt configuration; :mod:`verify.environments.errors` re-exports it.
    """


@dataclass(frozen=True, slots=True)
class AptSource:
    """One binary-package source from an apt configuration."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 ``.sources`` file; only enabled ``Types: deb`` stanzas are returned."""
    sources = []
    for stanza in iter_paragraphs(text):
        fields = {key.lower(): value for key, value in stanza.items()}
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(
                AptSource(
                    uri=uri.rstrip("/"),
                    suites=tuple(fields.get("suites", "").split()),
                    components=tuple(fields.get("components", "").split()),
                )
            )
    return sources


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse the one-line ``sources.list`` format (``deb [options] URI SUITE COMPONENT...``)."""
    sources = []
    for raw_line in text.splitlines():
        line = raw_line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = line.split()[1:]
        if words and words[0].startswith("["):
            # Options may contain spaces only inside the brackets: skip to the closing one.
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            sources.append(AptSource(uri=words[0].rstrip("/"), suites=(words[1],), components=tuple(words[2:])))
    return sources


def host_apt_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every binary source in the apt configuration under ``root`` (deb822 files first)."""
    sources: list[AptSource] = []
    etc_apt = root / "etc" / "apt"
    for path in sorted((etc_apt / "sources.list.d").glob("*.sources")):
        sources += parse_deb822_sources(path.read_text(encoding="utf-8", errors="replace"))
    for path in [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list"))]:
        if path.is_file():
            sources += parse_one_line_sources(path.read_text(encoding="utf-8", errors="replace"))
    return sources


def choose_mirror(suite: str, sources: Sequence[AptSource], component: str = "main") -> str | None:
    """The first configured URI that serves ``suite``'s ``component`` over http(s), if any."""
    for source in sources:
        if suite in source.suites and component in source.components and source.uri.startswith(("http:", "https:")):
            return source.uri
    return None


DEBIAN_RELEASES = frozenset({
    "buzz", "rex", "bo", "hamm", "slink", "potato", "woody", "sarge", "etch", "lenny", "squeeze", "wheezy",
    "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid", "experimental",
    "oldoldstable", "oldstable", "stable", "testing", "unstable",
})  # fmt: skip
"""Debian's release codenames and suite names: one archive serves them all (``dists/<suite>``)."""


def _debian_family(suite: str) -> str | None:
    """``archive`` for a suite of Debian's main archive (``trixie``, ``trixie-updates``), ``security`` for
    one of its security archive (``trixie-security``), None for anything else (another distribution's)."""
    release, _, pocket = suite.partition("-")
    if release not in DEBIAN_RELEASES:
        return None
    return "security" if pocket == "security" else "archive"


def debian_archive_mirror(suite: str, sources: Sequence[AptSource], component: str = "main") -> str | None:
    """A configured mirror of the Debian archive ``suite`` belongs to, when none names ``suite`` itself.

    A Debian mirror serves every current release under ``dists/``: the host's mirror for bookworm serves
    trixie too (a partial mirror that does not fails at the first download, saying which URL). Only a
    source serving a suite of the same archive counts (the security archive is another one), so an
    Ubuntu host's mirror is never taken for Debian's.
    """
    family = _debian_family(suite)
    if family is None:
        return None
    for source in sources:
        serves_same_archive = any(_debian_family(other) == family for other in source.suites)
        if serves_same_archive and component in source.components and source.uri.startswith(("http:", "https:")):
            return source.uri
    return None


def resolve_mirror(suite: str, mirror: str | None = None, *, root: Path = Path("/")) -> str:
    """The mirror to use for ``suite``: the argument, the setting, or the host's apt configuration (the source
    that names ``suite``, else one that serves another suite of the same Debian archive)."""
    configured = host_apt_sources(root) if not (mirror or os.environ.get(MIRROR_SETTING)) else []
    chosen = (
        mirror
        or os.environ.get(MIRROR_SETTING)
        or choose_mirror(suite, configured)
        or debian_archive_mirror(suite, configured)
    )
    if not chosen:
        raise MirrorError(
            f"no Debian mirror for suite {suite!r}: pass --mirror URL or set {MIRROR_SETTING} "
            "(the host's apt configuration names none)"
        )
    if not chosen.startswith(("http://", "https://", "file://")):
        raise MirrorError(f"mirror {chosen!r} must be an http(s):// or file:// URL")
    return chosen.rstrip("/")


def resolve_snapshot(snapshot: str | None = None) -> str | None:
    """The snapshot archive URL for old pins: the argument or ``$CPYTHON_VERIFY_DEBIAN_SNAPSHOT``."""
    chosen = snapshot or os.environ.get(SNAPSHOT_SETTING)
    return chosen.rstrip("/") if chosen else None
