"""Progress on stderr, one display for the whole process: download bars, phase spinners, phase log lines.

On an interactive terminal every long step (a download, source verification, the rootfs build, a
rebuild phase, a comparison) is a line of one live rich display with its elapsed time; downloads add
a byte count and speed. When stderr is not a terminal (CI logs, pipes, tests) there is no live display
and phases are plain lines (``3.13.5 default: configure ...``), so a log still says what ran and for how
long. ``--no-progress`` turns both off, ``--quiet`` too (:func:`configure`).

One shared display, not one per caller: rich allows a single live display at a time, and a download
runs inside the source-verification phase.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

_enabled = True


def configure(*, enabled: bool) -> None:
    """Switch progress output on or off for this process (the CLI's ``--no-progress`` / ``--quiet``)."""
    global _enabled  # one process-wide switch, set by the CLI as it parses the options
    _enabled = enabled


def enabled() -> bool:
    """Whether any progress (live or plain lines) may be written."""
    return _enabled


def interactive() -> bool:
    """Whether the live display is shown: progress enabled and stderr a terminal."""
    return _enabled and sys.stderr.isatty()


class _Display:
    """The process's one live rich display; it runs while at least one task is shown."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks = 0

    def add(self, description: str, *, total: int | None = None, completed: int = 0, transfer: bool = False) -> TaskID:
        if self._progress is None:
            self._progress = _new_progress()
        if self._tasks == 0:
            self._progress.start()
        self._tasks += 1
        return self._progress.add_task(description, total=total, completed=completed, transfer=transfer)

    def advance(self, task: TaskID, count: int) -> None:
        if self._progress is not None:
            self._progress.advance(task, count)

    def reset(self, task: TaskID) -> None:
        if self._progress is not None:
            self._progress.reset(task)

    def remove(self, task: TaskID) -> None:
        if self._progress is None:
            return
        self._progress.remove_task(task)
        self._tasks -= 1
        if self._tasks == 0:
            self._progress.stop()

    def print(self, message: str) -> None:
        """A line above the live display while it runs, else a plain line on stderr."""
        if self._progress is not None and self._tasks:
            self._progress.console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            print(message, file=sys.stderr, flush=True)


def _new_progress() -> Progress:
    # Imported here: rich costs ~50 ms to import, and non-interactive runs never need it.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class OnlyForTransfers(ProgressColumn):
        """A column shown for downloads only (a phase has no byte count)."""

        def __init__(self, inner: ProgressColumn) -> None:
            super().__init__()
            self._inner = inner

        def render(self, task: Any) -> Any:
            return self._inner.render(task) if task.fields.get("transfer") else Text("")

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        OnlyForTransfers(BarColumn()),
        OnlyForTransfers(DownloadColumn()),
        OnlyForTransfers(TransferSpeedColumn()),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


_DISPLAY = _Display()


# -- downloads -------------------------------------------------------------------------------------


class ProgressReporter(Protocol):
    """Receives the progress of one download at a time."""

    def start(self, label: str, total: int | None, already: int) -> None:
        """A transfer of ``label`` begins (or resumes at ``already`` bytes); ``total`` when known."""

    def advance(self, count: int) -> None:
        """``count`` more bytes arrived."""

    def restart(self) -> None:
        """The partial data was discarded and the transfer starts from zero."""

    def finish(self) -> None:
        """The transfer ended, successfully or not."""


class NoProgress:
    """Reports nothing."""

    def start(self, label: str, total: int | None, already: int) -> None:
        """Ignore."""

    def advance(self, count: int) -> None:
        """Ignore."""

    def restart(self) -> None:
        """Ignore."""

    def finish(self) -> None:
        """Ignore."""


class RichProgress:
    """A download bar in the shared live display."""

    def __init__(self) -> None:
        self._task: TaskID | None = None

    def start(self, label: str, total: int | None, already: int) -> None:
        """Show a bar for ``label``."""
        self._task = _DISPLAY.add(label, total=total, completed=already, transfer=True)

    def advance(self, count: int) -> None:
        """Move the bar."""
        if self._task is not None:
            _DISPLAY.advance(self._task, count)

    def restart(self) -> None:
        """Reset the bar to zero."""
        if self._task is not None:
            _DISPLAY.reset(self._task)

    def finish(self) -> None:
        """Remove the bar."""
        if self._task is not None:
            _DISPLAY.remove(self._task)
            self._task = None


def default_progress() -> ProgressReporter:
    """A bar when progress is on and stderr is an interactive terminal, otherwise nothing."""
    return RichProgress() if interactive() else NoProgress()


# -- phases ----------------------------------------------------------------------------------------


def note(message: str) -> None:
    """A progress message (``env: cache hit: ...``) on stderr, unless progress is off."""
    if _enabled:
        _DISPLAY.print(message)


@contextmanager
def phase(description: str) -> Iterator[None]:
    """Show ``description`` with a spinner and elapsed time while the block runs (terminal only).

    Steps of this kind say nothing in a log; steps that should (rebuild phases) use :class:`PhaseLog`.
    """
    if not interactive():
        yield
        return
    task = _DISPLAY.add(description)
    try:
        yield
    finally:
        _DISPLAY.remove(task)


class PhaseLog:
    """A :class:`verify.rebuild.core.ProgressSink` for one labelled build.

    On a terminal the running phase is a spinner line; elsewhere each phase is a plain line when it
    starts, and on a terminal or not a line says how long it took.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._task: TaskID | None = None
        self._started = 0.0

    def phase_started(self, phase: str) -> None:
        """Show that ``phase`` began."""
        self._started = time.monotonic()
        if interactive():
            self._task = _DISPLAY.add(f"{self._label}: {phase}")
        else:
            note(f"{self._label}: {phase} ...")

    def phase_finished(self, phase: str, seconds: float) -> None:
        """Say how long ``phase`` took."""
        self.stop()
        note(f"{self._label}: {phase} done in {seconds:.1f} s")

    def stop(self) -> None:
        """Remove the spinner (a failed phase never finishes)."""
        if self._task is not None:
            _DISPLAY.remove(self._task)
            self._task = None
