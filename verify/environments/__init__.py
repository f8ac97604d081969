"""Pinned build environments: lock files, reproducible rootfs tarballs, and the sandboxes that run them.

In: a recipe's environment name (``recipes/environments/NAME.toml`` and its ``.lock``), or a given rootfs tarball.
Out: a verified :class:`~verify.environments.interface.RootfsImage` and a
:class:`~verify.environments.interface.Runner` (bwrap, podman, docker) that runs a sandbox on it.
Next: :mod:`verify.rebuild`.

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
