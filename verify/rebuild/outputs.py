"""The install tree as data: the manifest a rebuild writes.

The manifest format belongs to ``verify.manifest`` (the manifest stage); :func:`write_manifest_for`
is the one call the rebuild makes. Comparing two rebuilds is the compare stage's job
(:mod:`verify.compare.twice` calls it on these manifests).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from verify.manifest import Manifest, scan_tree, write_manifest


def write_manifest_for(root: Path, inputs: Mapping[str, Any], path: Path) -> str:
    """Write the manifest (``verify.manifest``'s canonical format) of the install tree ``root``,
    with the build's ``inputs``, atomically to ``path``; return the sha256 of the file."""
    manifest = Manifest(inputs=dict(inputs), entries=scan_tree(root))
    return write_manifest(manifest, path)
