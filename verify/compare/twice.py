"""``--twice`` and ``--bisect``: compare two rebuilds, explain each difference, and name the culprits.

This is the compare stage's side of ``--twice``: the rebuild stage builds (and chooses the variations,
:func:`verify.rebuild.variations.choose_variations`), :mod:`verify.chain` passes the builds here. The
comparison is the compare stage's own (:func:`verify.compare.engine.compare_sides`) on the two
manifests the builds have just written, so ``rebuild --twice`` and ``compare`` name and explain the
same differences in the same words. Which differences a variation may cause is recipe data
(``[build.expect.<variation>]``), not code.

Both functions take a ``build`` function (variations -> :class:`RebuildResult`), so the order of builds
and the verdict logic are independent of how a build is run; the cache makes a repeated baseline free.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from verify.compare.engine import compare_sides, diff_manifests
from verify.compare.model import Comparison
from verify.compare.sides import side_from_result
from verify.rebuild.core import RebuildResult
from verify.rebuild.variations import choose_variations
from verify.result import RecordedDifference, ReproducibilityCheck
from verify.source.recipe_terms import CONTENT_CHANGE, NONDETERMINISTIC
from verify.source.recipes import BuildSpec, ExpectedDifference

BuildFunction = Callable[[frozenset[str]], RebuildResult]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob of ``[build.expect]`` as a regex: ``**/`` is any number of directories, ``*`` and ``?``
    stay in one segment."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:[^/]+/)*")
            index += 3
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def accounts_for(entry: ExpectedDifference, path: str, changes: tuple[str, ...], category: str | None = None) -> bool:
    """True when ``path`` matches one of ``entry``'s globs, every one of its ``changes`` is one ``entry``
    allows and, for a content change, the comparator's ``category`` is one ``entry`` names."""
    if not set(changes) <= entry.changes:
        return False
    if CONTENT_CHANGE in changes and (category is None or category not in entry.categories):
        return False
    return any(glob_regex(glob).match(path) for glob in entry.paths)


def documented(spec: BuildSpec, variation: str, profile: str | None) -> tuple[ExpectedDifference, ...]:
    """What ``variation`` is documented to change in ``profile``'s builds: the series-wide entry, then the
    profile's own (a profile the recipe does not have, or None, adds nothing)."""
    own = spec.profiles.get(profile) if profile is not None else None
    if variation == NONDETERMINISTIC:
        return (own.nondeterministic,) if own is not None and own.nondeterministic is not None else ()
    tables = [spec.expect]
    if own is not None:
        tables.append(own.expect)
    return tuple(table[variation] for table in tables if variation in table)


def explain(
    spec: BuildSpec,
    path: str,
    changes: tuple[str, ...],
    variations: frozenset[str],
    profile: str | None = None,
    *,
    category: str | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Which chosen ``variations`` account for some of the changes, and which changes none accounts for.

    Each change is judged on its own: a file whose content follows the build path and whose mode
    follows the umask is explained when both were varied and the recipe documents both. A content
    change needs the comparator's ``category`` to be one the entry names (None: nothing classified
    it, so nothing explains it). What ``profile``'s own ``expect`` documents counts too, for builds
    of that profile only, and so does its ``nondeterministic`` entry (named :data:`NONDETERMINISTIC`),
    whatever was varied.
    """
    candidates = set(variations)
    own = spec.profiles.get(profile) if profile is not None else None
    if own is not None and own.nondeterministic:
        candidates.add(NONDETERMINISTIC)
    expected_by: set[str] = set()
    unexplained = []
    for change in changes:
        accounting = {
            name
            for name in candidates
            if any(accounts_for(entry, path, (change,), category) for entry in documented(spec, name, profile))
        }
        expected_by |= accounting
        if not accounting:
            unexplained.append(change)
    return tuple(sorted(expected_by)), tuple(unexplained)


def recorded_differences(
    comparison: Comparison, spec: BuildSpec, variations: frozenset[str], profile: str | None = None
) -> tuple[RecordedDifference, ...]:
    """The compare stage's differences as the record keeps them, each with the variations that explain it
    (by the series' ``[build.expect]`` and ``profile``'s own): the path, the change and the comparator's
    category must all be documented."""
    recorded = []
    for difference in comparison.differences:
        verdict = difference.comparison
        category = verdict.category if verdict else None
        expected_by, unexplained = explain(
            spec, difference.path, difference.changes, variations, profile, category=category
        )
        recorded.append(
            RecordedDifference(
                path=difference.path,
                kind=difference.kind,
                changes=difference.changes,
                category=category,
                explanation=verdict.explanation if verdict else None,
                expected_by=expected_by,
                unexplained_changes=unexplained,
            )
        )
    return tuple(recorded)


def expected_reasons(
    difference: RecordedDifference, spec: BuildSpec, profile: str | None = None
) -> tuple[tuple[str, str], ...]:
    """``(variation, why)`` for each variation that explains ``difference``: the recipe's own words
    (``[build.expect.<variation>]``'s ``why``, and ``profile``'s), which the record names only by variation."""
    reasons: list[tuple[str, str]] = []
    for name in difference.expected_by:
        for entry in documented(spec, name, profile):
            accounts = any(
                accounts_for(entry, difference.path, (change,), difference.category) for change in difference.changes
            )
            if accounts and (name, entry.why) not in reasons:
                reasons.append((name, entry.why))
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class TwiceComparison:
    """``--twice``'s one comparison, in both forms: the compare stage's (for compare's own reports) and
    the record's (each difference with the variations that explain it)."""

    comparison: Comparison
    check: ReproducibilityCheck
    reasons: Mapping[str, tuple[tuple[str, str], ...]]
    """Path -> ``(variation, why)`` from the recipe, for each difference some variation explains."""


def compare_builds(
    first: RebuildResult,
    second: RebuildResult,
    variations: frozenset[str],
    spec: BuildSpec,
    profile: str | None = None,
    *,
    skipped: Mapping[str, str] | None = None,
) -> TwiceComparison:
    """Compare two rebuilds' install trees (from their manifests) and explain every difference.

    ``variations`` are those the second build applied; ``skipped`` the requested ones it did not, with
    the recipe's reason (:func:`choose_variations`), recorded beside them."""
    comparison = compare_sides(
        side_from_result(first.result, "A", rescan=False), side_from_result(second.result, "B", rescan=False)
    )
    check = ReproducibilityCheck(
        variations=tuple(sorted(variations)),
        differences=recorded_differences(comparison, spec, variations, profile),
        skipped=dict(skipped or {}),
        first=str(first.result_dir),
        second=str(second.result_dir),
    )
    reasons = {
        difference.path: why for difference in check.differences if (why := expected_reasons(difference, spec, profile))
    }
    return TwiceComparison(comparison, check, reasons)


def compare_results(
    first: RebuildResult, second: RebuildResult, variations: frozenset[str], spec: BuildSpec, profile: str | None = None
) -> ReproducibilityCheck:
    """:func:`compare_builds`, as the record keeps it."""
    return compare_builds(first, second, variations, spec, profile).check


def rebuild_twice(
    build: BuildFunction, variations: frozenset[str], spec: BuildSpec, profile: str | None = None
) -> ReproducibilityCheck:
    """Build ``profile`` without variations, then with those of ``variations`` that apply to it, and compare."""
    applied, skipped = choose_variations(spec, variations, profile)
    baseline = build(frozenset())
    varied = build(applied)
    return compare_builds(baseline, varied, applied, spec, profile, skipped=skipped).check


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
