"""The public status page: one row per release x profile x runner, its verdict, and why.

Like reproducible-builds.org's package pages: a table a human can scan, each verdict with an
expandable explanation (the differing files, grouped by kind, with what that kind of difference
usually means), and one page per release x profile x runner (like reproduce.debian.net's) with the
whole verdict, the files published with it and the earlier runs. The HTML is self-contained — inline
CSS, no scripts, no external assets — every link is relative (the site can be moved or served from
any path), and every value is escaped.

This module only renders: what the site holds and where its files come from is ``verify.site.status_site``.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from verify.attest.peers import Counted, Dissent, PeersVerdict
from verify.attest.peers_document import DISAGREE, MET, NOT_MET
from verify.attest.predicate import RebuildVerdict

# What a difference of each kind usually means (kinds as the rebuild stage classifies them).
KIND_EXPLANATIONS: Final = {
    "elf": "compiled code differs: build paths in DWARF (-ffile-prefix-map), build-id, or different "
    "compiler decisions (PGO profiles, LTO section names)",
    "pyc": "bytecode differs: timestamp headers without SOURCE_DATE_EPOCH, or marshal reference flags "
    "(CPython #78274) when the code objects are equal",
    "sysconfigdata": "build-time configuration records the build directory (abs_builddir, abs_srcdir) and CFLAGS",
    "makefile": "the installed config Makefile records the build directory and flags",
    "config-script": "python3.X-config embeds the build's flags and paths",
    "archive": "static archives embed member timestamps or differing objects",
    "text": "a text file differs",
    "directory": "a directory's permissions differ (umask)",
    "symlink": "a symbolic link points elsewhere",
    "other": "a file of another kind differs",
}

VERDICT_LABELS: Final = {
    "reproducible": "reproducible",
    "explained": "differences explained",
    "differs": "NOT reproducible",
    "built-once": "built once (not compared)",
    "missing": "no result",
    "rejected": "attestation rejected",
}


@dataclass(frozen=True, slots=True)
class DifferenceRow:
    """One differing path of a row, as the signed verdict states it."""

    path: str
    kind: str
    change: str
    explained: bool
    category: str | None = None
    """The comparator's category (``build-path``, ``reference-flags-only``, ...), when it gave one."""
    explanation: str | None = None
    """The comparator's one-line explanation of this very file, when it gave one."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file published with a result and copied into the site (a manifest, a log, a compare report)."""

    label: str
    link: str
    """Relative to the site's root, like every link of a row."""


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One line of the status table."""

    version: str
    profile: str
    runner: str
    verdict: str
    """A key of :data:`VERDICT_LABELS`."""
    source_verified: bool | None = None
    signer: str | None = None
    """Who signed: ``key:<key id>`` or a Sigstore identity (shown as a tooltip)."""
    rebuilder: str | None = None
    """The rebuilder's id, as it configured it (the verdict's ``rebuilder.name``, else its URI)."""
    attested_at: str | None = None
    tree_sha256: str | None = None
    attestation: str | None = None
    """Link (relative path or URL) to the signed attestation."""
    differences: tuple[DifferenceRow, ...] = ()
    variations: tuple[str, ...] = ()
    detail: str | None = None
    """Why there is no verified result (a rejected attestation's reason, a job that produced nothing)."""
    culprits: tuple[tuple[str, bool], ...] = ()
    """After ``--bisect``: each variation and whether it alone makes the outputs differ."""
    artifacts: tuple[Artifact, ...] = ()
    origin: str | None = None
    """The file name the attestation arrived under (shown for rejected ones, which prove nothing else)."""
    job: str | None = None
    """The planned job (``plan`` id) the result came from: signed (``rebuilder.job``) for a verified
    attestation; for a rejected one or a missing result, the plan's job it stands for."""
    machine: str | None = None
    """The machine the job ran on, as the signed verdict names it (``rebuilder.machine``)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """An earlier run's result for one row page."""

    page: str
    """The row page it belongs to (:func:`page_path`)."""
    run_at: str | None
    """When the ``merge`` that published it ran (None for sites written before runs were dated)."""
    verdict: str
    attested_at: str | None = None
    rebuilder: str | None = None
    tree_sha256: str | None = None
    attestation: str | None = None
    detail: str | None = None

    @classmethod
    def of(cls, row: StatusRow, run_at: str | None) -> HistoryEntry:
        """What history keeps of a row a later run replaced (its files other than the attestation go)."""
        return cls(
            page_path(row),
            run_at,
            row.verdict,
            row.attested_at,
            row.rebuilder or row.signer,
            row.tree_sha256,
            row.attestation,
            row.detail,
        )


def page_key(row: StatusRow) -> tuple[str, ...]:
    """What one row page is about: release x profile x runner, or, for an attestation rejected before
    anything in it could be trusted and that no planned job claims, the file it arrived as."""
    if row.version:
        return ("job", row.version, row.profile, row.runner)
    return ("file", row.origin or "")


def page_path(row: StatusRow) -> str:
    """The row page's path in the site, from its key's digest: signed (or hostile) text never becomes a
    path, and the same release x profile x runner keeps its page, and so its history, across runs."""
    digest = hashlib.sha256("\0".join(page_key(row)).encode()).hexdigest()
    return f"rows/{digest[:32]}.html"


def row_from_predicate(
    predicate: RebuildVerdict,
    *,
    signer: str | None = None,
    attestation: str | None = None,
    artifacts: Sequence[Artifact] = (),
) -> StatusRow:
    """The row for one verified attestation."""
    return StatusRow(
        version=predicate.version,
        profile=predicate.recipe.profile,
        runner=predicate.build.runner,
        verdict=predicate.verdict,
        source_verified=predicate.source.verified,
        signer=signer,
        rebuilder=predicate.rebuilder.name or predicate.rebuilder.id,
        job=predicate.rebuilder.job,
        machine=predicate.rebuilder.machine,
        attested_at=predicate.attested_at,
        tree_sha256=predicate.result.tree_sha256,
        attestation=attestation,
        differences=tuple(
            DifferenceRow(d.path, d.kind, d.change, d.explained, d.category, d.explanation)
            for d in predicate.result.differences
        ),
        variations=predicate.build.variations,
        culprits=tuple(sorted(predicate.result.culprits.items())),
        artifacts=tuple(artifacts),
    )


def _version_key(text: str) -> tuple[Any, ...]:
    from verify.common.errors import VersionError
    from verify.source.releases import Version

    try:
        return (0, Version.parse(text))
    except VersionError:
        return (1, text)


def sort_rows(rows: Iterable[StatusRow]) -> list[StatusRow]:
    """Newest release first, then profile and runner."""
    ordered = sorted(rows, key=lambda row: (row.profile, row.runner))
    return sorted(ordered, key=lambda row: _version_key(row.version), reverse=True)


@dataclass(frozen=True, slots=True)
class PageSummary:
    """Counts for the page header."""

    total: int
    by_verdict: dict[str, int] = field(default_factory=dict)


def summarize(rows: Sequence[StatusRow]) -> PageSummary:
    """How many rows have each verdict."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return PageSummary(len(rows), counts)


_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#fff;overflow-wrap:break-word}
h1{font-size:1.5rem}h2{font-size:1.2rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}code{font-size:.85em}
.verdict{font-weight:bold;white-space:nowrap}
.v-reproducible{background:#c8f7c5}.v-explained{background:#fff3b0}.v-differs{background:#f9b4b4}
.v-built-once{background:#dde7f7}.v-missing,.v-rejected{background:#e6e6e6}
.a-met{background:#c8f7c5}.a-single{background:#dde7f7}.a-not-met{background:#e6e6e6}.a-disagree{background:#f9b4b4}
.agreement,.agreement code{overflow-wrap:anywhere}.agreement ul{list-style:none;padding-left:0}
details summary{cursor:pointer}ul{margin:.3rem 0;padding-left:1.2rem}
dd{min-width:0}code,.why,.rebuilder,.origin,dd{overflow-wrap:anywhere}
.verdict details,.verdict .why{white-space:normal;font-weight:normal}
.category{background:#eee;border-radius:.2rem;padding:0 .3rem;font-size:.85em}.why{color:#444;font-size:.9em}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem}dt{font-weight:bold}dd{margin:0}
.result{border:1px solid #ccc;padding:0 1rem .5rem;margin-bottom:1rem}.result h2{margin:0 -1rem;padding:.5rem 1rem}
@media (max-width:700px){body{margin:.8rem}table,tbody,tr,td{display:block;width:auto}thead{display:none}
tr{border:1px solid #ccc;margin-bottom:.8rem}td{border:none;border-top:1px solid #eee}
td[data-label]:before{content:attr(data-label) ": ";font-weight:bold}
dl{grid-template-columns:minmax(0,1fr)}dd{margin-bottom:.4rem}}
"""

_HEAD: Final = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
)


