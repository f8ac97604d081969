"""``cpython-verify check VERSION``: the whole chain for one release.

verify the source -> rebuild twice in the pinned sandbox (the second time with variations) -> compare
with every peer or published build given -> attest (signed, when a key or Sigstore is chosen). One
verdict, one exit code: 0 when the source verified, the two rebuilds agree (identically, or only in
differences the variations are documented to cause), and every peer is identical; 1 otherwise; 2 on
error. The order lives in :mod:`verify.chain`; this module parses options and renders the outcome.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from verify.commands.aliases import used_old_spelling
from verify.commands.options import rebuild_options, signing_options
from verify.commands.output import Report, output_options
from verify.commands.rebuild import PhaseObserver
from verify.common.errors import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from verify.chain import RebuildRequest


@click.command("check")
@click.option(
    "--peer",
    "peers",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A peer's or published build to compare with: manifest, install tree or rebuild result. Repeatable.",
)
@signing_options
@click.option("--rebuilder-id", help="Who rebuilt (default: the GitHub Actions run URL, else the host name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (also written to RESULT/check.json).")
@rebuild_options(for_check=True)
@output_options
def check(
    request: RebuildRequest,
    peers: tuple[Path, ...],
    signing_key: Path | None,
    create_key: bool,
    sigstore: bool,
    identity_token: str | None,
    rebuilder_id: str | None,
    as_json: bool,
) -> None:
    """Verify, rebuild twice, compare with peers and attest CPython VERSION: the whole chain.

    Takes every option of `rebuild` (source locations, --profile, --runner, --vary, --out, -o, ...);
    --vary defaults to the variations two rebuilders' machines differ in.

    \b
    Examples:
      cpython-verify check 3.13.5 --signing-key ~/.config/cpython-verify/rebuilder.pem --create-key
      cpython-verify check 3.13.5 --from ~/distfiles --offline --peer published/manifest.json --json
      cpython-verify check 3.13.5 --sigstore --quiet; echo "exit $?"
    """
    from verify.attest.signing import OfflineKeySigner, SigstoreSigning, check_signing_key
    from verify.chain import CheckRequest, run_check
    from verify.commands.attest import default_rebuilder_id
    from verify.report.check import check_text, check_to_json

    if signing_key is not None and sigstore:
        raise click.UsageError("choose one of --signing-key KEY (offline) or --sigstore (keyless)")
    if create_key and signing_key is None:
        raise click.UsageError("--create-key needs --signing-key KEY")
    # The old `check --key` created a missing key; its deprecated spelling keeps doing so for one release.
    create_key = create_key or used_old_spelling("signing_key")
    signer: OfflineKeySigner | SigstoreSigning | None = None
    if signing_key is not None:
        signer = OfflineKeySigner.from_environment(signing_key)
        # A key that cannot sign, or is missing without --create-key, is refused now, not after two builds.
        check_signing_key(signing_key, signer.passphrase, create=create_key)
    elif sigstore:
        signer = SigstoreSigning(token=identity_token)
    check_request = CheckRequest(
        rebuild=request,
        peers=peers,
        signer=signer,
        rebuilder_id=rebuilder_id or default_rebuilder_id(),
        create_key=create_key,
    )
    with Report.current() as report:
        outcome = run_check(check_request, PhaseObserver())
        if as_json:
            report.echo(json.dumps(check_to_json(outcome), indent=2, sort_keys=True))
        else:
            report.echo(check_text(outcome))
        raise click.exceptions.Exit(EXIT_OK if outcome.ok else EXIT_FAILED)
