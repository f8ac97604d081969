"""Render an :class:`~verify.audit.AuditReport` as text for a person or as stable JSON.

JSON format ``cpython-verify/audit/v1`` (documented in ``docs/compare-json.md``, section "audit").
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Final

from rich.console import Console
from rich.markup import escape

from verify.audit import AuditReport, Finding

FORMAT: Final = "cpython-verify/audit/v1"
MAX_LISTED: Final = 25
"""Findings listed per group on a terminal; JSON lists all."""


def _findings(findings: tuple[Finding, ...]) -> list[dict[str, Any]]:
    return [asdict(finding) for finding in findings]


def audit_to_dict(report: AuditReport) -> dict[str, Any]:
    """The JSON-ready form of an audit report."""
    s, p, e = report.sources, report.pyc, report.elf
    return {
        "format": FORMAT,
        "prefix": report.prefix,
        "version": report.version,
        "stdlib": report.stdlib,
        "clean": report.clean,
        "sources": {
            "checked": s.checked,
            "identical": s.identical,
            "modified": _findings(s.modified),
            "missing": _findings(s.missing),
            "missing_by_package": s.missing_by_package(),
            "extra": _findings(s.extra),
            "expected_extra": _findings(s.expected_extra),
        },
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
            "differing": _findings(e.differing),
            "not_in_rebuild": _findings(e.not_in_rebuild),
            "note": e.note,
        },
        "config_args": report.config_args,
        "config_args_list": list(report.config_args_list),
        "sysconfigdata": report.sysconfigdata,
        "notes": list(report.notes),
    }


def audit_to_json(report: AuditReport) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(audit_to_dict(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _group(console: Console, title: str, findings: tuple[Finding, ...], style: str, verbose: bool) -> None:
    if not findings:
        return
    console.print(f"  [{style}]{title}: {len(findings)}[/]")
    shown = findings if verbose else findings[:MAX_LISTED]
    for finding in shown:
        detail = f"  ({escape(finding.detail)})" if finding.detail else ""
        console.print(f"    {escape(finding.path)}{detail}", highlight=False)
    if len(shown) < len(findings):
        console.print(f"    [dim]... {len(findings) - len(shown)} more (--verbose or --json)[/]")


def render_audit_text(report: AuditReport, console: Console, *, verbose: bool = False) -> None:
    """Print the audit: one section per question, findings named file by file."""
    s, p, e = report.sources, report.pyc, report.elf
    verdict = "[bold green]matches the verified source[/]" if report.clean else (
        f"[bold red]{len(report.findings())} finding(s)[/]")
    console.print(f"Python {escape(report.version)} at {escape(report.prefix)} ({escape(report.stdlib)}): {verdict}")
    console.rule("1. stdlib .py against the verified Lib/", align="left")
    console.print(f"  {s.checked} checked, {s.identical} identical")
    _group(console, "modified (a distribution's patches show up here)", s.modified, "yellow", verbose)
    if s.missing:
        packages = ", ".join(f"{name} ({count})" for name, count in s.missing_by_package().items())
        console.print(f"  [yellow]missing: {len(s.missing)}[/] by package: {escape(packages)}")
        if verbose:
            for finding in s.missing:
                console.print(f"    {escape(finding.path)}", highlight=False)
    _group(console, "extra (not in the verified source)", s.extra, "yellow", verbose)
    _group(console, "expected extras", s.expected_extra, "dim", verbose)
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
    _group(console, "not in the rebuild", e.not_in_rebuild, "yellow", verbose)
    console.rule("4. configure arguments (to rebuild like this installation)", align="left")
    if report.config_args is None:
        console.print("  [yellow]not recorded[/]")
    else:
        console.print(f"  from {escape(report.sysconfigdata or '')}:")
        console.print(f"  ./configure {escape(report.config_args)}", highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