def render(
    rows: Sequence[StatusRow],
    *,
    title: str,
    generated_at: datetime,
    notes: Sequence[str] = (),
    agreement: Sequence[PeersVerdict] = (),
) -> str:
    """The whole index page as one HTML string; each row links to its row page (:func:`render_row_page`).

    ``agreement`` holds the ``peers`` verdict of each release x profile: a table of its own above the
    results, and on each result row what it says of that row's attestation."""
    ordered = sort_rows(rows)
    summary = summarize(ordered)
    counts = ", ".join(f"{count} {VERDICT_LABELS.get(v, v)}" for v, count in sorted(summary.by_verdict.items()))
    roles = agreement_roles(agreement)
    parts = [
        _HEAD + f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p id="summary">{summary.total} result(s): {_e(counts) or "none"}. '
        f"{_e(_agreement_counts(agreement))}Generated {_e(generated_at.isoformat())}.</p>",
    ]
    if agreement:
        parts.append(_agreement_table(agreement, rebuilder_names(rows)))
    parts.append(
        '<h2>Results</h2><table id="status"><thead><tr><th>Release</th><th>Profile</th><th>Runner</th>'
        "<th>Verdict</th><th>Agreement</th><th>Source</th><th>Rebuilder</th><th>Install tree</th>"
        "<th>Attestation</th></tr></thead><tbody>"
    )
    parts += [_row(row, roles.get(row.attestation or "")) for row in ordered]
    parts.append("</tbody></table>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def render_row_page(
    rows: Sequence[StatusRow], history: Sequence[HistoryEntry], *, title: str, generated_at: datetime
) -> str:
    """One release x profile x runner: every current result in full (verdict, culprits, each differing
    file with the comparator's category and explanation, the rebuilder, links to the attestation and the
    files published with it), then the earlier runs, newest first.

    The page lives one directory below the site's root (``rows/``), so its links climb one level."""
    heading = _page_heading(rows[0] if rows else None, history)
    parts = [
        _HEAD + f"<title>{_e(heading)} — {_e(title)}</title><style>{_CSS}</style></head><body>",
        f'<p><a href="../index.html">{_e(title)}</a></p>',
        f"<h1>{_e(heading)}</h1>",
        f"<p>Generated {_e(generated_at.isoformat())}.</p>",
    ]
    parts += [_result_section(row) for row in sort_rows(rows)]
    if not rows:
        parts.append("<p>No result in the latest run.</p>")
    parts.append(_history_table(history))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _page_heading(row: StatusRow | None, history: Sequence[HistoryEntry]) -> str:
    if row is None:
        return "Earlier results"
    if not row.version:
        return f"Rejected attestation {row.origin or ''}".strip()
    return f"CPython {row.version}, profile {row.profile}, runner {row.runner}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(text: str) -> str:
    return _e(text) if text else "—"


