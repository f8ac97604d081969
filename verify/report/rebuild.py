"""Text of a rebuild's outcome: where the result is and, with ``--twice``, what differs and why; and
``--twice``'s comparison as compare's own HTML report, in the same words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from verify.common.lines import listed, verdict_line
from verify.result import RebuildRecord, ReproducibilityCheck, ResultDir, TwoTrainings

if TYPE_CHECKING:
    from verify.compare.twice import TwiceComparison
    from verify.source.releases import Version

MAX_LISTED_PER_KIND = 10
WHERE_THE_REST_ARE = "all of them in the result's rebuild.json and compare.html"


def rebuild_text(result: ResultDir, record: RebuildRecord) -> list[str]:
    """The lines ``rebuild`` prints on success."""
    lines = [
        f"result: {result.path}",
        f"manifest: {result.manifest_path} (sha256 {record.manifest_sha256})",
    ]
    lines += [f"note: {note}" for note in record.cache_notes]
    if record.pgo_profile is not None:
        lines.append(f"PGO profile: sha256 {record.pgo_profile.sha256} ({record.pgo_profile.origin})")
        run = record.pgo_profile.trained_on.run if record.pgo_profile.trained_on else None
        if run is not None:
            lines.append(f"  training: {run.summary()}")
        if record.reproducibility is not None and record.reproducibility.pgo_training is not None:
            lines.append(f"  {training_line(record.reproducibility.pgo_training)}")
    if record.reproducibility is not None:
        lines.extend(reproducibility_text(record.reproducibility))
        if result.compare_html_path.is_file():
            lines.append(f"comparison report: {result.compare_html_path}")
    return lines


def rebuild_closing_line(record: RebuildRecord, entries: int) -> str:
    """The one line that ends ``rebuild``'s text: rebuilt (no ``--twice``), reproducible, explained or not, with
    how many of the baseline's ``entries`` (manifest entries) differ and the manifest's digest."""
    what = f"CPython {record.version} (profile {record.profile})"
    manifest = f"manifest sha256 {record.manifest_sha256}, {entries:,} entries"
    check = record.reproducibility
    if check is None:
        return verdict_line("REBUILT", f"{what}: {manifest}; reproducibility not checked (--twice)")
    varied = _varied(check)
    if check.reproducible:
        return verdict_line(
            "REPRODUCIBLE", f"{what}: the build varied in {varied} is identical in all {entries:,} entries ({manifest})"
        )
    differ = f"{len(check.differences):,} of {entries:,} entries differ"
    if check.explained:
        return verdict_line(
            "EXPLAINED", f"{what}: {differ}, every one as the varied {varied} is documented to cause ({manifest})"
        )
    return verdict_line(
        "NOT REPRODUCIBLE", f"{what}: {differ}, {len(check.unexplained):,} unexplained (varied: {varied}; {manifest})"
    )


def training_line(trainings: TwoTrainings) -> str:
    """How the two builds got their profiles: two independent trainings (with both digests and whether their
    counters agree) or one profile reused, and why."""
    if trainings.mode != "two independent trainings":
        return f"{trainings.mode} (sha256 {trainings.second_sha256}): {trainings.why}"
    agree = trainings.counters_identical
    counters = f" ({trainings.counters} .gcda files)" if trainings.counters is not None else ""
    verdict = {True: f"counters identical{counters}", False: "counters DIFFER", None: "counters not compared"}[agree]
    return (
        f"two independent trainings: profiles sha256 {trainings.first_sha256} and {trainings.second_sha256}, {verdict}"
    )


def _varied(check: ReproducibilityCheck) -> str:
    return ", ".join(check.variations) or "nothing"


def reproducibility_headline(check: ReproducibilityCheck) -> str:
    """The first line of ``--twice``'s verdict: identical, or how many paths differ."""
    if check.reproducible:
        return f"reproducible: the build varied in {_varied(check)} is identical in every file"
    return f"NOT reproducible bit for bit: {len(check.differences)} path(s) differ (varied: {_varied(check)})"


