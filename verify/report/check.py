"""``check``'s outcome as JSON (``check.json``, ``--json``) and as text. Derived from the outcome (and the
published result's manifest, for how many entries the two builds were compared in).

Both state what was checked: the source (tarball, sha256, each signature, relaxations, digest claims), the
two rebuilds compared (in how many entries), and each peer (paths compared on each side); the text ends
with one CHECK PASSED / CHECK FAILED line. ``cpython-verify/check/v1``: fields are only added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from verify.common.lines import verdict_line
from verify.report.compare import coverage_summary
from verify.source.models import CheckStatus

if TYPE_CHECKING:
    from verify.outcomes import CheckOutcome


def _entries(outcome: CheckOutcome) -> int:
    """How many entries the published baseline's manifest holds: what the two rebuilds were compared in."""
    return len(outcome.rebuild.result.read_manifest().entries)


def check_verdict_line(outcome: CheckOutcome, entries: int | None = None) -> str:
    """The closing line: passed or failed, and for each stage what it checked."""
    rebuilt = outcome.rebuild
    source = rebuilt.source
    counted = _entries(outcome) if entries is None else entries
    signatures = f"{source.signatures_verified} of {len(source.signatures)} signature(s) verified"
    relaxed = ", ".join(
        f"--allow-missing {kind}"
        for kind in source.allowed_missing
        if any(e.kind is kind and e.status is CheckStatus.NOT_REQUIRED for e in source.signatures)
    )
    parts = [
        f"source {source.tarball.name} sha256 {source.tarball.sha256} "
        f"{'verified' if outcome.source_verified else 'NOT verified'} ({signatures}"
        f"{'; relaxed: ' + relaxed if relaxed else ''})"
    ]
    check = rebuilt.reproducibility
    if check is None:
        parts.append("rebuilt once: reproducibility not checked")
    elif check.reproducible:
        parts.append(
            f"2 builds identical in all {counted:,} entries ({', '.join(check.variations) or 'nothing'} varied)"
        )
    else:
        state = "all explained" if check.explained else f"{len(check.unexplained):,} unexplained"
        parts.append(f"2 builds differ in {len(check.differences):,} of {counted:,} entries, {state}")
    identical = sum(1 for peer in outcome.peers if peer.comparison.passed)
    parts.append(f"{identical} of {len(outcome.peers)} peer(s) identical" if outcome.peers else "no peer compared")
    return verdict_line("CHECK PASSED" if outcome.ok else "CHECK FAILED", "; ".join(parts))


def check_to_json(outcome: CheckOutcome) -> dict[str, Any]:
    """The JSON summary (:class:`verify.report.check_document.CheckDocument`); every verdict in it is read
    from the evidence in ``outcome``."""
    from verify.report.check_document import CheckDocument

    entries = _entries(outcome)
    return CheckDocument.of(outcome, entries=entries, verdict=check_verdict_line(outcome, entries)).to_json()


def check_text(outcome: CheckOutcome) -> str:
    """The human summary: one line per stage, then CHECK PASSED or CHECK FAILED."""
    from verify.report.rebuild import skipped_line

    rebuilt = outcome.rebuild
    check = rebuilt.reproducibility
    verdict = rebuilt.source
    source = "verified" if outcome.source_verified else "NOT verified"
    signatures = ", ".join(f"{e.kind} {e.status}" for e in verdict.signatures) or "none"
    relaxed = "; ".join(verdict.relaxations()) or "nothing"
    entries = _entries(outcome)
    lines = [
        f"CPython {rebuilt.record.version}: result in {rebuilt.result.path}",
        f"  source      {source}: {verdict.tarball.name} sha256 {verdict.tarball.sha256} "
        f"({verdict.tarball.size:,} bytes); signatures: {signatures}; {verdict.digests_agreeing} of "
        f"{len(verdict.digests)} digest claim(s) agree; relaxed: {relaxed}",
    ]
    if check is None:
        lines.append("  rebuild     built once: reproducibility not checked")
    else:
        varied = ", ".join(check.variations) or "nothing"
        if check.reproducible:
            lines.append(f"  rebuild     reproducible: identical in every file with {varied} varied")
        elif check.explained:
            lines.append(f"  rebuild     {len(check.differences)} path(s) differ, all as the varied {varied} explains")
        else:
            lines.append(f"  rebuild     NOT reproducible: {len(check.differences)} path(s) differ ({varied} varied)")
        lines.extend(f"              {skipped_line(name, why)}" for name, why in sorted(check.skipped.items()))
    if check is not None and check.pgo_training is not None:
        from verify.report.rebuild import training_line

        lines.append(f"  pgo         {training_line(check.pgo_training)}")
    lines.append(f"  manifest    sha256 {rebuilt.record.manifest_sha256} ({entries:,} entries)")
    if rebuilt.recipe_status:
        lines.append(f"  recipe      {rebuilt.recipe_status.removeprefix('recipe ')}")
    lines += [f"  cache       {note}" for note in rebuilt.record.cache_notes]
    for peer in outcome.peers:
        state = "identical" if peer.comparison.passed else f"{len(peer.comparison.differences)} path(s) differ"
        lines.append(
            f"  peer        {peer.location}: {state}: {coverage_summary(peer.comparison)} (report {peer.report})"
        )
    signed = outcome.attestation.signed
    if signed is not None:
        lines.append(f"  attestation {signed.path} ({signed.content.predicate.verdict})")
        if outcome.attestation.new_public_key is not None:
            lines.append(f"              new signing key; publish {outcome.attestation.new_public_key}")
    else:
        lines.append(f"  attestation none: {outcome.attestation.why_not}")
    lines.append(check_verdict_line(outcome, entries))
    return "\n".join(lines)
