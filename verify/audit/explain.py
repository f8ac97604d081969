"""Why an installed file differs from the one in the signed source: patches, transforms, or nothing. Pure.

A modified file is explained when the patches of the series (``--patches``) account for every
changed line, possibly followed by a named packaging transform:

* ``shebang-rewritten``: only the first line differs, both are ``#!`` lines naming a Python, and the
  new one is the installation's own interpreter (a rewrite to any other program is not explained);
* ``relocated-prefix``: every changed line is the upstream line with one absolute directory replaced
  by another (a file that records its installation prefix, moved).

What remains is counted line by line and left unexplained.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Final

from verify.audit.patches import FilePatch, attribute, text_lines

_PYTHON_SHEBANG_RE: Final = re.compile(r"^#!\s*(\S+)(?:\s+(\S+))?")


@dataclass(frozen=True, slots=True)
class Explanation:
    """The verdict on one modified file."""

    status: str
    """``patched``, ``transformed``, ``patched+transformed``, or ``modified`` (unexplained)."""
    detail: str
    patches: tuple[str, ...] = ()
    transform: str = ""
    """``shebang-rewritten`` or ``relocated-prefix`` when one applied."""

    @property
    def explained(self) -> bool:
        """True when nothing is left that no patch or named transform accounts for."""
        return self.status != "modified"


def split_lines(data: bytes) -> list[str]:
    """Lines of a file for comparison; undecodable bytes are kept distinct by surrogate escapes."""
    return text_lines(data.decode("utf-8", "surrogateescape"))


def line_delta(upstream: list[str], installed: list[str]) -> tuple[int, int]:
    """Lines added and removed going from ``upstream`` to ``installed``."""
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, upstream, installed, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return added, removed


def _interpreter(line: str) -> str | None:
    """The program a ``#!`` line runs when it is a Python (``/usr/bin/env python3`` counts as ``python3``)."""
    match = _PYTHON_SHEBANG_RE.match(line)
    if match is None:
        return None
    program, argument = match.group(1), match.group(2)
    if program.endswith("/env") and argument:
        program = argument
    return program if "python" in program.rsplit("/", 1)[-1] else None


def shebang_rewrite(upstream: list[str], installed: list[str], interpreters: frozenset[str]) -> str | None:
    """The new interpreter when only the first line differs, as a Python shebang naming one of ``interpreters``."""
    if not upstream or not installed or upstream[1:] != installed[1:] or upstream[0] == installed[0]:
        return None
    if _interpreter(upstream[0]) is None:
        return None
    new = _interpreter(installed[0])
    return new if new is not None and new in interpreters else None


def relocated_prefix(upstream: list[str], installed: list[str]) -> tuple[str, str] | None:
    """``(old, new)`` when every changed line is the upstream line with directory ``old`` replaced by ``new``."""
    if len(upstream) != len(installed):
        return None
    pairs = [(a, b) for a, b in zip(upstream, installed, strict=True) if a != b]
    if not pairs:
        return None
    first_old, first_new = pairs[0]
    # The shortest common suffix decides the candidate pair: "/usr/local/lib" vs "/opt/python/lib" gives
    # "/usr/local" -> "/opt/python" after trimming the shared tail and head.
    start = 0
    while start < min(len(first_old), len(first_new)) and first_old[start] == first_new[start]:
        start += 1
    end = 0
    while (
        end < min(len(first_old), len(first_new)) - start
        and first_old[len(first_old) - 1 - end] == first_new[len(first_new) - 1 - end]
    ):
        end += 1
    slash = first_old.rfind("/", 0, start + 1)
    if slash < 0:
        return None
    start = slash
    old = first_old[start : len(first_old) - end]
    new = first_new[start : len(first_new) - end]
    old, new = old.rstrip("/"), new.rstrip("/")
    if not old.startswith("/") or not new.startswith("/") or old == new:
        return None
    if all(a.replace(old, new) == b for a, b in pairs):
        return old, new
    return None


def explain_modified(
    upstream: list[str],
    installed: list[str],
    patches: list[tuple[str, FilePatch]],
    interpreters: frozenset[str],
) -> Explanation:
    """Explain the difference between the ``upstream`` and ``installed`` lines of one file."""
    attribution = attribute(upstream, installed, patches) if patches else None
    after = list(attribution.patched) if attribution is not None else upstream
    used = attribution.patches if attribution is not None else ()
    by = f"by {', '.join(used)}" if used else ""
    if after == installed:
        if used:
            return Explanation("patched", f"every changed line {by}", used)
        # Same lines, different bytes: line endings or a missing final newline.
        return Explanation("modified", "differs only in line endings or the final newline")
    interpreter = shebang_rewrite(after, installed, interpreters)
    if interpreter is not None:
        status = "patched+transformed" if used else "transformed"
        detail = f"first line rewritten to run {interpreter}" + (f"; every other changed line {by}" if used else "")
        return Explanation(status, detail, used, "shebang-rewritten")
    moved = relocated_prefix(after, installed)
    if moved is not None:
        status = "patched+transformed" if used else "transformed"
        detail = f"prefix {moved[0]} relocated to {moved[1]}" + (f"; every other changed line {by}" if used else "")
        return Explanation(status, detail, used, "relocated-prefix")
    added, removed = line_delta(upstream, installed)
    detail = f"+{added} -{removed} lines against Lib/"
    if used:
        left_added, left_removed = line_delta(after, installed)
        detail += f"; {by} accounts for part, +{left_added} -{left_removed} lines left unexplained"
    return Explanation("modified", detail, used)