def _row(row: StatusRow, role: AgreementRole | None = None) -> str:
    source = {True: "verified", False: "NOT verified", None: "—"}[row.source_verified]
    tree = f"<code>{_e(row.tree_sha256[:16])}…</code>" if row.tree_sha256 else "—"
    link = f'<a href="{_e(row.attestation)}">signed</a>' if row.attestation else "—"
    page = _e(page_path(row))
    shown = _e(row.version) if row.version else f'<span class="origin">{_e(row.origin or "—")}</span>'
    release = f'<a href="{page}">{shown}</a>'
    return (
        f'<tr class="row" data-version="{_e(row.version)}" data-verdict="{_e(row.verdict)}" data-page="{page}">'
        f'<td data-label="Release">{release}</td><td data-label="Profile">{_cell(row.profile)}</td>'
        f'<td data-label="Runner">{_cell(row.runner)}</td>'
        f'<td class="verdict v-{_e(row.verdict)}">{_explanation(row)}</td>'
        f"{_role_cell(row, role)}"
        f'<td data-label="Source">{source}</td><td data-label="Rebuilder">{_rebuilder(row)}</td>'
        f'<td data-label="Install tree">{tree}</td><td data-label="Attestation">{link}</td></tr>'
    )


def _rebuilder(row: StatusRow) -> str:
    """The rebuilder's own id; who signed (a key id or a Sigstore identity) is in the tooltip."""
    shown = row.rebuilder or row.signer
    run = _run_words(row.job, row.machine)
    if not shown:
        return f'<div class="run">{_e(run)}</div>' if run else "—"
    title = f"signed by {row.signer}" if row.signer else shown
    job = f'<div class="run">{_e(run)}</div>' if run else ""
    return f'<span class="rebuilder" title="{_e(title)}">{_e(shown)}</span>{job}'


def _run_words(job: str | None, machine: str | None) -> str:
    """ "job J on machine M": which run of a rebuilder a result is, as its signed verdict says."""
    words = [f"job {job}"] if job else []
    words += [f"on machine {machine}"] if machine else []
    return " ".join(words)


