"""The status page's site on disk: what ``merge`` copies in, what it keeps from the previous run.

A site is ``index.html``, ``status.json`` (the same rows as data), ``rows/*.html`` (one page per
release x profile x runner), ``attestations/SHA256.intoto.json`` (every verified attestation shown,
named by its digest) and ``runs/SHA256/`` (the files published with that attestation). Every name in
it is made here from a digest or a fixed word, never from text inside an attestation or a file name
that arrived with one.

Files published with an attestation sit next to it in the incoming directory, named after it: for
``NAME.intoto.json`` (or ``NAME.sigstore.json``)

* ``NAME.manifest.json``: linked only when its sha256 is the attested ``result.manifest_sha256``;
* ``NAME.compare.html``: a ``compare --html`` report, served with a Content-Security-Policy that
  allows no script and no fetch, since it is not covered by the signature;
* ``NAME.logs/*.log``: the build logs, each capped (head and tail kept), published as ``.txt``.

None of them is followed through a symbolic link, and each is read up to its budget in
``verify.common.limits``; a file that breaks a rule is left out with a note, never fatal.

``merge`` adds to the previous site: a row whose release x profile x runner is not in this run stays
as it was (with its files); one that is replaced moves into its page's history (verdict, dates,
rebuilder and the attestation, which stays in the site; its other files go, so the site does not grow
by a night of logs every night).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Final

from pydantic import TypeAdapter, ValidationError

from verify.attest.errors import AttestationError
from verify.attest.inputs import load_manifest
from verify.attest.peers import Claim, PeersVerdict, Rejected, claim_of, decide
from verify.attest.verification import TrustPolicy, VerifiedAttestation, verify_attestation_file
from verify.common.errors import VerifyError
from verify.common.fsutil import open_regular_file, write_atomic
from verify.common.jsonutil import read_json_file, validation_summary
from verify.common.limits import (
    STATUS_COMPARE_HTML_MAX_BYTES,
    STATUS_HISTORY_MAX_RUNS,
    STATUS_LOG_MAX_BYTES,
    STATUS_MANIFEST_MAX_BYTES,
    STATUS_MAX_BYTES,
    STATUS_MAX_LOGS,
)
from verify.site.formats import SITE_FORMAT
from verify.site.status_page import Artifact, HistoryEntry, StatusRow, agreement_json, page_path

SITE_MARKER: Final = "status.json"
"""What makes a directory a site ``merge`` may replace."""
ATTESTATION_SUFFIXES: Final = (".intoto.json", ".sigstore.json")
MANIFEST_SUFFIX: Final = ".manifest.json"
COMPARE_SUFFIX: Final = ".compare.html"
LOGS_SUFFIX: Final = ".logs"

# Every link status.json may hold: what this module writes, and so all it will copy from an old site.
_SITE_LINK: Final = re.compile(
    r"attestations/[0-9a-f]{64}\.intoto\.json|runs/[0-9a-f]{64}/(manifest\.json|compare\.html|logs/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.txt)"
)
_LOG_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\.log")

# The compare report is HTML nobody signed: in the site's origin it must not run a script or load
# anything. A <meta> CSP applies to what follows it, so it goes first (the report's own doctype then
# becomes an ignored parse error; the page stays in standards mode).
_COMPARE_PREFIX: Final = (
    b'<!DOCTYPE html>\n<meta http-equiv="Content-Security-Policy" '
    b"content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'\">\n"
)
_LOG_CUT: Final = b"\n[cpython-verify merge: %d bytes cut from the middle of this log]\n"


class SiteError(AttestationError):
    """The previous site cannot be read or carried over (exit 2; the site is left as it was)."""


def attestation_stem(path: Path) -> str:
    """``NAME`` of ``NAME.intoto.json`` / ``NAME.sigstore.json``: what the files published with it are named after."""
    for suffix in ATTESTATION_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.name


def _open_here(path: Path) -> BinaryIO | None:
    """``path`` opened if it is a regular file reached without a symbolic link; None if absent."""
    try:
        return open_regular_file(path, follow_symlinks=False)
    except FileNotFoundError:
        return None


def publish_side_files(
    attestation: Path, manifest_sha256: str, run_dir: Path, run_link: str
) -> tuple[list[Artifact], list[str]]:
    """Copy the files published next to ``attestation`` into ``run_dir`` (linked as ``run_link``).

    Returns the artifacts to link and a note for each file left out."""
    stem = attestation_stem(attestation)
    artifacts: list[Artifact] = []
    notes: list[str] = []

    def note(name: str, why: object) -> None:
        notes.append(f"{name}: not published: {why}")

    manifest = attestation.parent / f"{stem}{MANIFEST_SUFFIX}"
    try:
        data = _read_capped(manifest, STATUS_MANIFEST_MAX_BYTES)
        if data is not None:
            if hashlib.sha256(data).hexdigest() != manifest_sha256:
                note(manifest.name, "its sha256 is not the attested manifest's")
            else:
                _write(run_dir / "manifest.json", data)
                artifacts.append(Artifact("manifest", f"{run_link}/manifest.json"))
    except (OSError, ValueError) as error:
        note(manifest.name, _reason(error))

    report = attestation.parent / f"{stem}{COMPARE_SUFFIX}"
    try:
        data = _read_capped(report, STATUS_COMPARE_HTML_MAX_BYTES)
        if data is not None:
            _write(run_dir / "compare.html", _COMPARE_PREFIX + data)
            artifacts.append(Artifact("compare report", f"{run_link}/compare.html"))
    except (OSError, ValueError) as error:
        note(report.name, _reason(error))

    logs = attestation.parent / f"{stem}{LOGS_SUFFIX}"
    try:
        mode = os.lstat(logs).st_mode
    except FileNotFoundError:
        return artifacts, notes
    except OSError as error:
        note(logs.name, _reason(error))
        return artifacts, notes
    if not stat.S_ISDIR(mode):
        note(logs.name, "not a directory (a symbolic link is not followed)")
        return artifacts, notes
    try:
        names = sorted(entry.name for entry in os.scandir(logs))
    except OSError as error:
        note(logs.name, _reason(error))
        return artifacts, notes
    copied = 0
    for name in names:
        if not _LOG_NAME.fullmatch(name):
            note(f"{logs.name}/{name!r}", "not a NAME.log file name")
            continue
        if copied == STATUS_MAX_LOGS:
            note(f"{logs.name}/{name}", f"more than {STATUS_MAX_LOGS} logs")
            continue
        try:
            text = _read_log(logs / name)
        except OSError as error:
            note(f"{logs.name}/{name}", _reason(error))
            continue
        if text is None:
            continue
        _write(run_dir / "logs" / f"{name}.txt", text)
        artifacts.append(Artifact(f"log: {name}", f"{run_link}/logs/{name}.txt"))
        copied += 1
    return artifacts, notes


def _reason(error: BaseException) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def _read_capped(path: Path, cap: int) -> bytes | None:
    stream = _open_here(path)
    if stream is None:
        return None
    with stream:
        data = stream.read(cap + 1)
    if len(data) > cap:
        raise ValueError(f"larger than {cap >> 20} MiB")
    return data


def _read_log(path: Path) -> bytes | None:
    """A log's bytes, or its head and tail around a marker when longer than the budget."""
    stream = _open_here(path)
    if stream is None:
        return None
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size <= STATUS_LOG_MAX_BYTES:
            return stream.read(STATUS_LOG_MAX_BYTES)
        head_size = STATUS_LOG_MAX_BYTES // 4
        tail_size = STATUS_LOG_MAX_BYTES - head_size
        head = stream.read(head_size)
        stream.seek(size - tail_size)
        return head + _LOG_CUT % (size - head_size - tail_size) + stream.read(tail_size)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


