"""The rich console every text report prints through: content at its own length, decoration bounded.

Off a terminal a report's console has thousands of columns, so that a table row or a long path stays on
one line (for ``grep``); a rule spans the console's width, so without a bound each section heading of a
piped report would be 10,000 ``─``. A :class:`ReportConsole` bounds every rule in one place: the
terminal's width on a terminal, :data:`verify.commands.output.DECORATION_WIDTH` columns elsewhere.

A report whose prose can run long (the audit's explanations, a distribution's ``./configure`` line) also
gets a line bound off a terminal (:data:`verify.commands.output.PIPED_LINE_WIDTH`): a line longer than it
is wrapped at word boundaries, so a log or a report file never holds a line a reader has to scroll.
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

    def __init__(self, *, decoration_width: int | None, line_width: int | None = None, **options: Any) -> None:
        """``options`` are rich's; ``decoration_width`` bounds :meth:`rule`; ``line_width`` (None: unbounded)
        bounds every printed line, wrapping longer ones at word boundaries."""
        super().__init__(**options)
        self.decoration_width = decoration_width
        self.line_width = line_width

    def print(self, *objects: Any, **options: Any) -> None:
        """rich's ``print``; with a line bound, anything wider than it wraps (``soft_wrap`` is overridden)."""
        if self.line_width is not None:
            options["soft_wrap"] = False
            options["width"] = min(options.get("width") or self.line_width, self.line_width)
        super().print(*objects, **options)

    def print_whole(self, *objects: Any, **options: Any) -> None:
        """rich's ``print`` without the line bound: for a closing verdict line, which ``tail -1`` and ``grep``
        read whole (it ends the report and says what it found; wrapping it would cut the verdict in two)."""
        super().print(*objects, **options)

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


def print_whole(console: Console, *objects: Any, **options: Any) -> None:
    """Print a line that must stay one line (a verdict) on ``console``, bounded or not."""
    if isinstance(console, ReportConsole):
        console.print_whole(*objects, **options)
    else:
        console.print(*objects, **options)
