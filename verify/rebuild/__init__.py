"""The reproducible CPython rebuild: verified source in, install tree and manifest out.

Public API: :func:`rebuild` (one build), :func:`rebuild_twice` / :func:`bisect_variations`
(``--twice`` / ``--bisect``), :class:`BuildSettings` and :func:`apply_variations` (every
reproducibility setting in one place), :class:`RebuildCache`.
"""

from verify.rebuild.cache import RebuildCache, cache_key, default_cache_dir
from verify.rebuild.core import (
    PHASES,
    BuildFailed,
    ProgressSink,
    RebuildResult,
    SourceNotVerified,
    phase_commands,
    rebuild,
    unpack_release,
)
from verify.rebuild.settings import VARIATIONS, BuildSettings, apply_variations, parse_variations

__all__ = [
    "PHASES",
    "VARIATIONS",
    "BuildFailed",
    "BuildSettings",
    "ProgressSink",
    "RebuildCache",
    "RebuildResult",
    "SourceNotVerified",
    "apply_variations",
    "cache_key",
    "default_cache_dir",
    "parse_variations",
    "phase_commands",
    "rebuild",
    "unpack_release",
]
