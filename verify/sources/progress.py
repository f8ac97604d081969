"""Download progress: a rich bar on an interactive terminal, nothing anywhere else (CI, tests, pipes)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import TaskID


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
    """A rich progress bar on stderr, one task per transfer."""

    def __init__(self) -> None:
        # Imported here: rich costs ~50 ms to import, and non-interactive runs never need it.
        from rich.console import Console
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        self._progress = Progress(
            *Progress.get_default_columns(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: TaskID | None = None

    def start(self, label: str, total: int | None, already: int) -> None:
        """Show a bar for ``label``."""
        self._progress.start()
        self._task = self._progress.add_task(label, total=total, completed=already)

    def advance(self, count: int) -> None:
        """Move the bar."""
        if self._task is not None:
            self._progress.advance(self._task, count)

    def restart(self) -> None:
        """Reset the bar to zero."""
        if self._task is not None:
            self._progress.reset(self._task)

    def finish(self) -> None:
        """Remove the bar."""
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()


def default_progress() -> ProgressReporter:
    """A bar when stderr is an interactive terminal, otherwise nothing."""
    if sys.stderr.isatty():
        return RichProgress()
    return NoProgress()
