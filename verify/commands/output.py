"""Where a command's report goes and how it looks: ``-o/--output``, ``-q/--quiet``, ``-v/--verbose``,
``--no-progress``.

Every command that reports takes these four options (:func:`output_options`) and prints through a
:class:`Report`. The report goes to standard output, or with ``-o FILE`` to FILE (written atomically
once the command has a verdict; never a partial report after an error); ``--quiet`` prints nothing but
errors, the exit code carrying the verdict. Colour only on a terminal and never with ``NO_COLOR``
(https://no-color.org); no hard wrapping anywhere (a long path stays on one line for ``grep``).
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from verify.commands.options import F
from verify.common import progress
from verify.common.fsutil import write_atomic

if TYPE_CHECKING:
    from rich.console import Console

_META = "cpython_verify.output"
_UNWRAPPED_WIDTH = 10_000
"""Columns for rich when not writing to a terminal: tables lay out on one line per row, nothing wraps."""
DECORATION_WIDTH = 80
"""The widest a rule may be when the report is not on a terminal (a log, a file): content keeps its length."""
PIPED_LINE_WIDTH = 200
"""The widest any line of a bounded report (the audit) may be off a terminal: longer prose wraps."""


VERBOSE_HELP = (
    "Show what the report otherwise shortens or leaves out: every item of every list, every detail line, "
    "where each file was looked for. The same in every command; --json always has everything."
)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault(_META, {})[param.name] = value
    if param.name in ("quiet", "no_progress") and value:
        progress.configure(enabled=False)
    return value


def output_options(function: F) -> F:
    """Decorate a command with ``-o/--output FILE``, ``-q/--quiet``, ``-v/--verbose`` and ``--no-progress``."""
    options = [
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            expose_value=False,
            callback=_remember,
            help="Write the report to FILE (atomically, once there is a verdict) instead of standard output.",
        ),
        click.option(
            "-q",
            "--quiet",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help="Print nothing but errors (and no progress); the exit code gives the verdict.",
        ),
        click.option(
            "-v",
            "--verbose",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help=VERBOSE_HELP,
        ),
        click.option(
            "--no-progress",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help="No progress display or phase lines on standard error.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def no_color() -> bool:
    """Whether ``NO_COLOR`` asks for no colour (set and not empty, as no-color.org defines it)."""
    return bool(os.environ.get("NO_COLOR"))


class Report:
    """A command's report: printed on standard output, or collected for ``-o FILE``, or dropped with ``-q``.

    Use as a context manager: on a normal end (including the verdict's exit) the collected report is
    written to the ``-o`` file; on an error nothing is written.
    """

    def __init__(self, output: Path | None = None, *, quiet: bool = False, verbose: bool = False) -> None:
        self.output = output
        self.quiet = quiet
        self.verbose = verbose
        """``-v``: show in full what the report otherwise shortens (:data:`VERBOSE_HELP`)."""
        self._buffer = io.StringIO() if output is not None or quiet else None

    @classmethod
    def current(cls) -> Report:
        """The report the running command's options ask for."""
        chosen = click.get_current_context().meta.get(_META, {})
        return cls(chosen.get("output"), quiet=bool(chosen.get("quiet")), verbose=bool(chosen.get("verbose")))

    @property
    def color(self) -> bool:
        """Whether to style the report: only on a terminal, never with ``NO_COLOR``."""
        return self._buffer is None and not no_color() and sys.stdout.isatty()

    def echo(self, text: str = "", *, nl: bool = True) -> None:
        """Add ``text`` (and a newline) to the report."""
        if self._buffer is not None:
            self._buffer.write(text + ("\n" if nl else ""))
        else:
            click.echo(text, nl=nl, color=self.color)

    def console(self, *, bounded_lines: bool = False) -> Console:
        """A rich console writing into the report: soft-wrapped, coloured only when :attr:`color`.

        ``bounded_lines``: off a terminal, no line is wider than :data:`PIPED_LINE_WIDTH` (for reports of
        prose; a table's rows keep their length, for ``grep``, unless this is asked for).
        """
        from verify.report.console import ReportConsole

        stream = self._buffer if self._buffer is not None else sys.stdout
        terminal = self._buffer is None and sys.stdout.isatty()
        return ReportConsole(
            decoration_width=None if terminal else DECORATION_WIDTH,
            line_width=PIPED_LINE_WIDTH if bounded_lines and not terminal else None,
            file=stream,
            no_color=not self.color,
            color_system="auto" if self.color else None,
            soft_wrap=True,
            width=None if terminal else _UNWRAPPED_WIDTH,
            highlight=self.color,
            emoji=False,
        )

    def close(self) -> None:
        """Write the collected report to the ``-o`` file."""
        if self.output is not None and self._buffer is not None:
            write_atomic(self.output, self._buffer.getvalue().encode())

    def __enter__(self) -> Report:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        # A verdict leaves through sys.exit or click's Exit; those reports are complete, errors' are not.
        if kind is None or issubclass(kind, SystemExit | click.exceptions.Exit):
            self.close()
