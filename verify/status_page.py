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
class StatusRow:
    """One line of the status table."""

    version: str
    profile: str
    runner: str
    verdict: str
    """A key of :data:`VERDICT_LABELS`."""
    source_verified: bool | None = None
    signer: str | None = None
    attested_at: str | None = None
    tree_sha256: str | None = None
    attestation: str | None = None
    """Link (relative path or URL) to the signed attestation."""
    differences: tuple[tuple[str, str, str, bool], ...] = ()
    """(path, kind, change, explained) for each differing path."""
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
        attested_at=predicate.attested_at,
        tree_sha256=predicate.result.tree_sha256,
        attestation=attestation,
        differences=tuple((d.path, d.kind, d.change, d.explained) for d in predicate.result.differences),
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
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;background:#fff}
h1{font-size:1.5rem}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}code{font-size:.85em}
.verdict{font-weight:bold;white-space:nowrap}
.v-reproducible{background:#c8f7c5}.v-explained{background:#fff3b0}.v-differs{background:#f9b4b4}
.v-built-once{background:#dde7f7}.v-missing,.v-rejected{background:#e6e6e6}
details summary{cursor:pointer}ul{margin:.3rem 0;padding-left:1.2rem}
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
        f"<td>{_e(row.version)}</td><td>{_e(row.profile)}</td><td>{_e(row.runner)}</td>"
        f'<td class="verdict v-{_e(row.verdict)}">{_explanation(row)}</td>'
        f"<td>{source}</td><td>{_signer(row.signer)}</td><td>{tree}</td><td>{link}</td></tr>"
    )


def _signer(signer: str | None) -> str:
    if not signer:
        return "—"
    # Key ids are 64 hex digits: show a prefix, keep the whole id in the tooltip.
    shown = signer if len(signer) <= 28 else signer[:27] + "…"
    return f'<span title="{_e(signer)}">{_e(shown)}</span>'


def _explanation(row: StatusRow) -> str:
    label = _e(VERDICT_LABELS.get(row.verdict, row.verdict))
    lines: list[str] = []
    if row.detail:
        lines.append(f"<li>{_e(row.detail)}</li>")
    if row.variations:
        lines.append(f"<li>second build varied: {_e(', '.join(row.variations))}</li>")
    if row.verdict == "reproducible":
        lines.append("<li>two builds identical in every file, link and mode</li>")
    by_kind: dict[str, list[tuple[str, str, bool]]] = {}
    for path, kind, change, explained in row.differences:
        by_kind.setdefault(kind, []).append((path, change, explained))
    for kind, entries in sorted(by_kind.items()):
        why = KIND_EXPLANATIONS.get(kind, KIND_EXPLANATIONS["other"])
        files = "".join(
            f"<li><code>{_e(path)}</code> ({_e(change)}{', expected' if explained else ', UNEXPLAINED'})</li>"
            for path, change, explained in entries[:50]
        )
        more = f"<li>… and {len(entries) - 50} more</li>" if len(entries) > 50 else ""
        lines.append(f"<li><b>{_e(kind)}</b> ({len(entries)}): {_e(why)}<ul>{files}{more}</ul></li>")
    if not lines:
        return label
    return f"<details><summary>{label}</summary><ul>{''.join(lines)}</ul></details>"
