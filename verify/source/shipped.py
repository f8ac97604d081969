"""Data shipped with the package: recipes, release managers' keys and environment specs and locks.

They live in the checkout's top-level ``recipes/`` folder, which the wheel installs as the data package
``verify.recipes`` (pyproject's ``package-dir``); :mod:`importlib.resources` finds them wherever
``cpython-verify`` was installed, not only in a source checkout (``scripts/check-dist`` proves it).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from verify.common.errors import OperationalError

SHIPPED_PACKAGE = "verify.recipes"


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