def _difference(entry: DifferenceRow) -> str:
    """One file: its change, whether a chosen variation explains it, and the comparator's own words."""
    state = "expected" if entry.explained else "UNEXPLAINED"
    category = f' <span class="category">{_e(entry.category)}</span>' if entry.category else ""
    said = f'<div class="why">{_e(entry.explanation)}</div>' if entry.explanation else ""
    return f"<li><code>{_e(entry.path)}</code> ({_e(entry.change)}, {state}){category}{said}</li>"


def _by_kind(row: StatusRow, limit: int) -> list[str]:
    """The differing files grouped by kind, each group with what that kind of difference usually means."""
    by_kind: dict[str, list[DifferenceRow]] = {}
    for difference in row.differences:
        by_kind.setdefault(difference.kind, []).append(difference)
    lines = []
    for kind, entries in sorted(by_kind.items()):
        # Manifest kinds are finer than the explanations: elf-executable and elf-shared-object are "elf".
        why = KIND_EXPLANATIONS.get(kind) or KIND_EXPLANATIONS.get(kind.split("-")[0], KIND_EXPLANATIONS["other"])
        files = "".join(_difference(entry) for entry in entries[:limit])
        more = f"<li>… and {len(entries) - limit} more</li>" if len(entries) > limit else ""
        lines.append(f"<li><b>{_e(kind)}</b> ({len(entries)}): {_e(why)}<ul>{files}{more}</ul></li>")
    return lines


def _explanation(row: StatusRow) -> str:
    label = _e(VERDICT_LABELS.get(row.verdict, row.verdict))
    if row.verdict in ("rejected", "missing"):
        # Why there is no result is the whole point of such a row: shown, not folded away.
        reason = f'<div class="why">{_e(row.detail)}</div>' if row.detail else ""
        # A rejected file a planned job claims shows its release in the first cell: name the file here.
        arrived = f'<div class="origin">file: {_e(row.origin)}</div>' if row.origin and row.version else ""
        return f"{label}{arrived}{reason}"
    lines: list[str] = []
    if row.detail:
        lines.append(f"<li>{_e(row.detail)}</li>")
    if row.variations:
        lines.append(f"<li>second build varied: {_e(', '.join(row.variations))}</li>")
    if row.verdict == "reproducible":
        lines.append("<li>two builds identical in every file, link and mode</li>")
    if row.culprits:
        lines.append(f"<li>culprits: {_e(_culprits(row))}</li>")
    lines += _by_kind(row, 50)
    if not lines:
        return label
    return f"<details><summary>{label}</summary><ul>{''.join(lines)}</ul></details>"


def _culprits(row: StatusRow) -> str:
    return ", ".join(
        f"{name} ({'alone makes the outputs differ' if alone else 'no effect alone'})" for name, alone in row.culprits
    )


def _up(link: str) -> str:
    """A site-relative link as seen from a row page, one directory down."""
    return _e(f"../{link}")


# Differences listed in full on a row page; beyond this a count (a predicate is bounded by the
# attestation's size, but a page of 100,000 list items helps nobody).
_ROW_PAGE_DIFFERENCES: Final = 2000


def _result_section(row: StatusRow) -> str:
    label = _e(VERDICT_LABELS.get(row.verdict, row.verdict))
    source = {True: "verified", False: "NOT verified", None: "—"}[row.source_verified]
    facts = [
        ("Verdict", label),
        ("Reason", _e(row.detail) if row.detail else ""),
        ("Source", source if row.version else ""),
        ("Rebuilder", _e(row.rebuilder) if row.rebuilder else ""),
        ("Job", _e(row.job) if row.job else ""),
        ("Machine", _e(row.machine) if row.machine else ""),
        ("Signed by", _e(row.signer) if row.signer else ""),
        ("Attested at", _e(row.attested_at) if row.attested_at else ""),
        ("Install tree", f"<code>{_e(row.tree_sha256)}</code>" if row.tree_sha256 else ""),
        ("Second build varied", _e(", ".join(row.variations)) if row.variations else ""),
        ("Culprits", _e(_culprits(row)) if row.culprits else ""),
        ("Arrived as", f"<code>{_e(row.origin)}</code>" if row.origin else ""),
    ]
    links = [f'<a href="{_up(row.attestation)}">signed attestation</a>'] if row.attestation else []
    links += [f'<a href="{_up(artifact.link)}">{_e(artifact.label)}</a>' for artifact in row.artifacts]
    if links:
        facts.append(("Files", " · ".join(links)))
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts if value)
    differences = _by_kind(row, _ROW_PAGE_DIFFERENCES)
    listed = f"<h3>Differing files</h3><ul>{''.join(differences)}</ul>" if differences else ""
    if row.verdict == "reproducible":
        listed = "<p>Two builds identical in every file, link and mode.</p>"
    who = _e(row.rebuilder or row.signer or "no rebuilder") + (f", job {_e(row.job)}" if row.job else "")
    return (
        f'<section class="result" data-verdict="{_e(row.verdict)}">'
        f'<h2 class="v-{_e(row.verdict)}">{label} — {who}</h2><dl>{body}</dl>{listed}</section>'
    )


