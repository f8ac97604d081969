"""``check``'s outcome as JSON (``check.json``, ``--json``) and as text. Derived from the outcome alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from verify.chain import CheckOutcome

CHECK_FORMAT: Final = "cpython-verify/check/v1"


def check_to_json(outcome: CheckOutcome) -> dict[str, Any]:
    """The JSON summary; every verdict in it is read from the evidence in ``outcome``."""
    rebuilt = outcome.rebuild
    check = rebuilt.reproducibility
    signed = outcome.attestation.signed
    attestation: dict[str, Any]
    if signed is None:
        attestation = {"signed": False, "why": outcome.attestation.why_not}
    else:
        attestation = {
            "signed": True,
            "path": str(signed.path),
            "verdict": signed.content.predicate.verdict,
            "public_key": str(outcome.attestation.new_public_key) if outcome.attestation.new_public_key else None,
            "new_key": outcome.attestation.new_public_key is not None,
        }
    return {
        "format": CHECK_FORMAT,
        "version": rebuilt.record.version,
        "result": str(rebuilt.result.path),
        "source": {"verified": outcome.source_verified, "sha256": rebuilt.record.source.sha256},
        "recipe": {"profile": rebuilt.record.inputs.recipe.profile, "measured_on": list(rebuilt.measured_on)},
        "rebuild": {
            "manifest_sha256": rebuilt.record.manifest_sha256,
            "variations": list(check.variations) if check else [],
            "reproducible": check.reproducible if check else None,
            "explained": check.explained if check else None,
            "differences": len(check.differences) if check else 0,
        },
        "peers": [
            {
                "peer": str(peer.location),
                "identical": peer.comparison.identical,
                "differences": len(peer.comparison.differences),
                "by_category": peer.comparison.counts_by_category(),
                "report": str(peer.report),
            }
            for peer in outcome.peers
        ],
        "attestation": attestation,
        "ok": outcome.ok,
    }


def check_text(outcome: CheckOutcome) -> str:
    """The human summary: one line per stage, then CHECK PASSED or CHECK FAILED."""
    rebuilt = outcome.rebuild
    check = rebuilt.reproducibility
    source = "verified" if outcome.source_verified else "NOT verified"
    lines = [
        f"CPython {rebuilt.record.version}: result in {rebuilt.result.path}",
        f"  source      {source} (sha256 {rebuilt.record.source.sha256})",
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
    lines.append(f"  manifest    sha256 {rebuilt.record.manifest_sha256}")
    if rebuilt.recipe_status:
        lines.append(f"  recipe      {rebuilt.recipe_status.removeprefix('recipe ')}")
    for peer in outcome.peers:
        state = "identical" if peer.comparison.identical else f"{len(peer.comparison.differences)} path(s) differ"
        lines.append(f"  peer        {peer.location}: {state} (report {peer.report})")
    signed = outcome.attestation.signed
    if signed is not None:
        lines.append(f"  attestation {signed.path} ({signed.content.predicate.verdict})")
        if outcome.attestation.new_public_key is not None:
            lines.append(f"              new signing key; publish {outcome.attestation.new_public_key}")
    else:
        lines.append(f"  attestation none: {outcome.attestation.why_not}")
    lines.append("CHECK PASSED" if outcome.ok else "CHECK FAILED")
    return "\n".join(lines)
