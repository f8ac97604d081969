"""Render a :class:`~verify.source.models.SourceVerdict` as text or as stable JSON.

The JSON format (``cpython-verify/source-verdict/v1``) is documented in ``docs/source-verdict.md``;
fields are only ever added, never renamed or removed, within v1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from verify.common.lines import verdict_line
from verify.source.models import CheckStatus, SourceVerdict
from verify.source.verdict_document import SourceVerdictDocument

_STATUS_STYLE = {
    CheckStatus.VERIFIED: ("ok", "green"),
    CheckStatus.FAILED: ("FAILED", "red"),
    CheckStatus.MISSING: ("MISSING", "red"),
    CheckStatus.NOT_REQUIRED: ("not checked", "yellow"),
}


def verdict_to_dict(verdict: SourceVerdict) -> dict[str, Any]:
    """The JSON-ready form of a verdict (:class:`verify.source.verdict_document.SourceVerdictDocument`)."""
    return SourceVerdictDocument.of(verdict, closing_line(verdict)).to_json()


def verdict_from_json(raw: bytes) -> SourceVerdict:
    """Read back a verdict :func:`verdict_to_json` wrote (the one reader of ``source-verdict.json``).

    The tarball's ``path`` is its bare name: a verdict read back is evidence about bytes, not a handle
    to them. Raises ``ValueError`` with one line: a missing or mistyped field, a version that is not a
    CPython release, or a file whose ``verified`` disagrees with the evidence it lists (edited by hand)."""
    from verify.source.verdict_reader import read_verdict

    return read_verdict(raw)


def verdict_to_json(verdict: SourceVerdict) -> str:
    """Stable JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(verdict_to_dict(verdict), indent=2, sort_keys=True) + "\n"


def closing_line(verdict: SourceVerdict) -> str:
    """The one line that ends the text report: the verdict, on what tarball, with what evidence and relaxations."""
    signatures = ", ".join(f"{evidence.kind} {_STATUS_STYLE[evidence.status][0]}" for evidence in verdict.signatures)
    not_required = {evidence.kind for evidence in verdict.signatures if evidence.status is CheckStatus.NOT_REQUIRED}
    relaxed = (
        ", ".join(
            f"--allow-missing {kind}" + ("" if kind in not_required else " (not used)")
            for kind in verdict.allowed_missing
        )
        or "nothing"
    )
    detail = (
        f"CPython {verdict.version} source {verdict.tarball.name} sha256 {verdict.tarball.sha256} "
        f"({verdict.signatures_verified} of {len(verdict.signatures)} signature(s) verified: "
        f"{signatures or 'none'}; {verdict.digests_agreeing} of {len(verdict.digests)} digest claim(s) agree; "
        f"relaxed: {relaxed})"
    )
    if verdict.verified:
        return verdict_line("VERIFIED", detail)
    return verdict_line("NOT VERIFIED", f"{detail}: {'; '.join(verdict.failures())}")


def evidence_lines(verdict: SourceVerdict, *, color: bool = False, recipe: bool = True) -> list[str]:
    """What the verdict rests on, one check per line: the tarball, each signature, each digest claim, the
    version inside, and every relaxation. Shared by ``source`` and the reports that carry a source verdict."""

    def style(text: str, colour: str) -> str:
        return click.style(text, fg=colour, bold=True) if color else text

    lines = [
        f"CPython {verdict.version} source: {verdict.tarball.name}",
        f"  sha256 {verdict.tarball.sha256}  ({verdict.tarball.size:,} bytes)",
        f"  from   {verdict.tarball.origin}",
    ]
    if recipe:
        lines.append(f"  recipe cpython-{verdict.recipe_series}.toml sha256 {verdict.recipe_sha256[:16]}…")
    for evidence in verdict.signatures:
        label, colour = _STATUS_STYLE[evidence.status]
        lines.append(f"  {evidence.kind:<9}{style(label, colour)}  {evidence.detail}")
        lines += [f"             note: {note}" for note in evidence.notes]
    if not verdict.signatures:
        lines.append(f"  {'signature':<9}{style('NONE', 'red')}  no signature was checked")
    if not verdict.digests:
        lines.append("  digests  no independent sha256 source was available to cross-check")
    for check in verdict.digests:
        label, colour = ("agrees", "green") if check.agrees else ("DISAGREES", "red")
        lines.append(f"  digest   {style(label, colour)}  {check.claim.source}")
        if not check.agrees:
            lines.append(f"             it says {check.claim.sha256}")
    label, colour = ("ok", "green") if verdict.patchlevel_ok else ("FAILED", "red")
    found = verdict.patchlevel_version or "no PY_VERSION"
    lines.append(f"  version  {style(label, colour)}  Include/patchlevel.h says {found}")
    relaxations = verdict.relaxations()
    lines += [f"  relaxed  {style(line, 'yellow')}" for line in relaxations] or ["  relaxed  nothing"]
    return lines


def verdict_to_text(verdict: SourceVerdict, *, verbose: bool = False, color: bool = True) -> str:
    """A human verdict: per signature who signed, when and against which policy; per digest source, agreement;
    what was relaxed; then one closing verdict line.

    ``color=False`` (``NO_COLOR``, not a terminal, a file) gives plain text without ANSI codes.
    """
    lines = evidence_lines(verdict, color=color)
    if verbose:
        lines += [f"  note     {note}" for note in verdict.notes]
    if not verdict.verified:
        lines += [f"  - {reason}" for reason in verdict.failures()]
    last = closing_line(verdict)
    colour = "green" if verdict.verified else "red"
    lines.append(click.style(last, fg=colour, bold=True) if color else last)
    return "\n".join(lines)
