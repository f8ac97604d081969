"""Question 1: which stdlib ``.py`` files differ from the verified source's ``Lib/``."""

from __future__ import annotations

import difflib
import os
from collections import Counter
from pathlib import Path
from typing import Final

from verify.audit.files import EXPECTED_EXTRA_DIRS, regular_files
from verify.audit.model import Finding, SourceAudit

GENERATED_PREFIXES: Final = ("_sysconfigdata", "_sysconfig_vars")
"""Modules ``make install`` generates at build time: not in ``Lib/``, expected in every installation."""


def _top(relative: str) -> str:
    first = relative.split("/", 1)[0]
    return first.removesuffix(".py")


def _line_delta(installed: bytes, upstream: bytes) -> str:
    a = upstream.decode("utf-8", "replace").splitlines()
    b = installed.decode("utf-8", "replace").splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return f"+{added} -{removed} lines against Lib/"


def audit_sources(stdlib: Path, lib: Path, prefix_rel: str) -> SourceAudit:
    """Every stdlib ``.py`` under ``stdlib`` against the verified ``lib``; paths shown below ``prefix_rel``."""
    upstream = {rel for rel, _ in regular_files(lib) if rel.endswith(".py")}
    installed: dict[str, os.stat_result] = {}
    expected_dirs: Counter[str] = Counter()
    extra: list[Finding] = []
    expected_extra: list[Finding] = []
    for rel, info in regular_files(stdlib):
        if not rel.endswith(".py"):
            continue
        parts = rel.split("/")
        third_party = next((p for p in parts[:-1] if p in EXPECTED_EXTRA_DIRS), None)
        if third_party is not None:
            expected_dirs["/".join(parts[: parts.index(third_party) + 1])] += 1
            continue
        installed[rel] = info
    identical = 0
    modified: list[Finding] = []
    for rel in sorted(installed):
        shown = f"{prefix_rel}/{rel}"
        if rel not in upstream:
            if rel.rsplit("/", 1)[-1].startswith(GENERATED_PREFIXES):
                expected_extra.append(Finding(shown, "generated", "written by make install; not in Lib/"))
            else:
                extra.append(Finding(shown, "extra", "not in the verified source's Lib/"))
            continue
        mine = (stdlib / rel).read_bytes()
        theirs = (lib / rel).read_bytes()
        if mine == theirs:
            identical += 1
        else:
            modified.append(Finding(shown, "modified", _line_delta(mine, theirs)))
    missing = [Finding(f"{prefix_rel}/{rel}", "missing", _top(rel)) for rel in sorted(upstream - installed.keys())]
    expected_extra.extend(
        Finding(f"{prefix_rel}/{directory}", "third-party", f"{count} .py file(s): site packages, not the stdlib")
        for directory, count in sorted(expected_dirs.items())
    )
    return SourceAudit(
        checked=len(installed),
        identical=identical,
        modified=tuple(modified),
        missing=tuple(missing),
        extra=tuple(extra),
        expected_extra=tuple(expected_extra),
    )
