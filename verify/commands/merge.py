"""``cpython-verify merge``: verify the attestations of many CI jobs and merge them into one status page.

Exit codes: 0 every attestation verified and every release x profile's rebuilders agree (the ``peers``
verdict met); 1 an attestation was rejected, a verdict is not met or rebuilders disagree, or there was no
attestation at all; 2 cannot judge (unreadable plan or previous site, bad arguments).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from verify.attest import AttestationError
from verify.attest.peers import attestations_in
from verify.attest.peers_document import MET
from verify.commands.output import Report, output_options
from verify.commands.trust import build_trust, trust_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED, EXIT_OK, NothingToDo, VerifyError
from verify.common.fsutil import sha256_file, write_atomic, write_json_atomic
from verify.common.limits import PUBLISH_LOCK_TIMEOUT_SECONDS
from verify.common.locking import lock_timeout, replacing
from verify.site.merge_document import MergeDocument
from verify.site.status_site import SITE_MARKER

if TYPE_CHECKING:
    from verify.site.plan import PlanJob

ATTESTATION_SUFFIX = ".intoto.json"


@click.command("merge")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@trust_options
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The `plan` JSON: every planned job gets a row, with 'no result' where none arrived.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Site directory: index.html, a page per row, status.json, the attestations and their "
    "files. An earlier site there is added to (its rows become history).",
)
@click.option(
    "--threshold",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="k: independent rebuilders that must produce the same install tree for each release x "
    "profile (the `peers` verdict the page shows).",
)
@click.option("--title", default="CPython reproducible builds", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (cpython-verify/merge/v1).")
@output_options
def merge(
    sources: tuple[Path, ...],
    keys: tuple[Path, ...],
    identities: tuple[str, ...],
    issuers: tuple[str, ...],
    plan_file: Path | None,
    out_dir: Path,
    threshold: int,
    title: str,
    as_json: bool,
) -> None:
    """Verify the attestations from many CI jobs and merge them into one HTML status page.

    For each release x profile the page shows the `peers` verdict over the verified attestations:
    how many independent rebuilders agree on the install tree, and who disagrees, in red. Exit 1
    when an attestation is rejected (each is named on stderr), when a release x profile's verdict is
    not met or its rebuilders disagree, or when there is no attestation at all.

    \b
    Examples:
      cpython-verify merge attestations/ --plan plan.json --out site --public-key rebuilder.pem.pub
      cpython-verify merge alice/ bob/ carol/ --out site --threshold 2 \\
          --public-key alice.pub --public-key bob.pub --public-key carol.pub
      cpython-verify merge attestations/ --out site --identity https://github.com/ORG/REPO/... \\
          --issuer https://token.actions.githubusercontent.com
    """
    from verify.attest.verification import VerifiedAttestation, VerifiedProvenance
    from verify.attest.verification import verify_published as verify_file
    from verify.site.plan import read_plan
    from verify.site.status_page import StatusRow, render, row_from_predicate
    from verify.site.status_site import (
        agreement,
        carry_forward,
        copy_from_previous,
        publish_side_files,
        read_site,
        site_json,
        site_links,
    )

    report = Report.current()
    trust = build_trust(keys, identities, issuers)
    # A bad plan fails before any write.
    planned = read_plan(plan_file).include if plan_file is not None else None
    paths: list[Path] = []
    for source in sources:
        paths.extend(attestations_in(source) if source.is_dir() else [source])
    if not paths:
        raise NothingToDo(
            f"no attestation to merge in {', '.join(map(str, sources))} (no *.intoto.json or *.sigstore.json verdict); "
            "the site is left as it was"
        )
    check_site_dir(out_dir)  # before waiting for the site's lock; checked again once it is held
    generated_at = datetime.now(UTC).replace(microsecond=0)
    rows: list[StatusRow] = []
    rejected: list[tuple[Path, str]] = []
    notes: list[str] = []
    verified_by_link: dict[str, VerifiedAttestation] = {}
    # The site is assembled beside --out and renamed into place (verify.common.locking.replacing): a failure half-way
    # leaves the previous site as it was, and nothing behind; two merges into one site take turns, the second
    # adding to what the first wrote; a site a killed merge left aside is put back first.
    timeout = lock_timeout(PUBLISH_LOCK_TIMEOUT_SECONDS)
    with replacing(out_dir, what=f"the status site {out_dir}", timeout=timeout, on_wait=progress.note,
                   point="merge") as staging:  # fmt: skip
        check_site_dir(out_dir)
        previous = read_site(out_dir)  # an unreadable previous site fails before any write, and is kept
        (staging / "attestations").mkdir()
        for path in paths:
            try:
                verified = verify_file(path, trust)
            except VerifyError as error:
                notes.append(f"{path.name}: rejected: {error.message}")
                rejected.append((path, error.message))
                continue
            if isinstance(verified, VerifiedProvenance):
                # The provenance is the same rebuild as the verdict signed beside it; the verdict makes the row.
                continue
            # Named by the digest of the bytes that verified: signed text (a profile or runner name) never
            # becomes a path, however it is spelled. The files published with it go under the same digest.
            digest = sha256_file(path)
            name = f"{digest}{ATTESTATION_SUFFIX}"
            shutil.copyfile(path, staging / "attestations" / name)
            link = f"attestations/{name}"
            verified_by_link[link] = verified
            artifacts, side_notes = publish_side_files(
                path, verified.predicate.result.manifest_sha256, staging / "runs" / digest, f"runs/{digest}"
            )
            notes += side_notes
            rows.append(
                row_from_predicate(verified.predicate, signer=verified.signer, attestation=link, artifacts=artifacts)
            )
        rows += _rejected_rows(rejected, planned or [])
        if planned is not None:
            rows += _missing_rows(planned, rows)
        rows, history = carry_forward(previous, rows, generated_at.isoformat())
        if previous is not None:
            copy_from_previous(out_dir, staging, site_links(rows, history))
        verdicts = agreement(rows, staging, trust, threshold=threshold, verified=verified_by_link)
        page = render(rows, title=title, generated_at=generated_at, notes=notes, agreement=verdicts)
        write_atomic(staging / "index.html", page.encode())
        _write_row_pages(staging, rows, history, title=title, generated_at=generated_at)
        _write_agreement_pages(staging, verdicts, rows, title=title, generated_at=generated_at)
        write_json_atomic(
            staging / SITE_MARKER, site_json(title, generated_at.isoformat(), rows, history, notes, verdicts)
        )
    for path, reason in rejected:
        click.echo(f"cpython-verify: rejected {path}: {reason}", err=True)
    unmet = [verdict for verdict in verdicts if verdict.state != MET]
    if as_json:
        summary = MergeDocument.of(out_dir, rows=len(rows), rejected=rejected, verdicts=verdicts)
        report.echo(json.dumps(summary.to_json(), indent=2, sort_keys=True))
    else:
        for verdict in verdicts:
            report.echo(f"{verdict.version} {verdict.profile}: {verdict.summary()}")
        report.echo(
            f"status page: {out_dir / 'index.html'} ({len(rows)} row(s), {len(rejected)} rejected; "
            f"{len(verdicts)} release x profile, {len(unmet)} not met or disagreeing)"
        )
    report.close()
    sys.exit(EXIT_FAILED if rejected or unmet else EXIT_OK)


def _write_agreement_pages(
    staging: Path, verdicts: Sequence[Any], rows: Sequence[Any], *, title: str, generated_at: datetime
) -> None:
    """One page per release x profile: the ``peers`` verdict in full, with each dissent's comparison."""
    from verify.site.status_page import agreement_path, rebuilder_names, render_agreement_page

    names = rebuilder_names(rows)
    (staging / "agreement").mkdir()
    for verdict in verdicts:
        page = render_agreement_page(verdict, title=title, generated_at=generated_at, names=names)
        write_atomic(staging / agreement_path(verdict.version, verdict.profile), page.encode())


