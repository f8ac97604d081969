"""``attest``, ``verify-attestation``, ``peers``, ``releases``, ``plan`` and ``merge``.

Exit codes: 0 signed / verified / threshold met, 1 the evidence says no (bad signature, subject
mismatch, peers disagree below the threshold), 2 cannot judge (unreadable input, unknown predicate
version, no OIDC credential, bad arguments).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from verify.attest import (
    AttestationError,
    RebuildInputs,
    SigstoreSigning,
    TrustedIdentities,
    TrustedKeys,
    TrustPolicy,
    build_content,
    build_statement,
    check_subjects,
    decide,
    load_claims,
    load_private_key,
    load_public_key,
    our_claim,
    sign_offline,
    verify_attestation_file,
)
from verify.attest.inputs import describe_subjects
from verify.attest.peers import MAX_LISTED_FILES, PeersVerdict, Rejected, attestations_in
from verify.attest.verification import check_tree, mismatches
from verify.errors import EXIT_FAILED, EXIT_OK, VerifyError
from verify.fsutil import write_atomic

F = TypeVar("F", bound=Callable[..., Any])
PASSPHRASE_VARIABLE = "CPYTHON_VERIFY_KEY_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
_FILE = click.Path(dir_okay=False, path_type=Path)


def default_rebuilder_id() -> str:
    """Who is rebuilding: the GitHub Actions run URL in CI, else this host's name."""
    # In GitHub Actions the run URL names the rebuilder precisely; elsewhere the host name is a start.
    server, repository, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run:
        return f"{server}/{repository}/actions/runs/{run}"
    return socket.gethostname()


# --------------------------------------------------------------------------- attest


@click.command("attest")
@click.argument("result_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--manifest", type=_FILE, help="manifest.json (default: in RESULT_DIR).")
@click.option("--source-verdict", type=_FILE, help="source-verdict.json (default: in RESULT_DIR).")
@click.option("--rebuild", "rebuild_record", type=_FILE, help="rebuild.json (default: in RESULT_DIR).")
@click.option("--key", "key_path", type=_FILE, help="Sign offline with this PEM private key (Ed25519 or P-256).")
@click.option("--sigstore", is_flag=True, help="Sign keyless with Sigstore (the CI's ambient OIDC identity).")
@click.option("--identity-token", envvar="SIGSTORE_ID_TOKEN", help="OIDC token for --sigstore (default: ambient).")
@click.option("--rebuilder-id", help="Who rebuilt (default: the GitHub Actions run URL, else the host name).")
@click.option("--out", "out_path", type=_FILE, help="Where to write the attestation.")
def attest(
    result_dir: Path | None,
    manifest: Path | None,
    source_verdict: Path | None,
    rebuild_record: Path | None,
    key_path: Path | None,
    sigstore: bool,
    identity_token: str | None,
    rebuilder_id: str | None,
    out_path: Path | None,
) -> None:
    """Sign an in-toto attestation of a rebuild result (RESULT_DIR from `cpython-verify rebuild --out`).

    Subjects: the source tarball, manifest.json, bin/python3.X and libpython. Predicate: the recipe,
    the source verdict, the environment, runner, settings and variations, and the result.
    """
    if (key_path is None) == (not sigstore):
        raise click.UsageError("choose exactly one of --key KEY (offline) or --sigstore (keyless)")
    defaults = RebuildInputs.from_result_dir(result_dir) if result_dir is not None else None
    manifest = manifest or (defaults.manifest if defaults else None)
    source_verdict = source_verdict or (defaults.source_verdict if defaults else None)
    rebuild_record = rebuild_record or (defaults.rebuild if defaults else None)
    if manifest is None or source_verdict is None or rebuild_record is None:
        raise click.UsageError("give RESULT_DIR, or all of --manifest, --source-verdict and --rebuild")
    inputs = RebuildInputs(manifest=manifest, source_verdict=source_verdict, rebuild=rebuild_record)
    content = build_content(inputs, rebuilder_id=rebuilder_id or default_rebuilder_id())
    statement = build_statement(content)
    if key_path is not None:
        passphrase = os.environ.get(PASSPHRASE_VARIABLE)
        envelope = sign_offline(statement, load_private_key(key_path, passphrase.encode() if passphrase else None))
        suffix = "attestation.intoto.json"
    else:
        envelope = SigstoreSigning(token=identity_token).sign(statement)
        suffix = "attestation.sigstore.json"
    target = out_path or (result_dir / suffix if result_dir is not None else Path(suffix))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, envelope)
    click.echo(f"attestation: {target}")
    click.echo(f"predicate: {content.predicate.verdict} (CPython {content.predicate.version}, "
               f"profile {content.predicate.recipe.profile})")
    for line in describe_subjects(content.subjects):
        click.echo(f"  subject {line}")


