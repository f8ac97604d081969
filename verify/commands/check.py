"""``cpython-verify check VERSION``: the whole chain for one release.

verify the source -> rebuild twice in the pinned sandbox (the second time with variations) -> compare
with every peer or published build given -> attest (signed, when a key is given). One verdict, one
exit code: 0 when the source verified, the two rebuilds agree (identically, or only in differences
the variations are documented to cause), and every peer is identical; 1 otherwise; 2 on error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from verify.commands.rebuild import rebuild as rebuild_command
from verify.commands.rebuild import rebuild_release
from verify.errors import EXIT_FAILED, EXIT_OK
from verify.fsutil import write_atomic

CHECK_FORMAT = "cpython-verify/check/v1"
# What differs between two rebuilders' machines and must not change a byte: the clock, the CPU count,
# and the host's name, locale and time zone (the sandbox pins the last three; varying them shows the
# pins hold). Not varied by default: build_path and umask, which are pinned because they are known to
# change outputs (sysconfigdata; __pycache__ modes), and user.
DEFAULT_VARIATIONS = "time,cpus,hostname,locale,timezone"
_NOT_FOR_CHECK = {"version", "twice", "bisect"}


@click.command("check")
@click.argument("version")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A peer's or published build to compare with: manifest, install tree or rebuild result. Repeatable.",
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign the attestation with this Ed25519/P-256 PEM key; a new Ed25519 key is created if the file "
    "does not exist (its public key is written beside it as KEY.pub).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (also written to RESULT/check.json).")
def check(version: str, peers: tuple[Path, ...], key_path: Path | None, as_json: bool, **params: Any) -> None:
    """Verify, rebuild twice, compare with peers and attest CPython VERSION: the whole chain.

    Takes every option of `rebuild` (source locations, --profile, --runner, --vary, --out, ...);
    --vary defaults to the variations two rebuilders' machines differ in.
    """
    params.update(version=version, twice=True, bisect=False)
    if not params.get("vary"):
        params["vary"] = (DEFAULT_VARIATIONS,)
    baseline, comparison, out_dir = rebuild_release(params)
    assert comparison is not None  # twice=True

    summary: dict[str, Any] = {
        "format": CHECK_FORMAT,
        "version": version,
        "result": str(out_dir),
        "source": {"verified": True, "sha256": baseline.record.get("source", {}).get("sha256")},
        "rebuild": {
            "manifest_sha256": baseline.record.get("manifest_sha256"),
            "variations": sorted(comparison.variations),
            "reproducible": comparison.reproducible,
            "explained": comparison.explained,
            "differences": len(comparison.differences),
        },
        "peers": [_compare_with_peer(out_dir, peer) for peer in peers],
        "attestation": _attest(out_dir, key_path),
    }
    ok = comparison.explained and all(peer["identical"] for peer in summary["peers"])
    summary["ok"] = ok
    document = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    write_atomic(out_dir / "check.json", document.encode())
    click.echo(document if as_json else _summary_text(summary), nl=not as_json)
    raise click.exceptions.Exit(EXIT_OK if ok else EXIT_FAILED)


# check takes every option of rebuild but the ones it decides itself.
check.params.extend(param for param in rebuild_command.params if param.name not in _NOT_FOR_CHECK)


def _compare_with_peer(out_dir: Path, peer: Path) -> dict[str, Any]:
    from verify.compare import compare_paths
    from verify.report.compare import comparison_to_dict

    comparison = compare_paths(out_dir, peer)
    report = out_dir / f"compare-{peer.name or 'peer'}.json"
    write_atomic(report, (json.dumps(comparison_to_dict(comparison), indent=2, sort_keys=True) + "\n").encode())
    return {
        "peer": str(peer),
        "identical": comparison.identical,
        "differences": len(comparison.differences),
        "by_category": comparison.counts_by_category(),
        "report": str(report),
    }


def _attest(out_dir: Path, key_path: Path | None) -> dict[str, Any]:
    if key_path is None:
        return {"signed": False, "why": "no --key given: the result is not attested"}
    from verify.attest import RebuildInputs, build_content, build_statement, load_private_key, sign_offline
    from verify.attest.signing import generate_private_key
    from verify.commands.attest import default_rebuilder_id

    created = False
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        generate_private_key(key_path)
        created = True
    content = build_content(RebuildInputs.from_result_dir(out_dir), rebuilder_id=default_rebuilder_id())
    envelope = sign_offline(build_statement(content), load_private_key(key_path))
    target = out_dir / "attestation.intoto.json"
    write_atomic(target, envelope)
    return {
        "signed": True,
        "path": str(target),
        "key": str(key_path),
        "public_key": str(key_path.with_name(key_path.name + ".pub")) if created else None,
        "new_key": created,
        "verdict": content.predicate.verdict,
    }


def _summary_text(summary: dict[str, Any]) -> str:
    rebuild = summary["rebuild"]
    lines = [
        f"CPython {summary['version']}: result in {summary['result']}",
        f"  source      verified (sha256 {summary['source']['sha256']})",
    ]
    varied = ", ".join(rebuild["variations"]) or "nothing"
    if rebuild["reproducible"]:
        lines.append(f"  rebuild     reproducible: identical in every file with {varied} varied")
    elif rebuild["explained"]:
        lines.append(f"  rebuild     {rebuild['differences']} path(s) differ, all as the varied {varied} explains")
    else:
        lines.append(f"  rebuild     NOT reproducible: {rebuild['differences']} path(s) differ ({varied} varied)")
    lines.append(f"  manifest    sha256 {rebuild['manifest_sha256']}")
    for peer in summary["peers"]:
        state = "identical" if peer["identical"] else f"{peer['differences']} path(s) differ"
        lines.append(f"  peer        {peer['peer']}: {state} (report {peer['report']})")
    attestation = summary["attestation"]
    if attestation["signed"]:
        lines.append(f"  attestation {attestation['path']} ({attestation['verdict']})")
        if attestation["new_key"]:
            lines.append(f"              new signing key {attestation['key']}; publish {attestation['public_key']}")
    else:
        lines.append(f"  attestation none: {attestation['why']}")
    lines.append("CHECK PASSED" if summary["ok"] else "CHECK FAILED")
    return "\n".join(lines)
