"""Data shipped inside the package: recipes, release managers' keys and environment locks.

They are package data (in the wheel and the sdist), found with :mod:`importlib.resources` so that an
installed ``cpython-verify`` finds them wherever it was installed, not only in a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from verify.errors import OperationalError


def shipped_dir(*parts: str) -> Path:
    """The directory ``parts`` under ``verify/data`` as a real filesystem path.

    Recipes name key files relative to themselves and environments are globbed, so a path is needed,
    not just a readable resource: a package imported from a zip archive cannot provide one.
    """
    resource = files(__name__).joinpath(*parts)
    if not isinstance(resource, Path):
        raise OperationalError(
            f"the shipped data {'/'.join(parts)} is not on the filesystem ({resource}); "
            "set CPYTHON_VERIFY_RECIPES / CPYTHON_VERIFY_ENVIRONMENTS to an unpacked copy"
        )
    return resource