# --------------------------------------------------------------------------- trust options


def trust_options(function: F) -> F:
    """--key (repeatable) for offline keys, or --identity/--issuer pairs for Sigstore."""
    function = click.option(
        "--issuer", "issuers", multiple=True, help="OIDC issuer for the --identity at the same position."
    )(function)
    function = click.option(
        "--identity", "identities", multiple=True, help="Trusted Sigstore identity (repeatable; pair with --issuer)."
    )(function)
    function = click.option(
        "--key", "keys", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
        help="Trusted PEM public key (repeatable).",
    )(function)
    return function


def build_trust(keys: Sequence[Path], identities: Sequence[str], issuers: Sequence[str]) -> TrustPolicy:
    """The trust policy the options describe; exactly one kind."""
    if keys and identities:
        raise click.UsageError("trust either --key or --identity/--issuer, not both")
    if keys:
        return TrustedKeys(tuple(load_public_key(path) for path in keys))
    if not identities:
        raise click.UsageError("say whom to trust: --key PUB, or --identity ID --issuer URL")
    if len(identities) != len(issuers):
        raise click.UsageError("give one --issuer for each --identity")
    return TrustedIdentities(tuple(zip(identities, issuers, strict=True)))


# --------------------------------------------------------------------------- verify-attestation


@click.command("verify-attestation")
@click.argument("attestation", type=click.Path(dir_okay=False, path_type=Path))
@trust_options
@click.option("--artifact", "artifacts", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A local file to check against the subject of the same name (repeatable).")
@click.option("--result", "result_dir", type=click.Path(file_okay=False, path_type=Path),
              help="A rebuild result directory: check its manifest.json and root/ outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified predicate as JSON.")
def verify_attestation(
    attestation: Path,
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    artifacts: tuple[Path, ...],
    result_dir: Path | None,
    as_json: bool,
) -> None:
    """Check an attestation's signature, predicate schema, and subject digests against local files."""
    trust = build_trust(keys, identities, issuers)
    verified = verify_attestation_file(attestation, trust)
    checks = check_subjects(verified, artifacts=artifacts, result_dir=result_dir)
    tree = check_tree(verified, result_dir) if result_dir is not None else None
    failed = mismatches(checks)
    differing = tree.failures() if tree is not None else []
    if as_json:
        from verify.attest.predicate import predicate_to_json

        click.echo(json.dumps({
            "signer": verified.signer,
            "subjects": [{"name": s.name, "sha256": s.sha256} for s in verified.subjects],
            "checked": [{"name": c.name, "path": str(c.path), "ok": c.ok} for c in checks],
            "tree": None if tree is None else {
                "root": str(tree.root), "ok": tree.ok, "attested_paths": tree.attested_paths,
                "problems": list(tree.problems),
                "findings": [{"path": f.path, "changes": list(f.changes), "detail": f.detail} for f in tree.findings],
            },
            "predicate": predicate_to_json(verified.predicate),
        }, indent=2, sort_keys=True))
    else:
        predicate = verified.predicate
        click.echo(f"signature: verified, signed by {verified.signer}")
        click.echo(f"predicate: valid; CPython {predicate.version} profile {predicate.recipe.profile}: "
                   f"{predicate.verdict}; rebuilt by {predicate.rebuilder.id}")
        for check in checks:
            state = "ok      " if check.ok else "MISMATCH" if check.actual is not None else "MISSING "
            click.echo(f"  {state} {check.name} ({check.path})")
        if not checks:
            click.echo("subjects: not checked against local files (give --artifact or --result)")
        if tree is not None:
            click.echo(f"tree: {tree.summary()}")
    for line in failed:
        click.echo(f"cpython-verify: subject digest mismatch: {line}", err=True)
    for line in differing:
        click.echo(f"cpython-verify: not as attested: {line}", err=True)
    sys.exit(EXIT_FAILED if failed or differing else EXIT_OK)


# --------------------------------------------------------------------------- peers


def _download_attestation(url: str, into: Path) -> Path:
    """Fetch an attestation URL and the manifest published beside it into ``into``."""
    from verify.attest.verification import MAX_ATTESTATION_BYTES
    from verify.sources.http import HttpClient, HttpSettings

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
@click.option("--dir", "directories", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A directory of *.intoto.json / *.sigstore.json attestations (repeatable).")
@click.option("--ours", type=click.Path(file_okay=False, path_type=Path),
              help="Our rebuild result directory: the reference the peers are compared with.")
@click.option("--profile", default="default", show_default=True, help="The build profile compared.")
@click.option("--threshold", type=int, default=2, show_default=True,
              help="k: independent rebuilders (ours included) that must produce the reference tree.")
@trust_options
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
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
    """Compare the install trees independent rebuilders attested for VERSION: a k-of-n verdict."""
    from verify.releases import Version

    version = str(Version.parse(version))
    trust = build_trust(keys, identities, issuers)
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
        if not paths and not rejected:
            raise click.UsageError("give peer attestations with --attestation or --dir")
        claims, refused = load_claims(paths, trust)
    reference = our_claim(ours) if ours is not None else None
    verdict = decide(claims, version=version, profile=profile, threshold=threshold, ours=reference,
                     rejected=[*rejected, *refused])
    if as_json:
        click.echo(json.dumps(_verdict_json(verdict), indent=2, sort_keys=True))
    else:
        _print_verdict(verdict)
    sys.exit(EXIT_OK if verdict.met else EXIT_FAILED)


def _verdict_json(verdict: PeersVerdict) -> dict[str, Any]:
    return {
        "version": verdict.version,
        "profile": verdict.profile,
        "threshold": verdict.threshold,
        "met": verdict.met,
        "independent": verdict.independent,
        "reference": verdict.reference,
        "reference_tree_sha256": verdict.reference_sha256,
        "agreeing": list(verdict.agreeing),
        "dissenting": [
            {
                "signer": d.signer,
                "origin": d.origin,
                "tree_sha256": d.tree_sha256,
                "files": None
                if d.differences is None
                else [{"path": f.path, "change": f.change} for f in d.differences],
                "note": d.note,
            }
            for d in verdict.dissenting
        ],
        "rejected": [{"origin": r.origin, "reason": r.reason} for r in verdict.rejected],
        "notes": list(verdict.notes),
        "summary": verdict.summary(),
    }


def _print_verdict(verdict: PeersVerdict) -> None:
    click.echo(verdict.summary())
    for signer in verdict.agreeing:
        click.echo(f"  agrees:    {signer}")
    for dissent in verdict.dissenting:
        click.echo(f"  DISAGREES: {dissent.signer} (tree {dissent.tree_sha256}, {dissent.origin})")
        if dissent.differences is None:
            click.echo(f"             files unknown: {dissent.note or 'no manifest'}")
            continue
        click.echo(f"             {len(dissent.differences)} path(s) differ")
        for difference in dissent.differences[:MAX_LISTED_FILES]:
            click.echo(f"             {difference.change:18} {difference.path}")
        if len(dissent.differences) > MAX_LISTED_FILES:
            click.echo(f"             ... and {len(dissent.differences) - MAX_LISTED_FILES} more")
    for rejected in verdict.rejected:
        click.echo(f"  rejected:  {rejected.origin}: {rejected.reason}")
    for note in verdict.notes:
        click.echo(f"  note: {note}")


# --------------------------------------------------------------------------- releases and plan


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@click.command("releases")
@click.option("--since", callback=_parse_date, help="Only releases on or after this date (YYYY-MM-DD).")
@click.option("--url", help="Release metadata URL or file (default: $CPYTHON_VERIFY_RELEASES_URL or python.org's API).")
@click.option("--prereleases", is_flag=True, help="Include alphas, betas and release candidates.")
@click.option("--series", "series", multiple=True, help="Only these series, e.g. 3.13 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the input `plan --releases` reads).")
def releases(since: date | None, url: str | None, prereleases: bool, series: tuple[str, ...], as_json: bool) -> None:
    """List CPython releases from python.org's release metadata (or a mirror), newest first."""
    from verify.releases_feed import default_feed_url, fetch_feed, parse_feed, select

    found, notes = parse_feed(fetch_feed(url or default_feed_url()))
    chosen = select(found, since=since, include_prereleases=prereleases, series=series)
    if as_json:
        click.echo(json.dumps({"releases": [release.to_json() for release in chosen]}, indent=2, sort_keys=True))
    else:
        for release in chosen:
            when = release.released_at.date().isoformat() if release.released_at else "(no date)"
            click.echo(f"{release.version!s:12} {when}{'  pre-release' if release.pre_release else ''}")
    for note in notes:
        click.echo(f"note: {note}", err=True)


def _plan_versions(versions: Sequence[str], releases_file: Path | None) -> list[str]:
    chosen = list(versions)
    if releases_file is not None:
        try:
            data = json.loads(releases_file.read_bytes())
        except (OSError, ValueError, RecursionError) as error:
            raise AttestationError(f"cannot read releases file {releases_file}: {error}") from None
        items = data.get("releases") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("version"), str)
                                                  for i in items):
            raise AttestationError(f"{releases_file} is not the output of `cpython-verify releases --json`")
        chosen += [item["version"] for item in items]
    return chosen


