"""What every text report shares: a list is complete or says how many it left out and where they are, and the
report ends with one closing verdict line.

Kept here, in one small place, so that every command words them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def more_line(hidden: int, where: str) -> str:
    """The line that ends a shortened list: ``… and 13 more (all with --verbose or --json)``."""
    return f"… and {hidden:,} more ({where})"


def shown(items: Sequence[T], limit: int | None) -> tuple[Sequence[T], int]:
    """The first ``limit`` of ``items`` (all of them when ``limit`` is None) and how many were left out."""
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def listed(items: Sequence[str], limit: int | None, where: str, *, indent: str = "") -> list[str]:
    """``items`` one per line (each after ``indent``), cut after ``limit`` with a :func:`more_line` saying
    where the rest are."""
    head, hidden = shown(items, limit)
    lines = [f"{indent}{item}" for item in head]
    if hidden:
        lines.append(f"{indent}{more_line(hidden, where)}")
    return lines


def joined(items: Sequence[str], limit: int | None, where: str) -> str:
    """``items`` on one line, comma-separated, cut after ``limit`` with ``… and N more (where)``."""
    head, hidden = shown(items, limit)
    parts = list(head)
    if hidden:
        parts.append(more_line(hidden, where))
    return ", ".join(parts)


def verdict_line(verdict: str, detail: str) -> str:
    """The closing line of a text report, ``VERDICT: detail``, on one line whatever ``detail`` holds."""
    return " ".join(f"{verdict}: {detail}".split())