# -- the previous site ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    """What a site's ``status.json`` says: the rows, the earlier runs, when it was generated."""

    rows: tuple[StatusRow, ...]
    history: tuple[HistoryEntry, ...]
    generated_at: str | None


_ROWS: Final = TypeAdapter(list[StatusRow])
_HISTORY: Final = TypeAdapter(list[HistoryEntry])


def read_site(out_dir: Path) -> Site | None:
    """The site at ``out_dir`` as its ``status.json`` describes it; None when there is none yet.

    A ``status.json`` that cannot be read, or names a file this module would not have written, stops
    ``merge`` (:class:`SiteError`) rather than silently dropping the history it holds."""
    path = out_dir / SITE_MARKER
    if not path.exists():
        return None
    try:
        data = read_json_file(path, STATUS_MAX_BYTES)
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ValueError("not a status page's status.json")
        rows = tuple(_ROWS.validate_python(data["rows"]))
        history = tuple(_HISTORY.validate_python(data.get("history", [])))
        generated_at = data.get("generated_at")
        if generated_at is not None and not isinstance(generated_at, str):
            raise ValueError("generated_at is not a string")
    except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        summary = validation_summary(error) if isinstance(error, ValidationError) else _reason(error)
        raise SiteError(f"cannot add to the site {out_dir}: {path.name}: {summary}") from None
    for link in site_links(rows, history):
        if not _SITE_LINK.fullmatch(link):
            raise SiteError(f"cannot add to the site {out_dir}: {path.name} links {link!r}, not a file merge writes")
    return Site(rows, history, generated_at)