@click.command("plan")
@click.option("--version", "versions", multiple=True, help="A release to plan (repeatable).")
@click.option("--releases", "releases_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Plan every release in this `releases --json` output.")
@click.option("--profile", "profiles", multiple=True, help="Recipe build profiles (default: default).")
@click.option("--runner", "runners", multiple=True, help="Runners (default: bwrap).")
@click.option("--allow-empty", is_flag=True, help="Print an empty matrix instead of failing (a night with no release).")
def plan(versions: tuple[str, ...], releases_file: Path | None, profiles: tuple[str, ...],
         runners: tuple[str, ...], allow_empty: bool) -> None:
    """Print a CI job matrix (versions x profiles x runners) as JSON: {"include": [...]}.

    Releases whose series has no recipe, or whose recipe lacks a profile, are left out with a note on
    stderr, so the matrix holds only jobs that can run.
    """
    from verify.errors import RecipeError, VersionError
    from verify.recipes import load_recipe
    from verify.releases import Version

    jobs: list[dict[str, str]] = []
    seen: set[str] = set()
    for text in _plan_versions(versions, releases_file):
        try:
            version = Version.parse(text)
            recipe = load_recipe(version.series)
        except (VersionError, RecipeError) as error:
            click.echo(f"plan: skipping {text}: {error.message}", err=True)
            continue
        if str(version) in seen:
            continue
        seen.add(str(version))
        for profile in profiles or ("default",):
            if recipe.build is None or profile not in recipe.build.profiles:
                click.echo(f"plan: skipping {version} {profile}: the {version.series} recipe has no such profile",
                           err=True)
                continue
            for runner in runners or ("bwrap",):
                jobs.append({"version": str(version), "series": version.series, "profile": profile,
                             "runner": runner, "id": f"{version}-{profile}-{runner}"})
    if not jobs and not allow_empty:
        raise AttestationError("the plan is empty: no requested release has a recipe and profile")
    click.echo(json.dumps({"include": jobs}, sort_keys=True))


