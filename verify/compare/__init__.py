"""Compare install trees and manifests: classified, explained differences.

In: two sides, each a directory, a rebuild result or a manifest (or two rebuild results from
``--twice`` with the recipe's ``[build.expect]`` entries, which ``twice`` judges their differences by).
Out: a :class:`Comparison`: every difference, classified and explained by a per-format comparator.
Next: :mod:`verify.attest` (``check`` attests a result whose twice-comparison agrees).

``compare_paths(a, b)`` is the entry point; ``diff_manifests`` is the pure manifest diff; the per-format
comparators live in ``verify.compare.comparators``.
"""

from verify.compare.diffoscope import DiffoscopeSettings
from verify.compare.engine import compare_paths, compare_sides, diff_manifests, digest_only_verdict
from verify.compare.model import CHANGES, Comparison, Difference, FileComparison, SideInfo
from verify.compare.sides import Side, SideError, load_side, side_from_tree

__all__ = [
    "CHANGES",
    "Comparison",
    "Difference",
    "DiffoscopeSettings",
    "FileComparison",
    "Side",
    "SideError",
    "SideInfo",
    "compare_paths",
    "compare_sides",
    "diff_manifests",
    "digest_only_verdict",
    "load_side",
    "side_from_tree",
]
