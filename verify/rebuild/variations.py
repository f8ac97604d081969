"""``--twice`` and ``--bisect``: build again with variations, compare, and name the culprits.

Both take a ``build`` function (variations -> :class:`RebuildResult`), so the order of builds and the
verdict logic are independent of how a build is run; the cache makes a repeated baseline free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from verify.rebuild.core import RebuildResult
from verify.rebuild.outputs import Difference, diff_trees, group_by_kind

BuildFunction = Callable[[frozenset[str]], RebuildResult]

# TODO(recipe key [build.expect.<variation>]): which differences a variation is *allowed* to make,
# as (kind, change) pairs. Measured on 3.13.5 (docs/rebuild.md):
# - a different build path changes sysconfigdata (abs_builddir, abs_srcdir, the -ffile-prefix-map
#   flag in CFLAGS) with its three .pyc, the installed config Makefile and python3.13-config (which
#   embeds the flags); with -ffile-prefix-map no ELF file changes;
# - a different umask changes the mode of every __pycache__ directory (compileall creates them
#   with os.makedirs, which honours the umask), and nothing else.
# Every other variation is expected to change nothing.
EXPECTED_DIFFERENCES: Mapping[str, frozenset[tuple[str, str]]] = {
    "build_path": frozenset({("sysconfigdata", "content"), ("makefile", "content"), ("config-script", "content")}),
    "umask": frozenset({("directory", "mode")}),
}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two rebuilds compared file by file."""

    first: RebuildResult
    second: RebuildResult
    variations: frozenset[str]
    differences: tuple[Difference, ...]
    unexplained: tuple[Difference, ...]
    """Differences no chosen variation is documented to produce."""
    culprits: Mapping[str, bool] = field(default_factory=dict)
    """After ``--bisect``: variation -> whether it alone makes the outputs differ."""

    @property
    def reproducible(self) -> bool:
        """True when the two install trees are identical in every file, link and mode."""
        return not self.differences

    @property
    def explained(self) -> bool:
        """True when every difference is of a kind the chosen variations are documented to cause."""
        return not self.unexplained

    def to_json(self) -> dict[str, Any]:
        """The comparison part of ``rebuild.json``."""
        return {
            "reproducible": self.reproducible,
            "explained": self.explained,
            "variations": sorted(self.variations),
            "differences": [
                {"path": difference.path, "kind": difference.kind, "change": difference.change}
                for difference in self.differences
            ],
            "differences_by_kind": group_by_kind(self.differences),
            "unexplained": [difference.path for difference in self.unexplained],
            "culprits": dict(sorted(self.culprits.items())),
            "first": str(self.first.result_dir),
            "second": str(self.second.result_dir),
        }


def expected_changes(variations: frozenset[str]) -> frozenset[tuple[str, str]]:
    """The (kind, change) pairs the given variations may legitimately cause."""
    allowed: set[tuple[str, str]] = set()
    for variation in variations:
        allowed |= EXPECTED_DIFFERENCES.get(variation, frozenset())
    return frozenset(allowed)


def compare_results(first: RebuildResult, second: RebuildResult, variations: frozenset[str]) -> Comparison:
    """Compare two rebuilds' install trees and sort the differences into explained and not."""
    differences = diff_trees(first.install_root, second.install_root)
    allowed = expected_changes(variations)
    unexplained = tuple(d for d in differences if (d.kind, d.change) not in allowed)
    return Comparison(first, second, variations, differences, unexplained)


def rebuild_twice(build: BuildFunction, variations: frozenset[str]) -> Comparison:
    """Build without variations, then with ``variations``, and compare."""
    baseline = build(frozenset())
    varied = build(variations)
    return compare_results(baseline, varied, variations)


def bisect_variations(build: BuildFunction, comparison: Comparison) -> Comparison:
    """Re-run with one variation at a time to name the variation(s) that change the output.

    Each single-variation build is compared with the baseline. Interactions (two variations that
    only matter together) show up as a varied build that differs with no single culprit.
    """
    if comparison.reproducible or len(comparison.variations) < 2:
        culprits = {name: not comparison.reproducible for name in comparison.variations}
    else:
        culprits = {}
        for name in sorted(comparison.variations):
            single = build(frozenset({name}))
            culprits[name] = bool(diff_trees(comparison.first.install_root, single.install_root))
    return Comparison(
        comparison.first,
        comparison.second,
        comparison.variations,
        comparison.differences,
        comparison.unexplained,
        culprits,
    )
