"""Errors raised by the environment stage (lock files, rootfs builds, runners).

They subclass the shared roots in :mod:`verify.common.errors`, so the CLI maps them to exit codes without
knowing about environments: evidence that something is wrong (a digest mismatch) exits 1, being
unable to reach a verdict (a missing tool, an unreachable mirror) exits 2.
"""

from __future__ import annotations

from verify.common.errors import DigestMismatch, FetchError, OperationalError, VerificationFailed
from verify.source.locations.apt_sources import MirrorError

__all__ = [
    "EnvironmentBuildError",
    "LockFileError",
    "MirrorError",
    "PackageDigestMismatch",
    "PackageUnavailable",
    "RootfsMismatch",
    "RunnerError",
]


class LockFileError(OperationalError):
    """An environment spec or lock file is missing, malformed, or inconsistent with its spec."""


class PackageUnavailable(FetchError):
    """A locked ``.deb`` is not served by the mirror (nor by the snapshot archive, when set)."""


class PackageDigestMismatch(DigestMismatch):
    """A ``.deb`` the mirror served does not have the sha256 the lock pins."""


class RootfsMismatch(VerificationFailed):
    """A freshly built rootfs tarball is not the one the lock file pins."""


class EnvironmentBuildError(OperationalError):
    """mmdebstrap (or unpacking its output) failed before a tarball could be judged."""


class RunnerError(OperationalError):
    """A runner could not start the sandbox (image import failed, engine unreachable)."""