def explanation_line(check: ReproducibilityCheck) -> str | None:
    """Whether the differences are the ones the variations are documented to cause (None when identical)."""
    if check.reproducible:
        return None
    if check.explained:
        return "all differences are of the kinds the chosen variations are documented to cause"
    return f"unexplained differences: {len(check.unexplained)}"


def culprits_line(check: ReproducibilityCheck) -> str | None:
    """After ``--bisect``: the variation(s) that alone change the output (None without a bisection)."""
    if not check.culprits:
        return None
    culprits = [name for name, guilty in sorted(check.culprits.items()) if guilty]
    return f"culprit variation(s): {', '.join(culprits) or 'none alone (an interaction)'}"


def skipped_line(variation: str, why: str) -> str:
    """The one line every report gives a requested variation the second build skipped."""
    return f"skipped variation {variation}: does not apply to this profile: {why}"


def skipped_lines(check: ReproducibilityCheck) -> list[str]:
    """One line per requested variation the second build skipped, with the recipe's reason."""
    return [skipped_line(name, why) for name, why in sorted(check.skipped.items())]


def reproducibility_text(check: ReproducibilityCheck) -> list[str]:
    """``--twice``: identical, or the differences grouped by kind, with explanations and culprits."""
    lines = [reproducibility_headline(check), *skipped_lines(check)]
    if check.reproducible:
        return lines
    by_kind: dict[str, list[str]] = {}
    changes: dict[str, dict[str, int]] = {}
    for difference in check.differences:
        by_kind.setdefault(difference.kind, []).append(difference.path)
        per_kind = changes.setdefault(difference.kind, {})
        for change in difference.changes:
            per_kind[change] = per_kind.get(change, 0) + 1
    for kind in sorted(by_kind):
        paths = sorted(by_kind[kind])
        detail = ", ".join(f"{count} {change}" for change, count in sorted(changes[kind].items()))
        lines.append(f"  {kind}: {len(paths)} ({detail})")
        lines.extend(listed(paths, MAX_LISTED_PER_KIND, WHERE_THE_REST_ARE, indent="    "))
    explanation = explanation_line(check)
    if explanation is not None:
        lines.append(explanation)
    if not check.explained:
        unexplained = [
            f"{difference.path} ({', '.join(difference.changes)}"
            + (f", category {difference.category}" if difference.category else "")
            + ")"
            + (f": {difference.explanation}" if difference.explanation else "")
            for difference in check.unexplained
        ]
        lines.extend(listed(unexplained, MAX_LISTED_PER_KIND, WHERE_THE_REST_ARE, indent="  "))
    culprits = culprits_line(check)
    if culprits is not None:
        lines.append(culprits)
    return lines


def twice_report_html(twice: TwiceComparison, *, version: Version, profile: str) -> str:
    """``--twice``'s comparison as ``compare --html`` renders it, titled with the release, profile and
    variations, with the record's verdict and the recipe's reason beside each explained difference."""
    from verify.report.compare import HtmlContext, render_html

    check = twice.check
    # The lines reproducibility_text prints around its per-kind listing, which the page shows itself.
    supporting = () if check.reproducible else (explanation_line(check), culprits_line(check))
    trainings = (training_line(check.pgo_training),) if check.pgo_training is not None else ()
    verdict = (
        reproducibility_headline(check),
        *skipped_lines(check),
        *trainings,
        *(line for line in supporting if line is not None),
    )
    context = HtmlContext(
        title=f"CPython {version}, profile {profile}: baseline vs. a build varied in {_varied(check)}",
        side_names=("baseline", f"varied: {_varied(check)}"),
        verdict=verdict,
        verdict_class="same" if check.reproducible else "explained" if check.explained else "differ",
        expected=twice.reasons,
        unexplained={d.path: d.unexplained_changes for d in check.differences if d.unexplained_changes},
    )
    return render_html(twice.comparison, context)
