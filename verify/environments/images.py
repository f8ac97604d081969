"""The rootfs image a command runs in: a rootfs tarball the user gives, or the recipe's pinned environment.

Every runner takes a :class:`RootfsImage` and checks the tarball against its ``sha256`` before
unpacking or importing it, so an image made here from a given tarball is held to the digest it had
when it was chosen.
"""

from __future__ import annotations

from pathlib import Path

from verify.common.fsutil import sha256_file
from verify.environments.interface import RootfsImage
from verify.environments.rootfs import ensure_environment


def image_from_tarball(name: str, tarball: Path) -> RootfsImage:
    """A :class:`RootfsImage` for a rootfs tarball made outside the environments stage (no lock)."""
    return RootfsImage(name=name, tarball=tarball, sha256=sha256_file(tarball), lock_sha256="")


def image_for(name: str, *, cache_dir: Path | None = None, rootfs: Path | None = None) -> RootfsImage:
    """Environment ``name``: the given ``rootfs`` tarball, else the pinned one (built if not cached)."""
    if rootfs is not None:
        return image_from_tarball(name, rootfs)
    return ensure_environment(name, cache_dir=cache_dir)


__all__ = ["image_for", "image_from_tarball"]