def _history_table(history: Sequence[HistoryEntry]) -> str:
    if not history:
        return '<h2>Earlier runs</h2><p id="history">None yet: this is the first run kept for this page.</p>'
    ordered = sorted(history, key=lambda entry: entry.run_at or entry.attested_at or "", reverse=True)
    rows = []
    for entry in ordered:
        link = f'<a href="{_up(entry.attestation)}">signed</a>' if entry.attestation else "—"
        reason = f'<div class="why">{_e(entry.detail)}</div>' if entry.detail else ""
        rows.append(
            f'<tr class="run" data-verdict="{_e(entry.verdict)}"><td data-label="Run">{_cell(entry.run_at or "")}</td>'
            f'<td class="verdict v-{_e(entry.verdict)}">{_e(VERDICT_LABELS.get(entry.verdict, entry.verdict))}'
            f"{reason}</td>"
            f'<td data-label="Attested at">{_cell(entry.attested_at or "")}</td>'
            f'<td data-label="Rebuilder">{_cell(entry.rebuilder or "")}</td>'
            f'<td data-label="Attestation">{link}</td></tr>'
        )
    return (
        '<h2>Earlier runs</h2><table id="history"><thead><tr><th>Run</th><th>Verdict</th><th>Attested at</th>'
        f"<th>Rebuilder</th><th>Attestation</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# -- agreement between rebuilders ----------------------------------------------------------------------------
#
# The verdicts are ``peers``' own (verify.attest.peers.decide over the verified attestations of each
# release x profile); this part only shows them. A claim's ``origin`` is the attestation's link in the
# site (``attestations/SHA256.intoto.json``), or the file name a rejected attestation arrived as.

AGREEMENT_FILES_LISTED: Final = 2000
"""Differing paths listed per dissenting rebuilder on an agreement page; beyond this a count."""


def agreement_path(version: str, profile: str) -> str:
    """The agreement page of one release x profile, named from a digest like a row page."""
    digest = hashlib.sha256("\0".join(("agreement", version, profile)).encode()).hexdigest()
    return f"agreement/{digest[:32]}.html"


def dissent_anchor(index: int) -> str:
    """The id of the ``index``-th dissenting rebuilder's comparison on its agreement page."""
    return f"dissent-{index + 1}"


def comparison_link(verdict: PeersVerdict, index: int) -> str | None:
    """The link to the file-level comparison of a dissenting rebuilder with the reference, when both
    manifests were published (else None: the trees differ, the files are unknown)."""
    if verdict.dissenting[index].differences is None:
        return None
    return f"{agreement_path(verdict.version, verdict.profile)}#{dissent_anchor(index)}"


def agreement_json(verdict: PeersVerdict) -> dict[str, Any]:
    """What ``status.json`` carries for one release x profile: ``peers --json``'s verdict, with the
    agreement page and each dissent's comparison link (:class:`verify.site.agreement_document.AgreementDocument`)."""
    from verify.attest.peers import verdict_fields
    from verify.site.agreement_document import AgreementDocument, SiteDissent

    fields = verdict_fields(verdict)
    fields["dissenting"] = tuple(
        SiteDissent.model_construct(**dict(dissent), comparison=comparison_link(verdict, index))
        for index, dissent in enumerate(fields["dissenting"])
    )
    page = agreement_path(verdict.version, verdict.profile)
    return AgreementDocument.model_construct(page=page, **fields).to_json()


@dataclass(frozen=True, slots=True)
class AgreementRole:
    """What a release x profile's verdict says about one attestation shown on a result row."""

    verdict: PeersVerdict
    role: str
    """``agrees``, ``disagrees`` or ``not counted``."""
    tree_sha256: str | None = None
    dissent: int | None = None
    """The index in ``verdict.dissenting`` of the rebuilder this attestation belongs to."""
    reason: str | None = None


def agreement_roles(verdicts: Iterable[PeersVerdict]) -> dict[str, AgreementRole]:
    """Attestation link -> what its release x profile's verdict says of it."""
    roles: dict[str, AgreementRole] = {}
    for verdict in verdicts:
        dissent_of = {dissent.origin: index for index, dissent in enumerate(verdict.dissenting)}
        for counted in verdict.counted:
            for origin in counted.origins:
                if counted.agrees:
                    roles[origin] = AgreementRole(verdict, "agrees", counted.tree_sha256)
                else:
                    roles[origin] = AgreementRole(
                        verdict, "disagrees", counted.tree_sha256, dissent_of.get(counted.origins[0])
                    )
        for runs in verdict.runs:
            if not runs.agree:  # one rebuilder's runs disagree: each run is red, with every tree it is set against
                for run in runs.runs:
                    roles[run.origin] = AgreementRole(verdict, "disagrees", run.tree_sha256, reason=runs.summary())
        for rejected in verdict.rejected:
            roles.setdefault(rejected.origin, AgreementRole(verdict, "not counted", reason=rejected.reason))
    return roles


def _agreement_counts(verdicts: Sequence[PeersVerdict]) -> str:
    """The header's sentence about agreement: how many release x profile, and how many disagree."""
    if not verdicts:
        return ""
    states = [verdict.state for verdict in verdicts]
    return (
        f"Agreement between rebuilders for {len(verdicts)} release x profile: {states.count(DISAGREE)} "
        f"disagree, {states.count(MET)} met, {states.count(NOT_MET)} not met. "
    )


def rebuilder_names(rows: Iterable[StatusRow]) -> dict[str, str]:
    """Attestation link -> the rebuilder id its verdict gives (what the Rebuilder column shows)."""
    return {row.attestation: row.rebuilder or row.signer or "" for row in rows if row.attestation}


def agreement_class(verdict: PeersVerdict) -> str:
    """The colour of a verdict: red when rebuilders disagree, green when at least two agree and the
    threshold is met, blue for a single rebuilder (met, but nothing to compare with), grey when not met."""
    if verdict.state == DISAGREE:
        return "a-disagree"
    if verdict.state == MET:
        return "a-met" if verdict.independent > 1 else "a-single"
    return "a-not-met"


def agreement_label(verdict: PeersVerdict) -> str:
    """A few words for the verdict's cell (its one-line summary follows it)."""
    k, n = len(verdict.agreeing), verdict.independent
    if verdict.state == DISAGREE:
        if not verdict.dissenting and any(not runs.agree for runs in verdict.runs):
            return f"RUNS OF ONE REBUILDER DISAGREE: {_runs_words(verdict)}"
        return f"REBUILDERS DISAGREE ({k} of {n} on the reference tree)"
    if verdict.state == MET:
        if n == 1 and verdict.runs:
            return f"one rebuilder (one signer), {_runs_words(verdict)}; no second signer to compare with"
        if n == 1:
            return f"one rebuilder, nothing to compare with (threshold {verdict.threshold})"
        return f"{k} of {n} rebuilders agree (threshold {verdict.threshold} met)"
    if n == 0:
        return "no verified attestation"
    return f"not confirmed: {k} of {n} rebuilder(s) agree, {verdict.threshold} needed"


def _runs_words(verdict: PeersVerdict) -> str:
    """How the runs of the rebuilders that rebuilt more than once compare, in a few words: "2 runs on 2
    machines agree"."""
    return "; ".join(f"{runs.counts()} {'agree' if runs.agree else 'DISAGREE'}" for runs in verdict.runs)


def _runs_list(verdict: PeersVerdict, names: Mapping[str, str]) -> list[str]:
    """One list item per run of each rebuilder that rebuilt more than once: its job, machine and tree; red
    when that rebuilder's runs disagree, with every tree."""
    items = []
    for runs in verdict.runs:
        css = "" if runs.agree else ' class="a-disagree"'
        each = "".join(
            f"<li>{_e(names.get(run.origin) or runs.signer)}: {_e(_run_words(run.job, run.machine) or 'a run')}, "
            f"tree <code>{_e(run.tree_sha256)}</code></li>"
            for run in runs.runs
        )
        items.append(f'<li{css} data-runs-agree="{str(runs.agree).lower()}">{_e(runs.summary())}<ul>{each}</ul></li>')
    return items


def _short(digest: str | None) -> str:
    return f"<code>{_e(digest[:12])}…</code>" if digest else "—"


def _dissent_line(verdict: PeersVerdict, index: int) -> str:
    """Both digests and the comparison link (or why there is none), for one dissenting rebuilder."""
    dissent = verdict.dissenting[index]
    link = comparison_link(verdict, index)
    if link is not None:
        files = len(dissent.differences or ())
        compare = f' — <a href="{_e(link)}">comparison: {files} path(s) differ</a>'
    else:
        compare = f" — files unknown: {_e(dissent.note or 'a manifest was not published')}"
    return (
        f'<span class="why">DISAGREES: tree <code>{_e(dissent.tree_sha256)}</code>, '
        f"reference <code>{_e(verdict.reference_sha256 or 'none')}</code>{compare}</span>"
    )


def _role_cell(row: StatusRow, role: AgreementRole | None) -> str:
    if role is None:
        return '<td class="agreement" data-label="Agreement">—</td>'
    verdict = role.verdict
    page = _e(agreement_path(verdict.version, verdict.profile))
    if role.role == "disagrees":
        if role.dissent is not None:
            shown = _dissent_line(verdict, role.dissent)
        elif role.reason is not None:
            shown = (
                f'<span class="why">DISAGREES: tree <code>{_e(role.tree_sha256 or "none")}</code>; '
                f"{_e(role.reason)}</span>"
            )
        else:
            shown = f"DISAGREES: tree {_short(role.tree_sha256)}"
        return (
            f'<td class="agreement a-disagree" data-label="Agreement" data-role="disagrees">'
            f'{shown} <a href="{page}">(all rebuilders)</a></td>'
        )
    if role.role == "agrees":
        css = "a-met" if verdict.independent > 1 else "a-single"
        if verdict.independent > 1:
            text = f"agrees: {len(verdict.agreeing)} of {verdict.independent} rebuilders on this tree"
        elif verdict.runs:
            text = f"the only rebuilder (one signer); {_runs_words(verdict)}"
        else:
            text = "the only rebuilder: nothing to compare with"
        return (
            f'<td class="agreement {css}" data-label="Agreement" data-role="agrees">'
            f'<a href="{page}">{_e(text)}</a></td>'
        )
    return (
        f'<td class="agreement a-not-met" data-label="Agreement" data-role="not-counted">'
        f'<a href="{page}">not counted</a><div class="why">{_e(role.reason or "")}</div></td>'
    )


def _who(counted: Counted, names: Mapping[str, str]) -> str:
    """A counted rebuilder as people know it (the rebuilder ids its attestations give), its signer as the
    tooltip: the signer is what ``peers`` counts by, the id is what a reader recognises."""
    shown = list(dict.fromkeys(names[origin] for origin in counted.origins if origin in names)) or [counted.signer]
    return f'<span class="rebuilder" title="signed by {_e(counted.signer)}">{_e(", ".join(shown))}</span>'


def _agreement_table(verdicts: Sequence[PeersVerdict], names: Mapping[str, str]) -> str:
    rows = []
    for verdict in sorted(verdicts, key=lambda v: (_version_key(v.version), v.profile), reverse=True):
        page = _e(agreement_path(verdict.version, verdict.profile))
        dissent_of = {dissent.origin: index for index, dissent in enumerate(verdict.dissenting)}
        rebuilders = []
        for counted in verdict.counted:
            if counted.agrees:
                rebuilders.append(f"<li>{_who(counted, names)}: agrees, tree {_short(counted.tree_sha256)}</li>")
            else:
                line = _dissent_line(verdict, dissent_of[counted.origins[0]])
                rebuilders.append(f'<li class="a-disagree">{_who(counted, names)}: {line}</li>')
        rebuilders += _runs_list(verdict, names)
        rebuilders += [
            f'<li><span class="why">not counted: {_e(rejected.origin)}: {_e(rejected.reason)}</span></li>'
            for rejected in verdict.rejected
        ]
        rows.append(
            f'<tr class="agreement-row" data-version="{_e(verdict.version)}" data-profile="{_e(verdict.profile)}" '
            f'data-state="{_e(verdict.state)}"><td data-label="Release"><a href="{page}">{_e(verdict.version)}</a></td>'
            f'<td data-label="Profile">{_e(verdict.profile)}</td>'
            f'<td class="agreement {agreement_class(verdict)}" data-label="Verdict">'
            f"<b>{_e(agreement_label(verdict))}</b>"
            f'<div class="why">{_e(verdict.coverage())}</div></td>'
            f'<td class="agreement" data-label="Rebuilders"><ul>{"".join(rebuilders) or "<li>none counted</li>"}</ul>'
            "</td></tr>"
        )
    return (
        "<h2>Agreement between rebuilders</h2>"
        "<p>For each release and profile: the <code>peers</code> verdict over every verified attestation shown "
        "below. Independent rebuilders (counted by signing key or identity) agree when their install trees "
        "have the same digest. Several runs of one signer (the nightly workflow's jobs on separate machines) "
        "are listed as runs: their agreement shows the build reproduces across machines, and counts once.</p>"
        '<table id="agreement"><thead><tr><th>Release</th><th>Profile</th><th>Verdict</th><th>Rebuilders</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _dissenter(dissent: Dissent, names: Mapping[str, str] | None) -> str:
    return _e((names or {}).get(dissent.origin) or dissent.signer)


def _origin(origin: str) -> str:
    """An attestation the site holds is a link (from a page one directory down); a rejected file, its name."""
    if origin.startswith("attestations/"):
        return f'<a href="{_up(origin)}"><code>{_e(origin)}</code></a>'
    return f"<code>{_e(origin)}</code>"


def render_agreement_page(
    verdict: PeersVerdict, *, title: str, generated_at: datetime, names: Mapping[str, str] | None = None
) -> str:
    """One release x profile's agreement between rebuilders in full: the verdict, what was checked,
    every rebuilder with its tree digest and attestations, and for each dissenting rebuilder the paths
    on which its tree differs from the reference (when both manifests were published)."""
    heading = f"CPython {verdict.version}, profile {verdict.profile}: agreement between rebuilders"
    parts = [
        _HEAD + f"<title>{_e(heading)} — {_e(title)}</title><style>{_CSS}</style></head><body>",
        f'<p><a href="../index.html">{_e(title)}</a></p>',
        f"<h1>{_e(heading)}</h1>",
        f"<p>Generated {_e(generated_at.isoformat())}.</p>",
        f'<section class="result" data-state="{_e(verdict.state)}">'
        f'<h2 class="{agreement_class(verdict)}">{_e(agreement_label(verdict))}</h2>'
        f'<p id="verdict">{_e(verdict.summary())}</p><p id="checked">{_e(verdict.coverage())}</p></section>',
    ]
    counted = "".join(
        f'<tr class="rebuilder" data-agrees="{str(c.agrees).lower()}"><td data-label="Rebuilder">{_who(c, names or {})}'
        f"<br><code>{_e(c.signer)}</code></td>"
        f'<td class="agreement {"a-met" if c.agrees else "a-disagree"}" data-label="Tree">'
        f"{'agrees' if c.agrees else 'DISAGREES'}: <code>{_e(c.tree_sha256)}</code></td>"
        f'<td data-label="Attestations">{"<br>".join(_origin(origin) for origin in c.origins)}</td></tr>'
        for c in verdict.counted
    )
    parts.append(
        '<h2>Rebuilders counted</h2><table id="rebuilders"><thead><tr><th>Rebuilder</th><th>Install tree</th>'
        f"<th>Attestations</th></tr></thead><tbody>{counted or '<tr><td colspan=3>none</td></tr>'}</tbody></table>"
    )
    for index, dissent in enumerate(verdict.dissenting):
        parts.append(
            f'<section class="result" id="{dissent_anchor(index)}"><h2 class="a-disagree">{_dissenter(dissent, names)} '
            f"disagrees</h2><dl><dt>Signed by</dt><dd><code>{_e(dissent.signer)}</code></dd>"
            f"<dt>Its tree</dt><dd><code>{_e(dissent.tree_sha256)}</code></dd>"
            f"<dt>Reference tree</dt><dd><code>{_e(verdict.reference_sha256 or 'none')}</code> "
            f"({_e(verdict.reference)})</dd><dt>Attestation</dt><dd>{_origin(dissent.origin)}</dd></dl>"
        )
        if dissent.differences is None:
            parts.append(f"<p>Files unknown: {_e(dissent.note or 'a manifest was not published')}.</p></section>")
            continue
        listed = "".join(
            f"<li><code>{_e(difference.path)}</code> ({_e(', '.join(difference.changes))})</li>"
            for difference in dissent.differences[:AGREEMENT_FILES_LISTED]
        )
        more = len(dissent.differences) - AGREEMENT_FILES_LISTED
        if more > 0:
            listed += f"<li>… and {more} more (the two published manifests hold them all)</li>"
        parts.append(
            f"<h3>{len(dissent.differences)} path(s) differ from the reference tree</h3><ul>{listed}</ul></section>"
        )
    if verdict.runs:
        parts.append(
            "<h2>Runs of one rebuilder</h2><p>Each counts once in the k of n above (rebuilders are counted by "
            "signer); whether its runs, on the machines their signed verdicts name, produced one tree:</p>"
            f'<ul id="runs">{"".join(_runs_list(verdict, names or {}))}</ul>'
        )
    if verdict.rejected:
        parts.append(
            "<h2>Not counted</h2><ul>"
            + "".join(f"<li>{_origin(rejected.origin)}: {_e(rejected.reason)}</li>" for rejected in verdict.rejected)
            + "</ul>"
        )
    if verdict.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(note)}</li>" for note in verdict.notes) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
