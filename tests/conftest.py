"""Shared test fixtures: the real CPython release data lives outside the project, in one configurable place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def fixtures_root() -> Path:
    """``$CPYTHON_VERIFY_FIXTURES``, or ``../shared/fixtures`` beside the checkout."""
    configured = os.environ.get("CPYTHON_VERIFY_FIXTURES")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The real release data (tarballs, signatures, bundles, keys, checksums)."""
    root = fixtures_root()
    if not (root / "cpython").is_dir():
        pytest.fail(f"real fixtures not found at {root}; set CPYTHON_VERIFY_FIXTURES")
    return root


@pytest.fixture(scope="session")
def cpython_fixtures(fixtures: Path) -> Path:
    """``fixtures/cpython``: real tarballs, ``.asc`` and ``.sigstore`` files, release metadata."""
    return fixtures / "cpython"


@pytest.fixture(scope="session")
def keys_fixtures(fixtures: Path) -> Path:
    """``fixtures/keys``: release managers' real public keys (and one key that never signs source)."""
    return fixtures / "keys"
