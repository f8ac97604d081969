"""Render a :class:`~verify.compare.model.Comparison`: rich text, stable JSON, a self-contained HTML page.

The JSON format (``cpython-verify/compare/v1``) is documented in ``docs/compare-json.md``; within v1
fields are only added, never renamed or removed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from verify.common.lines import listed, verdict_line
from verify.compare.model import CHANGES, Comparison, Difference, FileComparison

MAX_TEXT_DETAIL_LINES: Final = 12
"""Detail lines per file on a terminal; JSON and HTML carry every (already capped) line."""


def verdict_to_dict(verdict: FileComparison | None) -> dict[str, Any] | None:
    """The JSON form of one comparator verdict (``comparison`` in docs/compare-json.md)."""
    from verify.report.compare_document import VerdictDocument

    document = VerdictDocument.of(verdict)
    return None if document is None else document.to_json()


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """The JSON-ready form of a comparison (:class:`verify.report.compare_document.ComparisonDocument`)."""
    from verify.report.compare_document import ComparisonDocument

    return ComparisonDocument.of(comparison, comparison_verdict_line(comparison)).to_json()


def coverage_summary(comparison: Comparison) -> str:
    """What was compared, in counts: paths in both sides out of each side's entries, and those only on one."""
    summary = (
        f"{comparison.in_both:,} path(s) in both compared, {comparison.same_in_both:,} the same; "
        f"{comparison.only_in_a:,} only in A, {comparison.only_in_b:,} only in B "
        f"(A: {comparison.a.entries:,} entries, B: {comparison.b.entries:,} entries)"
    )
    return summary


def comparison_verdict_line(comparison: Comparison) -> str:
    """The closing line: identical, different, or nothing compared, with what was compared."""
    if not comparison.compared_anything:
        return verdict_line("NOTHING COMPARED", f"neither side has a single entry ({coverage_summary(comparison)})")
    if comparison.identical:
        return verdict_line(
            "IDENTICAL", f"every path, mode, link target and sha256 is the same: {coverage_summary(comparison)}"
        )
    return verdict_line("DIFFERENT", f"{len(comparison.differences):,} path(s) differ: {coverage_summary(comparison)}")


