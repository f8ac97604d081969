"""Pinned build environments: lock files, reproducible rootfs tarballs, and the sandboxes that run them.

The build stage needs three calls: :func:`load_lock` (whose ``sha256`` goes into results),
:func:`image_for` (a given rootfs tarball, or :func:`ensure_environment`'s verified rootfs, built if
not cached) and :func:`get_runner`.
"""

from verify.environments.images import image_for, image_from_tarball
from verify.environments.lock import EnvironmentLock, LockedPackage, load_lock
from verify.environments.rootfs import ensure_environment
from verify.environments.runners import DEFAULT_RUNNER, RUNNERS, get_runner

__all__ = [
    "DEFAULT_RUNNER",
    "RUNNERS",
    "EnvironmentLock",
    "LockedPackage",
    "ensure_environment",
    "get_runner",
    "image_for",
    "image_from_tarball",
    "load_lock",
]
