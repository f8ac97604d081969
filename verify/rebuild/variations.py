"""``--twice`` and ``--bisect``: build again with variations, compare, and name the culprits.

The comparison is the compare stage's own (:func:`verify.compare.engine.compare_sides`) on the two
manifests the builds have just written, so ``rebuild --twice`` and ``compare`` name and explain the
same differences in the same words. Which differences a variation may cause is recipe data
(``[build.expect.<variation>]``), not code.

Both functions take a ``build`` function (variations -> :class:`RebuildResult`), so the order of builds
and the verdict logic are independent of how a build is run; the cache makes a repeated baseline free.
"""

from __future__ import annotations

from collections.abc import Callable

from verify.compare.engine import compare_sides, diff_manifests
from verify.compare.model import Comparison
from verify.compare.sides import side_from_result
from verify.rebuild.core import RebuildResult
from verify.rebuild.settings import canonical_variations
from verify.recipes import BuildSpec
from verify.result import RecordedDifference, ReproducibilityCheck

BuildFunction = Callable[[frozenset[str]], RebuildResult]


def recorded_differences(
    comparison: Comparison, spec: BuildSpec, variations: frozenset[str], profile: str | None = None
) -> tuple[RecordedDifference, ...]:
    """The compare stage's differences as the record keeps them, each with the variations that explain it
    (by the series' ``[build.expect]`` and ``profile``'s own)."""
    recorded = []
    for difference in comparison.differences:
        verdict = difference.comparison
        expected_by, unexplained = spec.explain(difference.path, difference.changes, variations, profile)
        recorded.append(
            RecordedDifference(
                path=difference.path,
                kind=difference.kind,
                changes=difference.changes,
                category=verdict.category if verdict else None,
                explanation=verdict.explanation if verdict else None,
                expected_by=expected_by,
                unexplained_changes=unexplained,
            )
        )
    return tuple(recorded)


def compare_results(
    first: RebuildResult, second: RebuildResult, variations: frozenset[str], spec: BuildSpec, profile: str | None = None
) -> ReproducibilityCheck:
    """Compare two rebuilds' install trees (from their manifests) and explain every difference."""
    comparison = compare_sides(
        side_from_result(first.result, "A", rescan=False), side_from_result(second.result, "B", rescan=False)
    )
    return ReproducibilityCheck(
        variations=tuple(sorted(variations)),
        differences=recorded_differences(comparison, spec, variations, profile),
        first=str(first.result_dir),
        second=str(second.result_dir),
    )


def rebuild_twice(
    build: BuildFunction, variations: frozenset[str], spec: BuildSpec, profile: str | None = None
) -> ReproducibilityCheck:
    """Build ``profile`` without variations, then with ``variations``, and compare."""
    variations = canonical_variations(variations)
    baseline = build(frozenset())
    varied = build(variations)
    return compare_results(baseline, varied, variations, spec, profile)


def bisect_variations(
    build: BuildFunction, baseline: RebuildResult, check: ReproducibilityCheck
) -> ReproducibilityCheck:
    """Re-run with one variation at a time to name the variation(s) that change the output.

    Each single-variation build is compared with the baseline (manifest against manifest: which paths
    differ is all a culprit needs). Interactions (two variations that only matter together) show up
    as a varied build that differs with no single culprit.
    """
    if check.reproducible or len(check.variations) < 2:
        culprits = {name: not check.reproducible for name in check.variations}
    else:
        reference = baseline.result.read_manifest()
        culprits = {}
        for name in check.variations:
            single = build(frozenset({name}))
            culprits[name] = bool(diff_manifests(reference, single.result.read_manifest()))
    return check.model_copy(update={"culprits": culprits})