def site_links(rows: Iterable[StatusRow], history: Iterable[HistoryEntry] = ()) -> list[str]:
    """Every file of the site the rows and history link to (relative to the site's root)."""
    links = []
    for row in rows:
        links += [row.attestation] if row.attestation else []
        links += [artifact.link for artifact in row.artifacts]
    links += [entry.attestation for entry in history if entry.attestation]
    return links


def carry_forward(
    previous: Site | None, rows: Sequence[StatusRow], run_at: str
) -> tuple[list[StatusRow], list[HistoryEntry]]:
    """This run's rows added to the previous site's: the rows to show and the history to keep.

    A previous row whose page this run has no row for stays (a release rebuilt on an earlier night keeps
    its result); one this run replaces becomes a history entry dated by the previous run, unless this run
    shows the very same attestation again (merging the same files twice is not a second run). A rejected
    attestation that no planned job claimed is about one night's file, so it goes to history too."""
    if previous is None:
        return list(rows), []
    pages = {page_path(row) for row in rows}
    shown = {row.attestation for row in rows if row.attestation}
    kept: list[StatusRow] = []
    retired: list[HistoryEntry] = []
    for row in previous.rows:
        if page_path(row) not in pages and row.version:
            kept.append(row)
        elif not (row.attestation and row.attestation in shown):
            retired.append(HistoryEntry.of(row, previous.generated_at))
    by_page: dict[str, list[HistoryEntry]] = {}
    for entry in [*retired, *previous.history]:
        by_page.setdefault(entry.page, []).append(entry)
    history: list[HistoryEntry] = []
    for entries in by_page.values():
        entries.sort(key=lambda entry: entry.run_at or entry.attested_at or "", reverse=True)
        history += entries[:STATUS_HISTORY_MAX_RUNS]
    return [*rows, *kept], history


def copy_from_previous(previous_dir: Path, staging: Path, links: Iterable[str]) -> None:
    """Copy the previous site's files still linked into ``staging`` (those not already there).

    A linked file that is gone or unreadable is an error: the new site would silently lose it."""
    for link in sorted(set(links)):
        target = staging / link
        if target.exists():
            continue
        try:
            stream = _open_here(previous_dir / link)
            if stream is None:
                raise FileNotFoundError(errno.ENOENT, "no such file")
            with stream:
                data = stream.read()
        except OSError as error:
            raise SiteError(f"cannot add to the site {previous_dir}: {link}: {_reason(error)}") from None
        _write(target, data)


