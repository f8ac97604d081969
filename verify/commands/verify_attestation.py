"""``cpython-verify verify-attestation FILE``: check an attestation's signature, predicate and subjects.

Exit codes: 0 verified, 1 the evidence says no (bad signature, subject mismatch, a provenance beside the
verdict that does not verify or contradicts it), 2 cannot judge
(unreadable input, unknown predicate version, bad arguments).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from verify.attest import VerifiedAttestation, check_subjects, verify_attestation_file
from verify.attest.verification import check_companion, check_tree, mismatches
from verify.commands.output import Report, output_options
from verify.commands.trust import build_trust, trust_options
from verify.common.errors import EXIT_FAILED, EXIT_OK
from verify.report.attest import verification_to_json


@click.command("verify-attestation")
@click.argument("attestation", type=click.Path(dir_okay=False, path_type=Path))
@trust_options
@click.option(
    "--artifact",
    "artifacts",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A local file to check against the subject of the same name (repeatable).",
)
@click.option(
    "--result",
    "result_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A rebuild result directory: check its manifest.json and root/ outputs.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the checks and the predicate as JSON (verify-attestation/v1)."
)
@output_options
def verify_attestation(
    attestation: Path,
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    artifacts: tuple[Path, ...],
    result_dir: Path | None,
    as_json: bool,
) -> None:
    """Check an attestation's signature, predicate schema, and subject digests against local files.

    Judges both files `attest` writes: given the rebuild verdict NAME.intoto.json, the SLSA provenance
    NAME.provenance.intoto.json beside it (given the provenance, the verdict beside it) must verify too
    and agree with it; one that is there but garbage, unverifiable or contradicting fails (exit 1).

    \b
    Examples:
      cpython-verify verify-attestation 3.13.5.intoto.json --public-key rebuilder.pem.pub \\
          --result rebuild-3.13.5-default
      cpython-verify verify-attestation 3.13.5.sigstore.json --identity https://github.com/ORG/REPO/... \\
          --issuer https://token.actions.githubusercontent.com --artifact Python-3.13.5.tar.xz --json
    """
    report = Report.current()
    trust = build_trust(keys, identities, issuers)
    verified = verify_attestation_file(attestation, trust)
    companion = check_companion(attestation, verified, trust)
    checks = check_subjects(verified, artifacts=artifacts, result_dir=result_dir)
    tree = check_tree(verified, result_dir) if result_dir is not None else None
    failed = mismatches(checks)
    differing = tree.failures() if tree is not None else []
    if as_json:
        report.echo(json.dumps(verification_to_json(verified, checks, tree, companion), indent=2, sort_keys=True))
    else:
        report.echo(f"signature: verified, signed by {verified.signer}")
        what = verified.predicate.verdict if isinstance(verified, VerifiedAttestation) else "SLSA provenance"
        report.echo(
            f"predicate: valid; CPython {verified.version} profile {verified.profile}: "
            f"{what}; rebuilt by {verified.builder_id}"
        )
        for check in checks:
            state = "ok      " if check.ok else "MISMATCH" if check.actual is not None else "MISSING "
            role = ", the attested source tarball: an input" if check.is_input else ""
            report.echo(f"  {state} {check.name} ({check.path}{role})")
        if not checks:
            report.echo("subjects: not checked against local files (give --artifact or --result)")
        if tree is not None:
            report.echo(f"tree: {tree.summary()}")
        report.echo(companion.summary())
    for problem in companion.problems:
        click.echo(f"cpython-verify: the {companion.what} beside it, {companion.path}: {problem}", err=True)
    for line in failed:
        click.echo(f"cpython-verify: subject digest mismatch: {line}", err=True)
    for line in differing:
        click.echo(f"cpython-verify: not as attested: {line}", err=True)
    report.close()
    sys.exit(EXIT_FAILED if failed or differing or not companion.ok else EXIT_OK)