# --------------------------------------------------------------------------- merge


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@trust_options
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The `plan` JSON: every planned job gets a row, with 'no result' where none arrived.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Site directory: index.html, status.json and the attestations.")
@click.option("--title", default="CPython reproducible builds", show_default=True)
def merge(
    sources: tuple[Path, ...],
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    plan_file: Path | None,
    out_dir: Path,
    title: str,
) -> None:
    """Verify the attestations from many CI jobs and merge them into one HTML status page."""
    from verify.attest.verification import verify_attestation_file as verify_file
    from verify.status_page import StatusRow, render, row_from_predicate

    trust = build_trust(keys, identities, issuers)
    paths: list[Path] = []
    for source in sources:
        paths.extend(attestations_in(source) if source.is_dir() else [source])
    rows: list[StatusRow] = []
    notes: list[str] = []
    (out_dir / "attestations").mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(paths):
        try:
            verified = verify_file(path, trust)
        except VerifyError as error:
            notes.append(f"{path.name}: rejected: {error.message}")
            continue
        predicate = verified.predicate
        name = f"{predicate.version}-{predicate.recipe.profile}-{predicate.build.runner}-{index}-{path.name}"
        shutil.copyfile(path, out_dir / "attestations" / name)
        rows.append(row_from_predicate(predicate, signer=verified.signer, attestation=f"attestations/{name}"))
    if plan_file is not None:
        rows += _missing_rows(plan_file, rows)
    page = render(rows, title=title, generated_at=datetime.now(UTC).replace(microsecond=0), notes=notes)
    write_atomic(out_dir / "index.html", page.encode())
    status = {"title": title, "rows": [_row_json(row) for row in rows], "notes": notes}
    write_atomic(out_dir / "status.json", (json.dumps(status, indent=2, sort_keys=True) + "\n").encode())
    click.echo(f"status page: {out_dir / 'index.html'} ({len(rows)} row(s), {len(notes)} rejected)")
    sys.exit(EXIT_FAILED if notes else EXIT_OK)