def site_json(
    title: str,
    generated_at: str,
    rows: Sequence[StatusRow],
    history: Sequence[HistoryEntry],
    notes: Sequence[str],
    agreement: Sequence[PeersVerdict] = (),
) -> dict[str, Any]:
    """``status.json``: the page's rows, each with its row page, the ``peers`` verdict of each release x
    profile (as ``peers --json`` prints it, with its page), the history and the notes, as data."""
    return {
        "format": SITE_FORMAT,
        "title": title,
        "generated_at": generated_at,
        "agreement": [agreement_json(verdict) for verdict in agreement],
        "rows": [{**asdict(row), "page": page_path(row)} for row in rows],
        "history": [asdict(entry) for entry in history],
        "notes": list(notes),
    }


# -- agreement between rebuilders -----------------------------------------------------------------------


def agreement(
    rows: Sequence[StatusRow],
    site: Path,
    trust: TrustPolicy,
    *,
    threshold: int,
    verified: Mapping[str, VerifiedAttestation],
) -> list[PeersVerdict]:
    """The ``peers`` verdict (:func:`verify.attest.peers.decide`, the very code ``peers`` runs) of every
    release x profile the rows show, over the verified attestations they link.

    ``site`` holds the attestations and manifests the rows link. An attestation this run verified is in
    ``verified`` (by its link); one carried over from an earlier run is verified again, with this run's
    trust, and one that no longer verifies is not counted (its reason is in the verdict). A rejected row
    is a rejected attestation of its release x profile; a planned job without a result adds nothing, so
    a release x profile with no verified attestation is "not met", never agreement. The manifests
    published with the attestations are read only where trees differ, for the file-level comparison."""
    claims: dict[tuple[str, str], list[Claim]] = {}
    refused: dict[tuple[str, str], list[Rejected]] = {}
    linked: dict[str, tuple[StatusRow, VerifiedAttestation]] = {}
    for row in rows:
        if not row.version:
            continue  # a rejected file no planned job claims: about no release its signature vouches for
        key = (row.version, row.profile)
        claims.setdefault(key, [])
        refused.setdefault(key, [])
        if row.verdict == "rejected":
            refused[key].append(Rejected(row.origin or "(unnamed)", row.detail or "rejected"))
            continue
        if not row.attestation:
            continue
        attestation = verified.get(row.attestation)
        if attestation is None:
            try:
                reverified = verify_attestation_file(site / row.attestation, trust)
            except VerifyError as error:
                refused[key].append(
                    Rejected(
                        row.attestation,
                        f"an earlier run's attestation does not verify with this run's trust: {error.message}",
                    )
                )
                continue
            if not isinstance(reverified, VerifiedAttestation):
                refused[key].append(Rejected(row.attestation, "not a rebuild verdict"))
                continue
            attestation = reverified
        linked[row.attestation] = (row, attestation)
        claims[key].append(claim_of(attestation, origin=row.attestation))
    verdicts = []
    for (version, profile), group in claims.items():
        rejected = refused[(version, profile)]
        verdict = decide(group, version=version, profile=profile, threshold=threshold, rejected=rejected)
        if verdict.dissenting:
            # Trees differ: decide again with the published manifests, to name the differing files.
            group = [_with_manifest(claim, *linked[claim.origin], site) for claim in group]
            verdict = decide(group, version=version, profile=profile, threshold=threshold, rejected=rejected)
        verdicts.append(verdict)
    return verdicts


def _with_manifest(claim: Claim, row: StatusRow, attestation: VerifiedAttestation, site: Path) -> Claim:
    """``claim`` with the manifest published with it (in ``site``), when that is the attested manifest."""
    link = next((artifact.link for artifact in row.artifacts if artifact.label == "manifest"), None)
    if link is None:
        return replace(claim, note="no manifest was published with it: the differing files are unknown")
    path = site / link
    try:
        data = _read_capped(path, STATUS_MANIFEST_MAX_BYTES)
        if data is None or hashlib.sha256(data).hexdigest() != attestation.manifest_sha256:
            return replace(claim, note=f"{link} is not the attested manifest; the differing files are unknown")
        return replace(claim, manifest=load_manifest(path))
    except (OSError, ValueError, VerifyError) as error:
        return replace(claim, note=f"{link}: {error.message if isinstance(error, VerifyError) else _reason(error)}")
