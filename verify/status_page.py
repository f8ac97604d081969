"""The public status page: one row per release x profile x runner, its verdict, and why.

Like reproducible-builds.org's package pages: a table a human can scan, each verdict with an
expandable explanation (the differing files, grouped by kind, with what that kind of difference
usually means). The HTML is self-contained — inline CSS, no scripts, no external assets — so it can
be published as one file and opened offline. Every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

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


def row_from_predicate(
    predicate: RebuildVerdict, *, signer: str | None = None, attestation: str | None = None
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
        attested_at=predicate.attested_at,
        tree_sha256=predicate.result.tree_sha256,
        attestation=attestation,
        differences=tuple(
            DifferenceRow(d.path, d.kind, d.change, d.explained, d.category, d.explanation)
            for d in predicate.result.differences
        ),
        variations=predicate.build.variations,
    )


def _version_key(text: str) -> tuple[Any, ...]:
    from verify.errors import VersionError
    from verify.releases import Version

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
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#fff;overflow-wrap:anywhere}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}code{font-size:.85em}
.verdict{font-weight:bold;white-space:nowrap}
.v-reproducible{background:#c8f7c5}.v-explained{background:#fff3b0}.v-differs{background:#f9b4b4}
.v-built-once{background:#dde7f7}.v-missing,.v-rejected{background:#e6e6e6}
details summary{cursor:pointer}ul{margin:.3rem 0;padding-left:1.2rem}
td{overflow-wrap:anywhere}.verdict details{white-space:normal;font-weight:normal}
.category{background:#eee;border-radius:.2rem;padding:0 .3rem;font-size:.85em}.why{color:#444;font-size:.9em}
@media (max-width:700px){body{margin:.8rem}table,tbody,tr,td{display:block;width:auto}thead{display:none}
tr{border:1px solid #ccc;margin-bottom:.8rem}td{border:none;border-top:1px solid #eee}
td[data-label]:before{content:attr(data-label) ": ";font-weight:bold}}
"""


def render(rows: Sequence[StatusRow], *, title: str, generated_at: datetime, notes: Sequence[str] = ()) -> str:
    """The whole page as one HTML string."""
    ordered = sort_rows(rows)
    summary = summarize(ordered)
    counts = ", ".join(f"{count} {VERDICT_LABELS.get(v, v)}" for v, count in sorted(summary.by_verdict.items()))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p id="summary">{summary.total} result(s): {_e(counts) or "none"}. '
        f"Generated {_e(generated_at.isoformat())}.</p>",
        '<table id="status"><thead><tr><th>Release</th><th>Profile</th><th>Runner</th><th>Verdict</th>'
        "<th>Source</th><th>Rebuilder</th><th>Install tree</th><th>Attestation</th></tr></thead><tbody>",
    ]
    parts += [_row(row) for row in ordered]
    parts.append("</tbody></table>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _row(row: StatusRow) -> str:
    source = {True: "verified", False: "NOT verified", None: "—"}[row.source_verified]
    tree = f"<code>{_e(row.tree_sha256[:16])}…</code>" if row.tree_sha256 else "—"
    link = f'<a href="{_e(row.attestation)}">signed</a>' if row.attestation else "—"
    return (
        f'<tr class="row" data-version="{_e(row.version)}" data-verdict="{_e(row.verdict)}">'
        f'<td data-label="Release">{_e(row.version)}</td><td data-label="Profile">{_e(row.profile)}</td>'
        f'<td data-label="Runner">{_e(row.runner)}</td>'
        f'<td class="verdict v-{_e(row.verdict)}">{_explanation(row)}</td>'
        f'<td data-label="Source">{source}</td><td data-label="Rebuilder">{_rebuilder(row)}</td>'
        f'<td data-label="Install tree">{tree}</td><td data-label="Attestation">{link}</td></tr>'
    )


def _rebuilder(row: StatusRow) -> str:
    """The rebuilder's own id; who signed (a key id or a Sigstore identity) is in the tooltip."""
    shown = row.rebuilder or row.signer
    if not shown:
        return "—"
    title = f"signed by {row.signer}" if row.signer else shown
    return f'<span class="rebuilder" title="{_e(title)}">{_e(shown)}</span>'


def _difference(entry: DifferenceRow) -> str:
    """One file: its change, whether a chosen variation explains it, and the comparator's own words."""
    state = "expected" if entry.explained else "UNEXPLAINED"
    category = f' <span class="category">{_e(entry.category)}</span>' if entry.category else ""
    said = f'<div class="why">{_e(entry.explanation)}</div>' if entry.explanation else ""
    return f"<li><code>{_e(entry.path)}</code> ({_e(entry.change)}, {state}){category}{said}</li>"


def _explanation(row: StatusRow) -> str:
    label = _e(VERDICT_LABELS.get(row.verdict, row.verdict))
    lines: list[str] = []
    if row.detail:
        lines.append(f"<li>{_e(row.detail)}</li>")
    if row.variations:
        lines.append(f"<li>second build varied: {_e(', '.join(row.variations))}</li>")
    if row.verdict == "reproducible":
        lines.append("<li>two builds identical in every file, link and mode</li>")
    by_kind: dict[str, list[DifferenceRow]] = {}
    for difference in row.differences:
        by_kind.setdefault(difference.kind, []).append(difference)
    for kind, entries in sorted(by_kind.items()):
        # Manifest kinds are finer than the explanations: elf-executable and elf-shared-object are "elf".
        why = KIND_EXPLANATIONS.get(kind) or KIND_EXPLANATIONS.get(kind.split("-")[0], KIND_EXPLANATIONS["other"])
        files = "".join(_difference(entry) for entry in entries[:50])
        more = f"<li>… and {len(entries) - 50} more</li>" if len(entries) > 50 else ""
        lines.append(f"<li><b>{_e(kind)}</b> ({len(entries)}): {_e(why)}<ul>{files}{more}</ul></li>")
    if not lines:
        return label
    return f"<details><summary>{label}</summary><ul>{''.join(lines)}</ul></details>"
