"""Data shipped with the package: recipes, release managers' keys and environment specs and locks.

They live in the checkout's top-level ``recipes/`` folder, which the wheel installs as the data package
``verify.recipes`` (pyproject's ``package-dir``); :mod:`importlib.resources` finds them wherever
``cpython-verify`` was installed, not only in a source checkout (``scripts/check-dist`` proves it).
"""

from __future__ import annotations

import os
import re
from importlib.resources import files
from pathlib import Path

from verify.common.errors import OperationalError

SHIPPED_PACKAGE = "verify.recipes"
_RECIPE_NAME_RE = re.compile(r"cpython-(?P<series>[0-9]{1,2}\.[0-9]{1,2})\.toml", re.ASCII)


def shipped_dir(*parts: str) -> Path:
    """The directory ``parts`` under the shipped recipes as a real filesystem path.

    Recipes name key files relative to themselves and environments are globbed, so a path is needed,
    not just a readable resource: a package imported from a zip archive cannot provide one.
    """
    resource = files(SHIPPED_PACKAGE).joinpath(*parts)
    if not isinstance(resource, Path):
        raise OperationalError(
            f"the shipped data {'/'.join(('recipes', *parts))} is not on the filesystem ({resource}); "
            "set CPYTHON_VERIFY_RECIPES / CPYTHON_VERIFY_ENVIRONMENTS to an unpacked copy"
        )
    return resource


def default_recipes_dir() -> Path:
    """The recipes directory: ``$CPYTHON_VERIFY_RECIPES`` or the recipes shipped in the package."""
    configured = os.environ.get("CPYTHON_VERIFY_RECIPES")
    if configured:
        return Path(configured)
    return shipped_dir()


def supported_series(recipes_dir: Path | None = None) -> list[str]:
    """The series with a recipe (``cpython-X.Y.toml``) in ``recipes_dir``, oldest first; empty when unreadable."""
    directory = recipes_dir or default_recipes_dir()
    try:
        names = [path.name for path in directory.glob("cpython-*.toml")]
    except OSError:
        return []
    found = [match["series"] for name in names if (match := _RECIPE_NAME_RE.fullmatch(name))]
    return sorted(found, key=lambda series: tuple(int(part) for part in series.split(".")))


def supported_series_text(recipes_dir: Path | None = None) -> str:
    """``supported: 3.8, 3.9, ... (one recipe each in DIR)``, for an error about a series that is not."""
    directory = recipes_dir or default_recipes_dir()
    series = supported_series(directory)
    if not series:
        return f"no series is supported: {directory} holds no recipe (check --recipes / CPYTHON_VERIFY_RECIPES)"
    return f"supported: {', '.join(series)} (one recipe each in {directory})"
