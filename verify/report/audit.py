"""Render an :class:`~verify.audit.AuditReport` as text for a person, as stable JSON, or as an HTML page.

JSON format ``cpython-verify/audit/v1`` is documented in ``docs/audit-json.md``.
"""

from __future__ import annotations

import html
import json
import shlex
from dataclasses import asdict
from typing import Any, Final

from rich.console import Console
from rich.markup import escape

from verify.audit import AuditReport, Finding
from verify.audit.conventions import Convention, convention_of
from verify.report.compare import verdict_to_dict

FORMAT: Final = "cpython-verify/audit/v1"
_FLAGS_COMPARED: Final = {True: "the same arguments", False: "other arguments", None: "not compared"}
MAX_LISTED: Final = 25
"""Findings listed per group on a terminal; JSON lists all."""


def _findings(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    """Each finding's fields; ``comparison`` only where there can be one (ELF files against a rebuild)."""
    listed = []
    for finding in findings:
        fields = asdict(finding)
        del fields["comparison"]
        listed.append(fields)
    return listed


def _elf_findings(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    """ELF findings with compare's verdict in compare's JSON form (docs/compare-json.md), or null."""
    return [
        {**fields, "comparison": verdict_to_dict(finding.comparison)}
        for fields, finding in zip(_findings(findings), findings, strict=True)
    ]


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
    if report.sources.missing_groups and _convention(report, "split-packages"):
        used.setdefault("split-packages", [])
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
    """The JSON-ready form of an audit report."""
    s, p, e = report.sources, report.pyc, report.elf
    return {
        "format": FORMAT,
        "unexplained": list(report.unexplained),
        "clean": report.clean,
        "prefix": report.prefix,
        "version": report.version,
        "stdlib": report.stdlib,
        "inputs": list(report.inputs),
        "packages": list(report.packages),
        "distribution": report.distribution,
        "patch_series": report.patch_series,
        "sources": {
            "checked": s.checked,
            "identical": s.identical,
            "modified": _findings(s.modified),
            "missing": _findings(s.missing),
            "missing_by_package": s.missing_by_package(),
            "not_in_package_set": [asdict(group) for group in s.missing_groups],
            "extra": _findings(s.extra),
            "expected_extra": _findings(s.expected_extra),
        },
        "conventions": _conventions_used(report),
        "pyc": {
            "checked": p.checked,
            "header_ok": p.header_ok,
            "stale": _findings(p.stale),
            "orphans": _findings(p.orphans),
            "unexpected": _findings(p.unexpected),
            "unreadable": _findings(p.unreadable),
            "recompiled": p.recompiled,
            "equivalent": p.equivalent,
            "mismatched": _findings(p.mismatched),
            "reference": p.reference,
        },
        "elf": {
            "checked": e.checked,
            "matching": e.matching,
            "differing": _elf_findings(e.differing),
            "not_in_rebuild": _findings(e.not_in_rebuild),
            "note": e.note,
            "rebuild_config_args": list(e.rebuild_config_args) if e.rebuild_config_args is not None else None,
            "config_args_match": e.config_args_match,
        },
        "config_args": report.config_args,
        "config_args_list": list(report.config_args_list),
        "recipe_config_args": list(report.recipe_config_args),
        "sysconfigdata": report.sysconfigdata,
        "out_of_scope": list(report.out_of_scope),
        "notes": list(report.notes),
    }


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
    shown = findings if verbose else findings[:MAX_LISTED]
    for finding in shown:
        detail = _describe(finding, distribution)
        suffix = f"  ({escape(detail)})" if detail else ""
        console.print(f"    {escape(finding.path)}{suffix}", highlight=False)
    if len(shown) < len(findings):
        console.print(f"    [dim]... {len(findings) - len(shown)} more (--verbose or --json)[/]")


def render_audit_text(report: AuditReport, console: Console, *, verbose: bool = False) -> None:
    """Print the audit: one section per question, findings named file by file, the unexplained last."""
    s, p, e = report.sources, report.pyc, report.elf
    verdict = (
        "[bold green]everything explained[/]"
        if report.clean
        else (f"[bold red]{len(report.unexplained)} unexplained path(s)[/]")
    )
    console.print(f"Python {escape(report.version)} at {escape(report.prefix)} ({escape(report.stdlib)}): {verdict}")
    for described in report.inputs:
        console.print(f"  input: {escape(described)}", highlight=False)
    if report.patch_series:
        console.print(f"  patches: {escape(report.patch_series)}", highlight=False)
    if report.distribution:
        console.print(f"  conventions: {escape(report.distribution)} (docs/audit.md)")
    console.rule("1. files from the source (Lib/, Include/) against the verified tree", align="left")
    console.print(f"  {s.checked} compared byte for byte, {s.identical} identical")
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
        console.print(f"  [dim]not in this package set: {len(s.missing)} file(s)[/]")
        for group in s.missing_groups:
            where = f" (ships in {group.package})" if group.package else ""
            console.print(f"    {escape(group.group)}: {group.count}{escape(where)}", highlight=False)
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
    console.print(f"  {p.checked} paired with a source, {p.header_ok} headers match")
    console.print(f"  recompiled: {p.recompiled}, equivalent: {p.equivalent}; {escape(p.reference)}")
    _group(console, "stale headers", p.stale, "red", verbose)
    _group(console, "orphan / sourceless .pyc", p.orphans, "red", verbose)
    _group(console, ".pyc in unexpected places", p.unexpected, "red", verbose)
    _group(console, "unreadable .pyc", p.unreadable, "red", verbose)
    _group(console, "code differs from the recompiled source", p.mismatched, "red", verbose)
    console.rule("3. ELF files against a rebuild", align="left")
    console.print(f"  {e.checked} ELF file(s), {e.matching} identical to the rebuild; {escape(e.note)}")
    _group(console, "differ from the rebuild", e.differing, "red", verbose)
    _group(console, "not in the rebuild", e.not_in_rebuild, "red", verbose)
    console.rule("4. configure arguments (to rebuild like this installation)", align="left")
    if report.config_args is None:
        console.print("  [yellow]not recorded[/]")
    else:
        console.print(f"  from {escape(report.sysconfigdata or '')}:")
        console.print(f"  ./configure {escape(report.config_args)}", highlight=False, soft_wrap=True)
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
        shown = ", ".join(report.out_of_scope[:12]) + (" ..." if len(report.out_of_scope) > 12 else "")
        console.print(f"[dim]out of scope (outside the installation): {escape(shown)}[/]")
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if report.unexplained:
        console.rule("[red]UNEXPLAINED[/]", align="left")
        for path in report.unexplained if verbose else report.unexplained[:MAX_LISTED]:
            console.print(f"  {escape(path)}", highlight=False)


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


def audit_to_html(report: AuditReport) -> str:
    """A self-contained page (no scripts, no external resources) in the style of ``compare --html``."""
    s, p, e = report.sources, report.pyc, report.elf
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<title>cpython-verify audit: {len(report.unexplained)} unexplained</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>cpython-verify: audit of Python {_e(report.version)} at <code>{_e(report.prefix)}</code></h1>",
        "<table>",
        *(f"<tr><td>input</td><td>{_e(described)}</td></tr>" for described in report.inputs),
        f"<tr><td>patches</td><td>{_e(report.patch_series or 'none given')}</td></tr>",
        f"<tr><td>conventions</td><td>{_e(report.distribution or 'none')}</td></tr>",
        "</table>",
    ]
    if report.clean:
        parts.append("<div class='verdict same'>Everything inside the installation is explained.</div>")
    else:
        parts.append(f"<div class='verdict differ'>{len(report.unexplained)} unexplained path(s).</div><ul>")
        parts.extend(f"<li><code>{_e(path)}</code></li>" for path in report.unexplained)
        parts.append("</ul>")
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
        parts.append("<h2>Not in this package set</h2><table><tr><th>group</th><th>files</th><th>ships in</th></tr>")
        parts.extend(
            f"<tr><td>{_e(g.group)}</td><td>{g.count}</td><td>{_e(g.package)}</td></tr>" for g in s.missing_groups
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
