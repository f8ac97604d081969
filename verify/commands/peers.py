"""``cpython-verify peers VERSION``: a k-of-n verdict over the install trees independent rebuilders attested.

Exit codes: 0 threshold met, 1 peers disagree below the threshold (or --dir held no attestation), 2 cannot
judge (bad arguments).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import click

from verify.attest import AttestationError, decide, load_claims, our_claim
from verify.attest.peers import MAX_LISTED_FILES, PeersVerdict, Rejected, attestations_in, peers_to_json
from verify.commands.output import Report, output_options
from verify.commands.trust import build_trust, trust_options
from verify.common.errors import EXIT_FAILED, EXIT_OK, NothingToDo, VerifyError


def _download_attestation(url: str, into: Path) -> Path:
    """Fetch an attestation URL and the manifest published beside it into ``into``."""
    from verify.attest.verification import MAX_ATTESTATION_BYTES
    from verify.source.locations.http import HttpClient, HttpSettings

    name = urlsplit(url).path.rsplit("/", 1)[-1] or "attestation.intoto.json"
    client = HttpClient.quiet(HttpSettings(attempts=2))
    try:
        body = client.get_bytes(url, max_bytes=MAX_ATTESTATION_BYTES)
        if body is None:
            raise AttestationError(f"attestation not found: {url}")
        folder = Path(tempfile.mkdtemp(dir=into))
        target = folder / name
        target.write_bytes(body)
        for suffix in (".intoto.json", ".sigstore.json"):
            if name.endswith(suffix):
                manifest_name = name[: -len(suffix)] + ".manifest.json"
                manifest = client.get_bytes(url[: -len(name)] + manifest_name, max_bytes=256 << 20)
                if manifest is not None:
                    (folder / manifest_name).write_bytes(manifest)
        return target
    finally:
        client.close()


@click.command("peers")
@click.argument("version")
@click.option("--attestation", "attestations", multiple=True, help="A peer attestation file or http(s) URL.")
@click.option(
    "--dir",
    "directories",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A directory of *.intoto.json / *.sigstore.json attestations (repeatable).",
)
@click.option(
    "--ours",
    type=click.Path(file_okay=False, path_type=Path),
    help="Our rebuild result directory: the reference the peers are compared with.",
)
@click.option("--profile", default="default", show_default=True, help="The build profile compared.")
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="k: independent rebuilders (ours included) that must produce the reference tree.",
)
@trust_options
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON (cpython-verify/peers/v1).")
@output_options
def peers(
    version: str,
    attestations: tuple[str, ...],
    directories: tuple[Path, ...],
    ours: Path | None,
    profile: str,
    threshold: int,
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    as_json: bool,
) -> None:
    """Compare the install trees independent rebuilders attested for VERSION: a k-of-n verdict.

    \b
    Examples:
      cpython-verify peers 3.13.5 --dir attestations/ --public-key alice.pub --public-key bob.pub \\
          --ours rebuild-3.13.5-default
      cpython-verify peers 3.13.5 --attestation https://example.org/3.13.5.sigstore.json \\
          --identity https://github.com/ORG/REPO/... --issuer https://token.actions.githubusercontent.com --json
    """
    from verify.source import names
    from verify.source.releases import Version

    report = Report.current()
    version = str(Version.parse(version))
    if (problem := names.profile_problem(profile)) is not None:
        raise click.BadParameter(problem, param_hint="--profile")
    trust = build_trust(keys, identities, issuers)
    # --ours is judged before any peer attestation is downloaded.
    reference = our_claim(ours) if ours is not None else None
    with tempfile.TemporaryDirectory(prefix="cpython-verify-peers-") as scratch:
        paths: list[Path] = []
        rejected: list[Rejected] = []
        for item in attestations:
            if item.startswith(("http://", "https://")):
                try:
                    paths.append(_download_attestation(item, Path(scratch)))
                except VerifyError as error:
                    rejected.append(Rejected(item, error.message))
            else:
                paths.append(Path(item))
        for directory in directories:
            paths.extend(attestations_in(directory))
        if not attestations and not directories:
            raise click.UsageError("give peer attestations with --attestation or --dir")
        if not paths and not rejected:
            raise NothingToDo(
                f"no attestation (*.intoto.json or *.sigstore.json verdict) in "
                f"{', '.join(map(str, directories))}: nothing to compare"
            )
        claims, refused = load_claims(paths, trust)
    verdict = decide(
        claims, version=version, profile=profile, threshold=threshold, ours=reference, rejected=[*rejected, *refused]
    )
    if as_json:
        report.echo(json.dumps(peers_to_json(verdict), indent=2, sort_keys=True))
    else:
        _print_verdict(verdict, report)
    report.close()
    sys.exit(EXIT_OK if verdict.met else EXIT_FAILED)


def _print_verdict(verdict: PeersVerdict, report: Report) -> None:
    report.echo(verdict.summary())
    report.echo(verdict.coverage())
    for counted in verdict.counted:
        if counted.agrees:
            report.echo(f"  agrees:    {counted.signer} (tree {counted.tree_sha256}, {', '.join(counted.origins)})")
    for dissent in verdict.dissenting:
        report.echo(
            f"  DISAGREES: {dissent.signer} (tree {dissent.tree_sha256}, reference tree "
            f"{verdict.reference_sha256 or 'none'}, {dissent.origin})"
        )
        if dissent.differences is None:
            report.echo(f"             files unknown: {dissent.note or 'no manifest'}")
            continue
        report.echo(f"             {len(dissent.differences)} path(s) differ")
        limit = len(dissent.differences) if report.verbose else MAX_LISTED_FILES
        for difference in dissent.differences[:limit]:
            report.echo(f"             {','.join(difference.changes):18} {difference.path}")
        if len(dissent.differences) > limit:
            report.echo(f"             ... and {len(dissent.differences) - limit} more (all of them with -v or --json)")
    for runs in verdict.runs:  # several rebuilds by one rebuilder: reproducible across machines, counted once
        report.echo(f"  runs:      {runs.summary()}")
        for run in runs.runs:
            job = f"job {run.job}" if run.job else "no job named"
            machine = f"machine {run.machine}" if run.machine else "no machine named"
            report.echo(f"             {job}, {machine}: tree {run.tree_sha256} ({run.origin})")
    for rejected in verdict.rejected:
        report.echo(f"  rejected:  {rejected.origin}: {rejected.reason}")
    for note in verdict.notes:
        report.echo(f"  note: {note}")
