"""Render an :class:`~verify.audit.AuditReport` as text for a person, as stable JSON, or as an HTML page.

JSON format ``cpython-verify/audit/v2`` is documented in ``docs/audit-json.md``. v2 (from v1): the verdict is
``passed`` (nothing unexplained *and* a coverage that supports it), no longer ``clean`` alone; ``coverage``,
``source`` and ``verdict`` were added, and an installation's absent files have status ``not-installed``.
"""

from __future__ import annotations

import html
import json
import shlex
from typing import Any, Final

from rich.console import Console
from rich.markup import escape

from verify.audit import AuditReport, Finding
from verify.audit.conventions import Convention, convention_of
from verify.audit.coverage import PACKAGE_SET, SUBJECT_PARTS, AuditCoverage, PartCoverage
from verify.common.lines import joined, more_line, shown, verdict_line
from verify.report.console import print_whole
from verify.source.report import closing_line as source_closing_line
from verify.source.report import evidence_lines

_FLAGS_COMPARED: Final = {True: "the same arguments", False: "other arguments", None: "not compared"}
MAX_LISTED: Final = 25
"""Findings listed per group on a terminal; JSON lists all."""
WHERE_THE_REST_ARE: Final = "all of them with --verbose or --json"
MAX_OUT_OF_SCOPE: Final = 12


def _part_summary(part: PartCoverage) -> str:
    """``stdlib 1,456 of 2,421`` (of what make install installs), or ``config 0 of 3 present`` when unknown."""
    if part.installs is not None:
        return f"{part.part} {part.compared:,} of {part.installs:,}"
    return f"{part.part} {part.compared:,} of {part.present:,} present"


def audit_verdict_line(report: AuditReport) -> str:
    """The closing line: passed or failed, how many unexplained of how many compared, per part, and why a
    coverage does not support a pass."""
    coverage = report.coverage
    compared = coverage.compared if coverage is not None else 0
    parts = ", ".join(_part_summary(part) for part in coverage.parts) if coverage is not None else "not measured"
    detail = f"{len(report.unexplained):,} unexplained of {compared:,} compared ({parts})"
    shortfalls = report.shortfalls()
    if shortfalls:
        detail += "; " + "; ".join(shortfalls)
    return verdict_line("AUDIT PASSED" if report.passed else "AUDIT FAILED", detail)


def next_steps(report: AuditReport, *, diffs_shown: bool, work_dir: str | None = None) -> list[str]:
    """What the person reading the report can do next, one line each (none when there is nothing to do).

    ``diffs_shown`` says whether this report already shows the unexplained files' diffs; ``work_dir`` is where
    the verified source was kept (``--work-dir``), to diff by hand.
    """
    steps = []
    unexplained_text = [f for f in report.sources.unexplained_modified if f.diff]
    changed = len(report.sources.unexplained_modified)
    if report.distribution and report.patch_series is None and changed:
        steps.append(
            f"{changed:,} changed file(s) are unexplained and the {report.distribution} "
            "conventions are in use: give the distribution's patch series with --patches DIR (for Debian, "
            "debian/patches of the source package, e.g. from apt-get source) to attribute changes to its patches"
        )
    if unexplained_text and not diffs_shown:
        steps.append(
            f"see what changed in the {len(unexplained_text):,} unexplained text file(s): --diff (or --html FILE)"
        )
    if work_dir is not None and report.sources.unexplained_modified:
        steps.append(f"the verified source and the unpacked inputs are kept in {work_dir} to diff by hand")
    return steps


def _conventions_used(report: AuditReport) -> dict[str, dict[str, Any]]:
    """Every convention that explained something, with what it does and the paths it explained."""
    used: dict[str, list[str]] = {}
    for finding in (*report.sources.modified, *report.sources.expected_extra):
        if finding.convention:
            used.setdefault(finding.convention, []).append(finding.path)
    # The generic transform and the missing groups are conventions where the distribution's table says so.
    if any(f.transform == "shebang-rewritten" for f in report.sources.modified) and _convention(
        report, "shebang-rewrite"
    ):
        used.setdefault("shebang-rewrite", []).extend(
            f.path for f in report.sources.modified if f.transform == "shebang-rewritten"
        )
    for group in report.sources.missing_groups:
        if group.convention and _convention(report, group.convention):
            used.setdefault(group.convention, [])
    described = {}
    for key, paths in sorted(used.items()):
        convention = _convention(report, key)
        if convention is not None:
            described[key] = {
                "title": convention.title,
                "effect": convention.effect,
                "distribution": convention.distribution,
                "source": convention.source,
                "paths": sorted(paths),
            }
    return described


