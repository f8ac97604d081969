"""``cpython-verify check VERSION``: the whole chain for one release.

verify the source -> rebuild twice in the pinned sandbox (the second time with variations) -> compare
with every peer or published build given -> attest (signed, when a key or Sigstore is chosen). One
verdict, one exit code: 0 when the source verified, the two rebuilds agree (identically, or only in
differences the variations are documented to cause), and every peer is identical; 1 otherwise; 2 on
error. The order lives in :mod:`verify.chain`; this module parses options and renders the outcome.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from verify.commands.output import Report
from verify.commands.rebuild import PhaseObserver, rebuild_request
from verify.commands.rebuild import rebuild as rebuild_command
from verify.common.errors import EXIT_FAILED, EXIT_OK

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
    "does not exist (its public key is written beside it as KEY.pub). An encrypted key's passphrase is read "
    "from $CPYTHON_VERIFY_KEY_PASSPHRASE.",
)
@click.option("--sigstore", is_flag=True, help="Sign keyless with Sigstore (the CI's ambient OIDC identity).")
@click.option("--identity-token", envvar="SIGSTORE_ID_TOKEN", help="OIDC token for --sigstore (default: ambient).")
@click.option("--rebuilder-id", help="Who rebuilt (default: the GitHub Actions run URL, else the host name).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (also written to RESULT/check.json).")
def check(
    version: str,
    peers: tuple[Path, ...],
    key_path: Path | None,
    sigstore: bool,
    identity_token: str | None,
    rebuilder_id: str | None,
    as_json: bool,
    **params: Any,
) -> None:
    """Verify, rebuild twice, compare with peers and attest CPython VERSION: the whole chain.

    Takes every option of `rebuild` (source locations, --profile, --runner, --vary, --out, -o, ...);
    --vary defaults to the variations two rebuilders' machines differ in.

    \b
    Examples:
      cpython-verify check 3.13.5 --key ~/.config/cpython-verify/rebuilder.pem
      cpython-verify check 3.13.5 --from ~/distfiles --offline --peer published/manifest.json --json
      cpython-verify check 3.13.5 --sigstore --quiet; echo "exit $?"
    """
    from verify.attest.signing import OfflineKeySigner, SigstoreSigning
    from verify.chain import CHECK_VARIATIONS, CheckRequest, run_check
    from verify.commands.attest import default_rebuilder_id
    from verify.report.check import check_text, check_to_json

    if key_path is not None and sigstore:
        raise click.UsageError("choose one of --key KEY (offline) or --sigstore (keyless)")
    params.update(version=version, twice=True, bisect=False)
    request = rebuild_request(params)
    if not params.get("vary"):
        request = replace(request, variations=CHECK_VARIATIONS)
    signer: OfflineKeySigner | SigstoreSigning | None = None
    if key_path is not None:
        signer = OfflineKeySigner.from_environment(key_path)
        if key_path.exists():
            from verify.attest.signing import load_private_key

            # A key that cannot sign must be refused now, not after two builds.
            load_private_key(key_path, signer.passphrase)
    elif sigstore:
        signer = SigstoreSigning(token=identity_token)
    check_request = CheckRequest(
        rebuild=request,
        peers=peers,
        signer=signer,
        rebuilder_id=rebuilder_id or default_rebuilder_id(),
        create_key=True,
    )
    with Report.current() as report:
        outcome = run_check(check_request, PhaseObserver())
        if as_json:
            report.echo(json.dumps(check_to_json(outcome), indent=2, sort_keys=True))
        else:
            report.echo(check_text(outcome))
        raise click.exceptions.Exit(EXIT_OK if outcome.ok else EXIT_FAILED)


# check takes every option of rebuild but the ones it decides itself.
check.params.extend(param for param in rebuild_command.params if param.name not in _NOT_FOR_CHECK)