def _missing_rows(plan_file: Path, rows: Sequence[Any]) -> list[Any]:
    from verify.status_page import StatusRow

    try:
        data = json.loads(plan_file.read_bytes())
    except (OSError, ValueError, RecursionError) as error:
        raise AttestationError(f"cannot read plan {plan_file}: {error}") from None
    jobs = data.get("include") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        raise AttestationError(f"{plan_file} is not the output of `cpython-verify plan`")
    present = {(row.version, row.profile, row.runner) for row in rows}
    missing = []
    for job in jobs:
        if not isinstance(job, dict) or not all(isinstance(job.get(k), str) for k in ("version", "profile", "runner")):
            raise AttestationError(f"{plan_file}: a job lacks version, profile or runner")
        if (job["version"], job["profile"], job["runner"]) not in present:
            missing.append(StatusRow(job["version"], job["profile"], job["runner"], "missing",
                                     detail="the job produced no verified attestation"))
    return missing


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "version": row.version, "profile": row.profile, "runner": row.runner, "verdict": row.verdict,
        "source_verified": row.source_verified, "signer": row.signer, "attested_at": row.attested_at,
        "tree_sha256": row.tree_sha256, "attestation": row.attestation,
        "differences": [{"path": p, "kind": k, "change": c, "explained": e} for p, k, c, e in row.differences],
    }
