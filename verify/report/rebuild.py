"""Text of a rebuild's outcome: where the result is and, with ``--twice``, what differs and why."""

from __future__ import annotations

from verify.result import RebuildRecord, ReproducibilityCheck, ResultDir

MAX_LISTED_PER_KIND = 10


def rebuild_text(result: ResultDir, record: RebuildRecord) -> list[str]:
    """The lines ``rebuild`` prints on success."""
    lines = [
        f"result: {result.path}",
        f"manifest: {result.manifest_path} (sha256 {record.manifest_sha256})",
    ]
    if record.pgo_profile is not None:
        lines.append(f"PGO profile: sha256 {record.pgo_profile.sha256} ({record.pgo_profile.origin})")
        if record.reproducibility is not None and record.pgo_profile.origin == "trained in this build":
            lines.append("  the second build reused this profile, pinned by that digest, instead of training again")
    if record.reproducibility is not None:
        lines.extend(reproducibility_text(record.reproducibility))
    return lines


def reproducibility_text(check: ReproducibilityCheck) -> list[str]:
    """``--twice``: identical, or the differences grouped by kind, with explanations and culprits."""
    varied = ", ".join(check.variations) or "nothing"
    if check.reproducible:
        return [f"reproducible: the build varied in {varied} is identical in every file"]
    lines = [f"NOT reproducible bit for bit: {len(check.differences)} path(s) differ (varied: {varied})"]
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
        lines.extend(f"    {path}" for path in paths[:MAX_LISTED_PER_KIND])
        if len(paths) > MAX_LISTED_PER_KIND:
            lines.append(f"    ... and {len(paths) - MAX_LISTED_PER_KIND} more")
    if check.explained:
        lines.append("all differences are of the kinds the chosen variations are documented to cause")
    else:
        lines.append(f"unexplained differences: {len(check.unexplained)}")
        for difference in check.unexplained[:MAX_LISTED_PER_KIND]:
            why = f": {difference.explanation}" if difference.explanation else ""
            lines.append(f"  {difference.path} ({', '.join(difference.changes)}){why}")
    if check.culprits:
        culprits = [name for name, guilty in sorted(check.culprits.items()) if guilty]
        lines.append(f"culprit variation(s): {', '.join(culprits) or 'none alone (an interaction)'}")
    return lines