def _convention(report: AuditReport, key: str) -> Convention | None:
    """The convention ``key`` of the table that applied to ``report``."""
    return convention_of(report.distribution, key)


def audit_to_dict(report: AuditReport) -> dict[str, Any]:
    """The JSON-ready form of an audit report (:class:`verify.report.audit_document.AuditDocument`)."""
    from verify.report.audit_document import AuditDocument

    package_set = report.coverage is not None and report.coverage.subject == PACKAGE_SET
    return AuditDocument.of(
        report, verdict=audit_verdict_line(report), conventions=_conventions_used(report), package_set=package_set
    ).to_json()


def audit_to_json(report: AuditReport) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(audit_to_dict(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _describe(finding: Finding, distribution: str | None = None) -> str:
    """The detail of a finding, with its convention's title (from ``distribution``'s table) when one explained it."""
    detail = finding.detail
    convention = convention_of(distribution, finding.convention) if finding.convention else None
    if convention is not None:
        title = convention.title
        detail = f"{title}; {detail}" if detail and finding.status != "convention" else title
    return detail


def _group(
    console: Console,
    title: str,
    findings: tuple[Finding, ...] | list[Finding],
    style: str,
    verbose: bool,
    distribution: str | None = None,
) -> None:
    if not findings:
        return
    console.print(f"  [{style}]{title}: {len(findings)}[/]")
    head, hidden = shown(findings, None if verbose else MAX_LISTED)
    for finding in head:
        detail = _describe(finding, distribution)
        suffix = f"  ({escape(detail)})" if detail else ""
        console.print(f"    {escape(finding.path)}{suffix}", highlight=False)
    if hidden:
        console.print(f"    [dim]{escape(more_line(hidden, WHERE_THE_REST_ARE))}[/]", highlight=False)


def _coverage_lines(coverage: AuditCoverage) -> list[str]:
    """The coverage table as text: one line per part, then the subject."""
    lines = []
    for part in coverage.parts:
        installs = f"{part.installs:,}" if part.installs is not None else "?"
        absent = f", {part.absent:,} absent" if part.absent else ""
        unaccounted = (
            f" ({part.unaccounted:,} unaccounted for)"
            if part.unaccounted and part.part in SUBJECT_PARTS and coverage.subject != PACKAGE_SET
            else ""
        )
        lines.append(
            f"  {part.part:<12} {part.compared:>6,} compared of {installs:>6} make install installs; "
            f"{part.present:,} present{absent}{unaccounted}: {part.how}"
        )
    if coverage.subject == PACKAGE_SET:
        lines.append(
            "  subject: a set of packages (its share of an installation): what it lacks is not in this package set"
        )
    else:
        lines.append(
            "  subject: an installation: what make install installs and the input lacks must be accounted "
            "for (a package that ships it, a configure option that leaves it out)"
        )
    return lines


def _shell_lines(command: str, width: int | None) -> str:
    """``command`` as one line, or, when wider than ``width``, as lines of at most ``width`` columns joined
    by `` \\`` continuations (indented like its first line), so that a bounded report's command still pastes
    into a shell. Quoting is kept as written; a word wider than ``width`` stays whole on its own line."""
    if width is None or len(command) <= width:
        return command
    indent = command[: len(command) - len(command.lstrip())]
    try:
        lexer = shlex.shlex(command, posix=False)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: show it as written
        return command
    lines: list[str] = []
    line = indent
    for word in words:
        candidate = f"{line} {word}" if line.strip() else f"{line}{word}"
        if line.strip() and len(candidate) + 2 > width:
            lines.append(line + " \\")
            line = f"{indent}    {word}"
        else:
            line = candidate
    lines.append(line)
    return "\n".join(lines)


def _diff_lines(finding: Finding) -> list[str]:
    """A finding's unified diff, then what was left out of it (or why there is none)."""
    lines = list(finding.diff)
    if finding.diff_note:
        lines.append(f"[{finding.path}: {finding.diff_note}]")
    return lines


def render_audit_text(
    report: AuditReport,
    console: Console,
    *,
    verbose: bool = False,
    diffs: bool = False,
    work_dir: str | None = None,
) -> None:
    """Print the audit: the source it was compared with, the coverage, one section per question, findings
    named file by file, the unexplained (with their diffs when ``diffs`` or ``verbose``), the next steps and
    one closing verdict line. ``work_dir`` is where ``--work-dir`` kept the inputs and the verified source."""
    diffs = diffs or verbose
    s, p, e = report.sources, report.pyc, report.elf
    console.print(
        f"audit of Python {escape(report.version)} at {escape(report.prefix)} ({escape(report.stdlib)})",
        highlight=False,
    )
    for described in report.inputs:
        console.print(f"  input: {escape(described)}", highlight=False)
    if report.patch_series:
        console.print(f"  patches: {escape(report.patch_series)}", highlight=False)
    if report.distribution:
        console.print(f"  conventions: {escape(report.distribution)} (docs/audit.md)")
    if report.source is not None:
        console.rule("the verified source the installation is compared with", align="left")
        for line in evidence_lines(report.source, recipe=False):
            console.print(f"  {escape(line)}", highlight=False)
        console.print(f"  {escape(source_closing_line(report.source))}", highlight=False)
    if report.coverage is not None:
        console.rule("coverage: what make install installs, compared part by part", align="left")
        for line in _coverage_lines(report.coverage):
            console.print(escape(line), highlight=False)
    console.rule("1. files from the source (Lib/, Include/) against the verified tree", align="left")
    console.print(f"  {s.checked:,} compared byte for byte, {s.identical:,} identical")
    by_status: dict[str, list[Finding]] = {}
    for finding in s.modified:
        by_status.setdefault(finding.status, []).append(finding)
    _group(console, "patched (every changed line from a patch)", by_status.get("patched", []), "green", verbose)
    _group(console, "transformed by packaging", by_status.get("transformed", []), "green", verbose)
    _group(console, "patched and transformed", by_status.get("patched+transformed", []), "green", verbose)
    _group(
        console,
        "changed by a distribution convention",
        by_status.get("convention", []),
        "green",
        verbose,
        report.distribution,
    )
    _group(console, "modified, UNEXPLAINED", by_status.get("modified", []), "red", verbose)
    if s.missing_groups:
        package_set = report.coverage is not None and report.coverage.subject == PACKAGE_SET
        title = "not in this package set" if package_set else "not installed"
        console.print(f"  [dim]{title}: {len(s.missing):,} file(s)[/]")
        for group in s.missing_groups:
            why = (
                f" ({group.accounted_for})"
                if group.accounted_for
                else ("" if package_set else " (nothing accounts for it)")
            )
            console.print(f"    {escape(group.group)}: {group.count:,}{escape(why)}", highlight=False)
        if verbose:
            for finding in s.missing:
                console.print(f"      {escape(finding.path)}", highlight=False)
    _group(console, "explained extras", s.expected_extra, "dim", verbose, report.distribution)
    _group(console, "extra, UNEXPLAINED (neither in the source nor made by make install)", s.extra, "red", verbose)
    conventions = _conventions_used(report)
    if conventions:
        console.rule("conventions that explained files", align="left")
        for key, used in conventions.items():
            console.print(f"  [bold]{escape(used['title'])}[/] ({key}): {escape(used['effect'])}", soft_wrap=True)
    console.rule("2. .pyc against their sources", align="left")
    console.print(f"  {p.checked:,} paired with a source, {p.header_ok:,} headers match")
    console.print(f"  recompiled: {p.recompiled:,}, equivalent: {p.equivalent:,}; {escape(p.reference)}")
    _group(console, "stale headers", p.stale, "red", verbose)
    _group(console, "orphan / sourceless .pyc", p.orphans, "red", verbose)
    _group(console, ".pyc in unexpected places", p.unexpected, "red", verbose)
    _group(console, "unreadable .pyc", p.unreadable, "red", verbose)
    _group(console, "code differs from the recompiled source", p.mismatched, "red", verbose)
    console.rule("3. ELF files against a rebuild", align="left")
    console.print(f"  {e.checked:,} ELF file(s), {e.matching:,} identical to the rebuild; {escape(e.note)}")
    _group(console, "differ from the rebuild", e.differing, "red", verbose)
    _group(console, "not in the rebuild", e.not_in_rebuild, "red", verbose)
    console.rule("4. configure arguments (to rebuild like this installation)", align="left")
    if report.config_args is None:
        console.print("  [yellow]not recorded[/]")
    else:
        console.print(f"  from {escape(report.sysconfigdata or '')}:")
        configure = _shell_lines(f"  ./configure {report.config_args}", getattr(console, "line_width", None))
        console.print(escape(configure), highlight=False, soft_wrap=True)
    if report.recipe_config_args:
        console.print(
            f"  the recipe's: ./configure {escape(' '.join(report.recipe_config_args))}",
            highlight=False,
            soft_wrap=True,
        )
    if e.rebuild_config_args is not None:
        console.print(
            f"  the rebuild's ({_FLAGS_COMPARED[e.config_args_match]}): ./configure "
            f"{escape(shlex.join(e.rebuild_config_args))}",
            highlight=False,
            soft_wrap=True,
        )
    if report.out_of_scope:
        outside = joined(report.out_of_scope, None if verbose else MAX_OUT_OF_SCOPE, WHERE_THE_REST_ARE)
        console.print(f"[dim]out of scope (outside the installation): {escape(outside)}[/]", highlight=False)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if report.unexplained:
        console.rule(f"[red]UNEXPLAINED: {len(report.unexplained):,}[/]", align="left")
        head, hidden = shown(report.unexplained, None if verbose else MAX_LISTED)
        for path in head:
            console.print(f"  {escape(path)}", highlight=False)
        if hidden:
            console.print(f"  {escape(more_line(hidden, WHERE_THE_REST_ARE))}", highlight=False)
    with_diff = [f for f in report.sources.unexplained_modified if f.diff or f.diff_note]
    if diffs and with_diff:
        console.rule(f"diffs of the unexplained files against the verified source ({len(with_diff):,})", align="left")
        for finding in with_diff:
            for line in _diff_lines(finding):
                console.print(escape(line), highlight=False, markup=False)
    # The next steps come just before the verdict, which stays the report's last line (tail -1).
    for step in next_steps(report, diffs_shown=diffs, work_dir=work_dir):
        console.print(f"next: {escape(step)}", highlight=False)
    style = "bold green" if report.passed else "bold red"
    print_whole(console, f"[{style}]{escape(audit_verdict_line(report))}[/]", highlight=False, soft_wrap=True)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{font-size:1.2em;padding:.6em 1em;border-radius:6px;margin:1em 0}
.same{background:#e3f6e8;color:#17602a} .differ{background:#fde8e8;color:#8a1c1c}
table{border-collapse:collapse;margin:.6em 0} td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
th{background:#f4f5f7} code{font-family:ui-monospace,monospace;font-size:.9em}
.cat{display:inline-block;border-radius:3px;padding:0 .45em;margin-left:.4em;font-size:.85em;background:#eef}
.cat.modified,.cat.extra,.cat.unexplained{background:#fdd}
.cat.patched,.cat.transformed,.cat.convention{background:#e3f6e8}
.note{color:#555;font-size:.9em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _rows(findings: tuple[Finding, ...] | list[Finding], distribution: str | None = None) -> str:
    rows = [
        f"<tr><td><code>{_e(f.path)}</code></td><td><span class='cat {_e(f.status.split('+')[0])}'>"
        f"{_e(f.status)}</span></td><td>{_e(_describe(f, distribution))}</td></tr>"
        for f in findings
    ]
    return "<table><tr><th>path</th><th>status</th><th>why</th></tr>" + "".join(rows) + "</table>"


def audit_to_html(report: AuditReport, *, work_dir: str | None = None) -> str:
    """A self-contained page (no scripts, no external resources) in the style of ``compare --html``, with the
    unexplained files' diffs; ``work_dir`` as for :func:`render_audit_text`."""
    s, p, e = report.sources, report.pyc, report.elf
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>cpython-verify audit: {'passed' if report.passed else 'FAILED'}, {len(report.unexplained)} "
        "unexplained</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>cpython-verify: audit of Python {_e(report.version)} at <code>{_e(report.prefix)}</code></h1>",
        "<table>",
        *(f"<tr><td>input</td><td>{_e(described)}</td></tr>" for described in report.inputs),
        f"<tr><td>patches</td><td>{_e(report.patch_series or 'none given')}</td></tr>",
        f"<tr><td>conventions</td><td>{_e(report.distribution or 'none')}</td></tr>",
        "</table>",
    ]
    parts.append(f"<div class='verdict {'same' if report.passed else 'differ'}'>{_e(audit_verdict_line(report))}</div>")
    for step in next_steps(report, diffs_shown=True, work_dir=work_dir):
        parts.append(f"<p class=note>next: {_e(step)}</p>")
    if report.unexplained:
        parts.append(f"<h2>Unexplained ({len(report.unexplained)} path(s))</h2><ul>")
        parts.extend(f"<li><code>{_e(path)}</code></li>" for path in report.unexplained)
        parts.append("</ul>")
    with_diff = [f for f in report.sources.unexplained_modified if f.diff or f.diff_note]
    if with_diff:
        parts.append("<h2>Diffs of the unexplained files against the verified source</h2>")
        parts.extend(
            f"<details open><summary><code>{_e(f.path)}</code></summary><pre>{_e(chr(10).join(_diff_lines(f)))}"
            "</pre></details>"
            for f in with_diff
        )
    if report.source is not None:
        parts.append(
            "<h2>The verified source</h2><pre>"
            + _e("\n".join([*evidence_lines(report.source, recipe=False), source_closing_line(report.source)]))
            + "</pre>"
        )
    if report.coverage is not None:
        parts.append(
            "<h2>Coverage: what make install installs, compared part by part</h2><table><tr><th>part</th>"
            "<th>make install installs</th><th>present</th><th>compared</th><th>absent</th>"
            "<th>unaccounted for</th><th>how</th></tr>"
        )
        parts.extend(
            f"<tr><td>{_e(c.part)}</td><td>{_e('?' if c.installs is None else c.installs)}</td>"
            f"<td>{c.present}</td><td>{c.compared}</td><td>{c.absent}</td><td>{c.unaccounted}</td>"
            f"<td>{_e(c.how)}</td></tr>"
            for c in report.coverage.parts
        )
        parts.append(f"</table><p class=note>subject: {_e(report.coverage.subject)}</p>")
    parts.append(
        f"<h2>Files from the source</h2><p>{s.checked} compared byte for byte, {s.identical} identical, "
        f"{len(s.modified)} modified.</p>"
    )
    if s.modified:
        parts.append(_rows(s.modified, report.distribution))
    if s.extra:
        parts.append("<h2>Unexplained extras</h2>" + _rows(s.extra))
    if s.expected_extra:
        parts.append("<h2>Explained extras</h2>" + _rows(s.expected_extra, report.distribution))
    if s.missing_groups:
        title = (
            "Not in this package set"
            if report.coverage is not None and report.coverage.subject == PACKAGE_SET
            else "Not installed"
        )
        parts.append(f"<h2>{title}</h2><table><tr><th>group</th><th>files</th><th>accounted for by</th></tr>")
        parts.extend(
            f"<tr><td>{_e(g.group)}</td><td>{g.count}</td><td>{_e(g.accounted_for or 'nothing')}</td></tr>"
            for g in s.missing_groups
        )
        parts.append("</table>")
    conventions = _conventions_used(report)
    if conventions:
        parts.append("<h2>Conventions</h2><table><tr><th>convention</th><th>what it does</th><th>files</th></tr>")
        parts.extend(
            f"<tr><td>{_e(c['title'])}</td><td>{_e(c['effect'])}</td><td>{len(c['paths'])}</td></tr>"
            for c in conventions.values()
        )
        parts.append("</table>")
    pyc_findings = [*p.stale, *p.orphans, *p.unexpected, *p.unreadable, *p.mismatched]
    parts.append(
        f"<h2>.pyc</h2><p>{p.checked} paired with a source, {p.header_ok} headers match; "
        f"recompiled {p.recompiled}, equivalent {p.equivalent}. {_e(p.reference)}</p>"
    )
    if pyc_findings:
        parts.append(_rows(pyc_findings))
    parts.append(
        f"<h2>ELF files</h2><p>{e.checked} ELF file(s), {e.matching} identical to the rebuild. {_e(e.note)}</p>"
    )
    if e.differing or e.not_in_rebuild:
        parts.append(_rows([*e.differing, *e.not_in_rebuild]))
    parts.append(
        "<h2>Configure arguments</h2><table>"
        f"<tr><td>installation</td><td><code>{_e(report.config_args or 'not recorded')}</code></td></tr>"
        f"<tr><td>recipe</td><td><code>{_e(' '.join(report.recipe_config_args))}</code></td></tr>"
        + (
            ""
            if e.rebuild_config_args is None
            else f"<tr><td>rebuild ({_FLAGS_COMPARED[e.config_args_match]})</td>"
            f"<td><code>{_e(shlex.join(e.rebuild_config_args))}</code></td></tr>"
        )
        + "</table>"
    )
    if report.out_of_scope:
        parts.append("<h2>Out of scope</h2><p class=note>" + ", ".join(_e(x) for x in report.out_of_scope) + "</p>")
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li class=note>{_e(note)}</li>" for note in report.notes)
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
