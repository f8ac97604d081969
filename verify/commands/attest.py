"""``cpython-verify attest RESULT_DIR``: sign the in-toto attestations of a rebuild result (the rebuild
verdict, and the SLSA provenance beside it).

Exit codes: 0 signed, 2 cannot sign (unreadable input, no OIDC credential, bad arguments).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import click

from verify.attest import RebuildInputs, SigstoreSigning
from verify.attest.inputs import RunIdentity
from verify.attest.signing import OfflineKeySigner, check_signing_key, ensure_signing_key, sign_result
from verify.commands.options import signing_options
from verify.commands.output import Report, output_options
from verify.report.attest import attest_text, attest_to_json
from verify.result import ResultDir
from verify.result.integrity import read_finished

_FILE = click.Path(dir_okay=False, path_type=Path)


def default_rebuilder_id() -> str:
    """Who is rebuilding: the GitHub Actions run URL in CI, else this host's name."""
    # In GitHub Actions the run URL names the rebuilder precisely; elsewhere the host name is a start.
    server, repository, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run:
        return f"{server}/{repository}/actions/runs/{run}"
    return socket.gethostname()


@click.command("attest")
@click.argument("result_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--manifest", type=_FILE, help="manifest.json (default: in RESULT_DIR).")
@click.option("--source-verdict", type=_FILE, help="source-verdict.json (default: in RESULT_DIR).")
@click.option("--rebuild", "rebuild_record", type=_FILE, help="rebuild.json (default: in RESULT_DIR).")
@signing_options
@click.option(
    "--rebuilder-id",
    help="Who rebuilt: a URI, or a name made into urn:cpython-verify:rebuilder:NAME "
    "(default: the GitHub Actions run URL, else the host name).",
)
@click.option(
    "--job",
    help="The planned job this rebuild ran as (the `plan` job id): signed as rebuilder.job with the machine, "
    "so two jobs of one signer are told apart as two runs on two machines (docs/attestation.md).",
)
@click.option(
    "--machine",
    help="The machine the job ran on, signed as rebuilder.machine (default: this host's name; only with --job).",
)
@click.option(
    "--out",
    "out_path",
    type=_FILE,
    help="Where to write the verdict; the SLSA provenance goes beside it (NAME.provenance.intoto.json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (docs/attestation.md).")
@output_options
def attest(
    result_dir: Path | None,
    manifest: Path | None,
    source_verdict: Path | None,
    rebuild_record: Path | None,
    signing_key: Path | None,
    create_key: bool,
    sigstore: bool,
    identity_token: str | None,
    rebuilder_id: str | None,
    job: str | None,
    machine: str | None,
    out_path: Path | None,
    as_json: bool,
) -> None:
    """Sign in-toto attestations of a rebuild result (RESULT_DIR from `cpython-verify rebuild --out`).

    Two Statements with the same subjects (the install tree, bin/python3.X and libpython): a SLSA
    Provenance v1 (the verified source tarball, recipe, environment lock and rootfs as resolved
    dependencies) and the rebuild verdict (the result, per-file differences and their explanations).
    -o FILE writes this summary to FILE; --out says where the verdict itself goes.

    \b
    Examples:
      cpython-verify attest rebuild-3.13.5-default --signing-key ~/.config/cpython-verify/rebuilder.pem
      cpython-verify attest result/3.13.5 --sigstore --out publish/3.13.5.sigstore.json
    """
    if (signing_key is None) == (not sigstore):
        raise click.UsageError("choose exactly one of --signing-key KEY (offline) or --sigstore (keyless)")
    if create_key and signing_key is None:
        raise click.UsageError("--create-key needs --signing-key KEY")
    if machine is not None and job is None:
        raise click.UsageError("--machine needs --job (a machine is recorded for a planned job's run)")
    if (job is not None and not job.strip()) or (machine is not None and not machine.strip()):
        raise click.UsageError("--job and --machine must not be empty")
    run = RunIdentity(job, machine or socket.gethostname()) if job is not None else None
    # The directory is checked (finished, intact) before anything else; what the check read is what is signed.
    finished = read_finished(result_dir) if result_dir is not None else None
    if finished is None and (manifest is None or source_verdict is None or rebuild_record is None):
        raise click.UsageError("give RESULT_DIR, or all of --manifest, --source-verdict and --rebuild")
    signer: OfflineKeySigner | SigstoreSigning = (
        OfflineKeySigner.from_environment(signing_key)
        if signing_key is not None
        else SigstoreSigning(token=identity_token)
    )
    new_public_key = None
    if isinstance(signer, OfflineKeySigner):
        check_signing_key(signer.key_path, signer.passphrase, create=create_key)
        new_public_key = ensure_signing_key(signer.key_path, create=create_key)
    default_name = ResultDir.SIGSTORE_ATTESTATION if signer.sigstore else ResultDir.OFFLINE_ATTESTATION
    target = out_path or (result_dir / default_name if result_dir is not None else Path(default_name))
    report = Report.current()
    inputs = RebuildInputs.given(finished, manifest=manifest, source_verdict=source_verdict, rebuild=rebuild_record)
    signed = sign_result(inputs, signer, rebuilder_id=rebuilder_id or default_rebuilder_id(), out=target, run=run)
    with report:
        if as_json:
            report.echo(json.dumps(attest_to_json(signed, new_public_key), indent=2, sort_keys=True))
        else:
            for line in attest_text(signed, new_public_key):
                report.echo(line)