def _write_row_pages(
    staging: Path, rows: Sequence[Any], history: Sequence[Any], *, title: str, generated_at: datetime
) -> None:
    """One page per release x profile x runner: its current rows, and its history."""
    from verify.site.status_page import page_path, render_row_page

    pages: dict[str, tuple[list[Any], list[Any]]] = {}
    for row in rows:
        pages.setdefault(page_path(row), ([], []))[0].append(row)
    for entry in history:
        pages.setdefault(entry.page, ([], []))[1].append(entry)
    (staging / "rows").mkdir()
    for path, (current, earlier) in pages.items():
        page = render_row_page(current, earlier, title=title, generated_at=generated_at)
        write_atomic(staging / path, page.encode())


def _missing_rows(planned: Sequence[PlanJob], rows: Sequence[Any]) -> list[Any]:
    from verify.site.status_page import StatusRow

    # A job is present when a row's signed job id is its id; rows that name no job (attested without
    # --job) stand for their release x profile x runner, as long as no row of it names a job.
    jobs = {row.job for row in rows if row.job}
    by_job = {(row.version, row.profile, row.runner) for row in rows if row.job}
    unnamed = {(row.version, row.profile, row.runner) for row in rows if not row.job}
    missing = []
    for job in planned:
        key = (str(job.version), job.profile, job.runner)
        if job.id in jobs or (key in unnamed and key not in by_job):
            continue
        missing.append(StatusRow(*key, "missing", detail="the job produced no verified attestation", job=job.id))
    return missing


def _rejected_rows(rejected: Sequence[tuple[Path, str]], planned: Sequence[PlanJob]) -> list[Any]:
    """A row per rejected attestation, with the reason. Nothing inside a rejected attestation is believed:
    it takes a planned job's release, profile and runner only when its file is named after the job's id
    (as the nightly workflow publishes ``ID.intoto.json``); otherwise the row names only the file."""
    from verify.site.status_page import StatusRow
    from verify.site.status_site import attestation_stem

    jobs = {job.id: (str(job.version), job.profile, job.runner) for job in planned}
    rows = []
    for path, reason in rejected:
        stem = attestation_stem(path)
        version, profile, runner = jobs.get(stem, ("", "", ""))
        job = stem if stem in jobs else None
        rows.append(StatusRow(version, profile, runner, "rejected", detail=reason, origin=path.name, job=job))
    return rows


def check_site_dir(out_dir: Path) -> None:
    """Refuse to replace anything but an earlier site (it has ``status.json``) or an empty directory."""
    replaceable = not out_dir.exists() or (out_dir / SITE_MARKER).is_file()
    if not replaceable and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise AttestationError(f"--out {out_dir} exists and is not a status page site; not replacing it")
