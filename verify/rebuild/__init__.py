"""The reproducible CPython rebuild: verified source in, install tree and manifest out.

In: a :class:`~verify.source.models.SourceVerdict` with its verified tarball, the recipe's profile as
chosen once (:class:`~verify.rebuild.core.ChosenProfile`), an environment image and runner
(:mod:`verify.environments`) and, with ``--pgo-profile``, the profile read once
(:class:`~verify.rebuild.core.PinnedPgoProfile`, from :func:`~verify.rebuild.core.check_pgo_profile`).
Out: a :class:`~verify.rebuild.core.RebuildResult`: the result directory (:mod:`verify.result`) with the
install tree, its manifest and the rebuild record.
Next: :mod:`verify.compare` (``--twice`` compares two rebuilds there: :mod:`verify.chain` hands them
over, this stage never imports compare), then :mod:`verify.attest`.

Public API: :func:`rebuild` (one build), :func:`~verify.rebuild.variations.choose_variations` (what a
second build varies), :mod:`~verify.rebuild.twice_training` (how it gets its PGO profile),
:class:`BuildSettings` and :func:`apply_variations` (every reproducibility setting in one place),
:class:`RebuildCache`; ``pgo_trainer.py`` is the deterministic PGO training task the sandbox runs (data,
not imported).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verify.rebuild.cache import RebuildCache, cache_key, rebuild_cache_dir
    from verify.rebuild.core import (
        PHASES,
        BuildFailed,
        ChosenProfile,
        ProgressSink,
        RebuildResult,
        SourceNotVerified,
        phase_commands,
        rebuild,
        unpack_release,
    )
    from verify.rebuild.settings import VARIATIONS, BuildSettings, apply_variations, parse_variations

# Loaded on first use: importing one light module of this stage (``verify.rebuild.settings``, which the
# command line's options read for their help) runs this file, and importing the build machinery here would
# make every command, ``source`` too, pay for it (0.55 s of imports, measured with python -X importtime).
_WHERE = {
    **dict.fromkeys(("RebuildCache", "cache_key", "rebuild_cache_dir"), "cache"),
    **dict.fromkeys(
        (
            "PHASES",
            "BuildFailed",
            "ChosenProfile",
            "ProgressSink",
            "RebuildResult",
            "SourceNotVerified",
            "phase_commands",
            "rebuild",
            "unpack_release",
        ),
        "core",
    ),
    **dict.fromkeys(("VARIATIONS", "BuildSettings", "apply_variations", "parse_variations"), "settings"),
}


def __getattr__(name: str) -> Any:
    """The public API's names, imported from their modules when first asked for."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "PHASES",
    "VARIATIONS",
    "BuildFailed",
    "BuildSettings",
    "ChosenProfile",
    "ProgressSink",
    "RebuildCache",
    "RebuildResult",
    "SourceNotVerified",
    "apply_variations",
    "cache_key",
    "parse_variations",
    "phase_commands",
    "rebuild",
    "rebuild_cache_dir",
    "unpack_release",
]
