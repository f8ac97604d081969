"""The names cpython-verify makes and later reads back, one rule each.

A recipe profile, a runner, an environment, a variation, a release version: the tool produces each
of them under a rule (a profile is a recipe's table key, a version is what :class:`Version` prints),
and other parts of the tool use them as path components (``rebuild-3.13.5-default``,
``rootfs/NAME.tar``), as file names (a plan job's ``id``) and as keys (a status page row, a ``peers``
verdict). The same rule therefore applies wherever such a name comes back from outside: a recipe, a
``rebuild.json``, and signed text. A trusted signature says who wrote a name, not that it is one;
signed content that breaks a rule is refused with the rule it breaks, never used.

The patterns are written for both Python's ``re`` (used with ``fullmatch``) and pydantic's regex
engine (``^...$`` there matches the whole string only), so one string serves both.
"""

from __future__ import annotations

import re
from typing import Final

from verify.source.releases import Version, version_text_problem

PROFILE_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A recipe profile (``default``, ``pgo-lto``): lower-case letters, digits, ``-`` and ``_``, first a letter or
digit, at most 64 characters. It becomes part of a directory and a file name, so it is one path component."""
RUNNER_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""A runner (``bwrap``, ``podman``, ``docker``): the same shape as a profile; a plan job's ``id`` joins both."""
RUNNER_NAMES: Final = ("bwrap", "docker", "podman")
"""The sandboxes this cpython-verify has (verify.environments.runners.RUNNERS, spelled out so that ``--help``
and the formats do not import the sandboxes; a test keeps the two equal)."""
ENVIRONMENT_PATTERN: Final = r"^[a-z0-9][a-z0-9.-]{0,63}$"
"""A build environment (``bookworm-cpython``): it names ``recipes/environments/NAME.lock`` and ``rootfs/NAME.tar``."""
VARIATION_PATTERN: Final = r"^[a-z][a-z_]{0,39}$"
"""A variation of the second build (``build_path``, ``time``), as recipes and ``--vary`` name them."""
SETTING_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"
"""A reproducibility setting's name (``source_date_epoch``, ``make_jobs``)."""
CATEGORY_PATTERN: Final = r"^[a-z][a-z0-9-]{0,63}$"
"""A comparator's category for a content difference (``build-path``, ``debug-info``)."""
SERIES_PATTERN: Final = r"^3\.[0-9]{1,2}$"
"""A release series (``3.13``), as :attr:`Version.series` prints it."""
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
"""A sha256 digest as the tool writes one: 64 lower-case hex digits."""
FILE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}$"
"""A plain file name (a release tarball's): no directory part, not hidden, not ``.`` or ``..``."""


def matches(pattern: str, text: object) -> bool:
    """True when ``text`` is a string that one of the patterns above matches as a whole."""
    return isinstance(text, str) and re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text) is not None


def profile_problem(text: object) -> str | None:
    """Why ``text`` is not a recipe profile name; None when it is."""
    if matches(PROFILE_PATTERN, text):
        return None
    return f"{_short(text)} is not a profile name (lower-case letters, digits, '-' and '_', at most 64)"


def runner_problem(text: object) -> str | None:
    """Why ``text`` is not a runner name; None when it is."""
    if matches(RUNNER_PATTERN, text):
        return None
    return f"{_short(text)} is not a runner name (lower-case letters, digits, '-' and '_', at most 64)"


def known_runner_problem(text: object) -> str | None:
    """Why ``text`` is not one of :data:`RUNNER_NAMES` (a plan names only runners it can run); None when it is."""
    problem = runner_problem(text)
    if problem is None and text not in RUNNER_NAMES:
        problem = f"{_short(text)} is not a runner of this cpython-verify ({', '.join(RUNNER_NAMES)})"
    return problem


def file_name_problem(text: object) -> str | None:
    """Why ``text`` is not a plain file name (a plan job's ``id`` names its files); None when it is."""
    if matches(FILE_NAME_PATTERN, text):
        return None
    return f"{_short(text)} is not a plain file name (letters, digits, '.', '_', '+', '~' and '-', not hidden)"


def environment_problem(text: object) -> str | None:
    """Why ``text`` is not an environment name; None when it is."""
    if matches(ENVIRONMENT_PATTERN, text):
        return None
    return f"{_short(text)} is not an environment name (lower-case letters, digits, '.' and '-', at most 64)"


def variation_problem(text: object) -> str | None:
    """Why ``text`` is not a variation name; None when it is."""
    if matches(VARIATION_PATTERN, text):
        return None
    return f"{_short(text)} is not a variation name"


def release_version_problem(text: object) -> str | None:
    """Why ``text`` is not a release version exactly as the tool writes one; None when it is.

    :meth:`Version.parse` decides, and the text must be what :class:`Version` prints back: ``3.13.05``,
    `` 3.13.5`` or ``3.013.5`` parse, but they are other spellings, and as a key (a site row, a peers
    verdict) another spelling would be another release (:func:`verify.source.releases.version_text_problem`)."""
    return version_text_problem(text)


def series_problem(series: str, version: Version) -> str | None:
    """Why ``series``, written beside ``version``, is not that version's series; None when it is."""
    if series == version.series:
        return None
    return f"'series' is {_short(series)}, but version {version} is of series {version.series}"


def check_release_version(text: str) -> str:
    """``text`` if it is a release version as the tool writes one, else :class:`ValueError` (pydantic's hook)."""
    problem = release_version_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


def _short(value: object) -> str:
    """A value for a one-line message: its repr, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
