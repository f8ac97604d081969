"""Reading what the user hands the audit: a quilt patch directory, and the installation inputs.

Nothing here executes anything from an input; archives are unpacked by :mod:`verify.unpack` under
its hostile-archive rules.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from verify.audit.patches import MAX_PATCH_BYTES, Patch, PatchError, parse_patch, parse_series


def _read_capped(path: Path, limit: int, what: str) -> str:
    """The text of the regular file ``path`` (no link followed), refused past ``limit`` bytes."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as error:
        raise PatchError(f"{what}: cannot read {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise PatchError(f"{what}: {path} is not a regular file")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise PatchError(f"{what}: {path} is larger than {limit} bytes")
    return data.decode("utf-8", "surrogateescape")


def read_patch_series(directory: Path) -> list[Patch]:
    """Every patch named in ``directory/series``, in order (a Debian source package's ``debian/patches``).

    Patch names and the paths inside patches must stay inside their trees: a name with ``..`` or an
    absolute path, or a link, is refused with :class:`PatchError`.
    """
    series = _read_capped(directory / "series", MAX_PATCH_BYTES, "--patches")
    patches = []
    for name in parse_series(series):
        text = _read_capped(directory / name, MAX_PATCH_BYTES, f"--patches {name}")
        patches.append(parse_patch(name, text))
    return patches
