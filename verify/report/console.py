"""The rich console every text report prints through: content at its own length, decoration bounded.

Off a terminal a report's console has thousands of columns, so that a table row or a long path stays on
one line (for ``grep``); a rule spans the console's width, so without a bound each section heading of a
piped report would be 10,000 ``─``. A :class:`ReportConsole` bounds every rule in one place: the
terminal's width on a terminal, :data:`verify.commands.output.DECORATION_WIDTH` columns elsewhere.
"""

from __future__ import annotations

from typing import Any

from rich.align import AlignMethod
from rich.console import Console
from rich.rule import Rule
from rich.style import Style
from rich.text import Text


class ReportConsole(Console):
    """A ``rich.console.Console`` whose rules are at most ``decoration_width`` columns (None: the console's)."""

    def __init__(self, *, decoration_width: int | None, **options: Any) -> None:
        """``options`` are rich's; ``decoration_width`` bounds :meth:`rule` (and only it)."""
        super().__init__(**options)
        self.decoration_width = decoration_width

    def rule(
        self,
        title: str | Text = "",
        *,
        characters: str = "─",
        style: str | Style = "rule.line",
        align: AlignMethod = "center",
    ) -> None:
        """A horizontal rule with ``title``, as wide as the console but never wider than the decoration width."""
        width = self.width if self.decoration_width is None else min(self.width, self.decoration_width)
        self.print(Rule(title, characters=characters, style=style, align=align), width=width)