def comparison_to_json(comparison: Comparison) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(comparison_to_dict(comparison), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- terminal text


def _change_summary(difference: Difference) -> str:
    parts = []
    for change in difference.changes:
        if change == "mode" and difference.a and difference.b:
            parts.append(f"mode {difference.a.mode:04o} -> {difference.b.mode:04o}")
        elif change == "link-target" and difference.a and difference.b:
            parts.append(f"link {difference.a.target} -> {difference.b.target}")
        else:
            parts.append(change)
    return ", ".join(parts)


def render_text(comparison: Comparison, console: Console, *, verbose: bool = False) -> None:
    """Print a comparison for a person: the sides, per-kind counts, each difference explained, and one closing
    verdict line with what was compared."""
    a, b = comparison.a, comparison.b
    console.print(f"A: {escape(a.location)} ({a.source}, {a.entries:,} entries)")
    console.print(f"B: {escape(b.location)} ({b.source}, {b.entries:,} entries)")
    if not comparison.identical:
        console.print(f"[bold red]{len(comparison.differences):,} path(s) differ[/]")
    if comparison.build_paths:
        console.print(
            f"build paths: [yellow]{escape(comparison.build_paths[0])}[/] vs "
            f"[yellow]{escape(comparison.build_paths[1])}[/]; build both under one fixed path"
        )
    if not comparison.identical:
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("kind")
        for change in CHANGES:
            table.add_column(change, justify="right")
        for kind, counts in comparison.counts_by_kind().items():
            table.add_row(kind, *[str(counts.get(change, "")) for change in CHANGES])
        console.print(table)
    by_kind: dict[str, list[Difference]] = {}
    for difference in comparison.differences:
        by_kind.setdefault(difference.kind, []).append(difference)
    limit = None if verbose else MAX_TEXT_DETAIL_LINES
    for kind, differences in sorted(by_kind.items()):
        console.rule(f"{kind} ({len(differences)})", align="left")
        for difference in differences:
            console.print(f"[bold]{escape(difference.path)}[/]: {escape(_change_summary(difference))}")
            verdict = difference.comparison
            if verdict is not None:
                console.print(f"  [cyan]{verdict.category}[/] ({verdict.comparator}): {escape(verdict.explanation)}")
                for line in listed(
                    verdict.details, limit, "all of them with --verbose, --json or --html", indent="    "
                ):
                    console.print(escape(line), highlight=False)
            if difference.diffoscope:
                lines = difference.diffoscope.splitlines()
                for line in listed(
                    lines, None if limit is None else limit * 2, "all of it with --verbose or --json", indent="    "
                ):
                    console.print(f"[dim]{escape(line)}[/]", highlight=False)
    for note in comparison.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    style = "bold green" if comparison.passed else "bold red"
    console.print(f"[{style}]{escape(comparison_verdict_line(comparison))}[/]", highlight=False)


# --------------------------------------------------------------------------- HTML

_CSS: Final = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d232a;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{font-size:1.2em;padding:.6em 1em;border-radius:6px;margin:1em 0}
.same{background:#e3f6e8;color:#17602a} .differ{background:#fde8e8;color:#8a1c1c}
table{border-collapse:collapse;margin:.6em 0} td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left} th{background:#f4f5f7}
.sides td{text-align:left;font-family:ui-monospace,monospace;font-size:.9em;overflow-wrap:anywhere}
details{margin:.3em 0;border:1px solid #e4e6ea;border-radius:5px;padding:.35em .7em}
summary{cursor:pointer} summary code{font-weight:600}
.cat{display:inline-block;border-radius:3px;padding:0 .45em;margin-left:.4em;font-size:.85em;background:#eef}
.cat.semantic,.cat.code,.cat.content,.cat.kind-changed{background:#fdd}
.cat.debug-info,.cat.build-path{background:#ffe9c2}
.cat.header-only,.cat.reference-flags-only,.cat.path-only{background:#e2f0ff}
.changes{color:#666;font-size:.9em;margin-left:.4em} .why{margin:.4em 0}
pre{background:#f7f7f9;padding:.6em;overflow-x:auto;font-size:.85em;max-height:30em}
.note{color:#555;font-size:.9em}
.explained{background:#fff4d6;color:#6b4e00} .verdict p{margin:.2em 0;font-size:.85em}
.expected{background:#fff4d6} .unexplained{background:#fdd}
p.expected,p.unexplained{padding:.2em .5em;border-radius:3px}
"""


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _surrogate_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    # os.fsdecode maps an undecodable byte 0xNN of a file name to U+DCNN: show the byte as the name has it.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _visible(text: str) -> str:
    """``text`` without lone surrogates, which UTF-8 cannot encode (a non-UTF-8 file name carries them)."""
    return _SURROGATE.sub(_surrogate_escape, text)


def _e(text: object) -> str:
    return html.escape(_visible(str(text)), quote=True)


@dataclass(frozen=True, slots=True)
class HtmlContext:
    """What the producer of a comparison knows beyond it, for :func:`render_html`.

    ``rebuild --twice`` knows which build each side is, words its own verdict (the record's), and has the
    recipe's reason for each difference a variation is documented to cause; ``compare`` knows none of it.
    """

    title: str
    """The page's heading, e.g. the release, profile and variations."""
    side_names: tuple[str, str] = ("", "")
    """What A and B are (``baseline``, ``varied``), shown beside the labels."""
    verdict: tuple[str, ...] = ()
    """The verdict in the producer's words: a headline, then supporting lines. Empty: compare's own words."""
    verdict_class: str = ""
    """``same``, ``explained`` or ``differ``: the verdict's colour (by default: same when identical)."""
    expected: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    """Path -> ``(variation, why)``: what explains the difference there."""
    unexplained: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Path -> the changes nothing explains (a path not listed, or with none, needs no explanation)."""


def render_html(comparison: Comparison, context: HtmlContext | None = None) -> str:
    """A self-contained page (no scripts, no external resources): summary, per-kind counts, explanations.

    With a ``context``, the page carries its title, verdict and per-path explanations as well."""
    a, b = comparison.a, comparison.b
    title = (
        f"cpython-verify: {context.title}"
        if context
        else (f"cpython-verify compare: {len(comparison.differences)} difference(s)")
    )
    names = context.side_names if context else ("", "")
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>cpython-verify: {_e(context.title) if context else 'comparison'}</h1>",
        "<table class=sides>",
        *(
            f"<tr><td>{side.label}{f' ({_e(name)})' if name else ''}</td><td>{_e(side.location)}</td>"
            f"<td>{_e(side.source)}, {side.entries} entries</td>"
            f"<td>manifest sha256 {_e(side.manifest_sha256[:16])}…</td></tr>"
            for side, name in zip((a, b), names, strict=True)
        ),
        "</table>",
        f"<p class=note>{_e(comparison_verdict_line(comparison))}</p>",
    ]
    if context and context.verdict:
        headline, *more = context.verdict
        colour = context.verdict_class or ("same" if comparison.identical else "differ")
        parts.append(f"<div class='verdict {_e(colour)}'>{_e(headline)}")
        parts.extend(f"<p>{_e(line)}</p>" for line in more)
        if comparison.build_paths:
            parts.append(
                f"<p>Build paths <code>{_e(comparison.build_paths[0])}</code> vs "
                f"<code>{_e(comparison.build_paths[1])}</code>.</p>"
            )
        parts.append("</div>")
    elif comparison.identical:
        parts.append("<div class='verdict same'>Identical: every path, mode, link target and sha256 is the same.</div>")
    else:
        parts.append(f"<div class='verdict differ'>{len(comparison.differences)} path(s) differ.")
        if comparison.build_paths:
            parts.append(
                f" Build paths <code>{_e(comparison.build_paths[0])}</code> vs "
                f"<code>{_e(comparison.build_paths[1])}</code>: build both under one fixed path."
            )
        parts.append("</div>")
    if not comparison.identical:
        parts.append("<h2>Differences by kind</h2><table><tr><th>kind</th>")
        parts.extend(f"<th>{_e(change)}</th>" for change in CHANGES)
        parts.append("</tr>")
        for kind, counts in comparison.counts_by_kind().items():
            cells = "".join(f"<td>{counts.get(change, '')}</td>" for change in CHANGES)
            parts.append(f"<tr><td>{_e(kind)}</td>{cells}</tr>")
        parts.append("</table>")
        categories = comparison.counts_by_category()
        if categories:
            parts.append("<h2>Why the contents differ</h2><table><tr><th>category</th><th>files</th></tr>")
            parts.extend(
                f"<tr><td><span class='cat {_e(c)}'>{_e(c)}</span></td><td>{n}</td></tr>" for c, n in categories.items()
            )
            parts.append("</table>")
        by_kind: dict[str, list[Difference]] = {}
        for difference in comparison.differences:
            by_kind.setdefault(difference.kind, []).append(difference)
        for kind, differences in sorted(by_kind.items()):
            parts.append(f"<h2>{_e(kind)} ({len(differences)})</h2>")
            parts.extend(_difference_html(d, context) for d in differences)
    if comparison.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li class=note>{_e(note)}</li>" for note in comparison.notes)
        parts.append("</ul>")
    parts.append("</body></html>\n")
    # Every value above went through _e; this keeps the page encodable should one ever be added without it.
    return _visible("".join(parts))


def _difference_html(difference: Difference, context: HtmlContext | None = None) -> str:
    verdict = difference.comparison
    badge = f"<span class='cat {_e(verdict.category)}'>{_e(verdict.category)}</span>" if verdict else ""
    expected = context.expected.get(difference.path, ()) if context else ()
    unexplained = context.unexplained.get(difference.path, ()) if context else ()
    if unexplained:
        badge += "<span class='cat unexplained'>unexplained</span>"
    elif expected:
        badge += "<span class='cat expected'>explained</span>"
    head = (
        f"<summary><code>{_e(difference.path)}</code>{badge}"
        f"<span class=changes>{_e(_change_summary(difference))}</span></summary>"
    )
    body: list[str] = []
    if verdict is not None:
        body.append(f"<p class=why>{_e(verdict.explanation)} <span class=note>({_e(verdict.comparator)})</span></p>")
    # The recipe's reason sits next to the comparator's: what differs, then why that was expected.
    body.extend(
        f"<p class=expected>Expected with the variation <b>{_e(variation)}</b>; the recipe says: {_e(why)}</p>"
        for variation, why in expected
    )
    if unexplained:
        body.append(
            f"<p class=unexplained>Not explained: no chosen variation is documented to cause "
            f"{_e(', '.join(unexplained))} here.</p>"
        )
    if verdict is not None and verdict.details:
        body.append(f"<pre>{_e(chr(10).join(verdict.details))}</pre>")
    for label, entry in (("A", difference.a), ("B", difference.b)):
        if entry is not None:
            extra = f", target {entry.target}" if entry.target else ""
            extra += f", {entry.pyc.describe()}" if entry.pyc else ""
            digest = f", sha256 {entry.sha256[:16]}…" if entry.sha256 else ""
            body.append(
                f"<div class=note>{label}: {_e(entry.kind)}, mode {entry.mode:04o}, {entry.size} bytes"
                f"{_e(digest)}{_e(extra)}</div>"
            )
    if difference.diffoscope:
        body.append(f"<details><summary>diffoscope</summary><pre>{_e(difference.diffoscope)}</pre></details>")
    return f"<details>{head}{''.join(body)}</details>"
