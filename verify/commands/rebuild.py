"""``cpython-verify rebuild VERSION``: verify the source, rebuild it in the recipe's sandbox, and
(with ``--twice``) build again with variations and say whether the result is reproducible.

Exit codes: 0 built (and with ``--twice``: identical, or only the differences the chosen variations
are documented to cause), 1 source not verified or unexplained differences, 2 operational error
(including a failed build phase, whose log tail is shown).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from verify.commands.options import rebuild_options
from verify.commands.output import Report, output_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED
from verify.common.progress import PhaseLog

if TYPE_CHECKING:
    from verify.chain import RebuildRequest
    from verify.rebuild.core import BuildFailed, ProgressSink, RebuildResult


class PhaseObserver:
    """The chain's :class:`verify.chain.RebuildObserver` for the terminal: a phase display per build."""

    def __init__(self) -> None:
        self._display: PhaseLog | None = None

    def build_started(self, label: str) -> ProgressSink:
        self._display = PhaseLog(label)
        return self._display

    def build_finished(self, label: str, result: RebuildResult) -> None:
        self._stop()
        if result.from_cache:
            progress.note(f"{label}: cached result {result.result_dir}")

    def build_failed(self, label: str, failure: BuildFailed) -> None:
        # Not progress: the reason for the exit status, shown even with --quiet.
        self._stop()
        click.echo(f"{label}: {failure.phase} failed; last lines of {failure.log_path}:", err=True)
        for line in failure.tail:
            click.echo(f"  | {line}", err=True)

    def _stop(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None


@click.command("rebuild")
@rebuild_options()
@output_options
def rebuild(request: RebuildRequest) -> None:
    """Rebuild CPython VERSION from its verified source in the recipe's pinned sandbox.

    \b
    Examples:
      cpython-verify rebuild 3.13.5 --from ~/distfiles --offline
      cpython-verify rebuild 3.13.5 --twice --vary time,cpus,hostname --out result/3.13.5
      cpython-verify rebuild 3.13.5 --twice --bisect --runner podman --no-progress -o rebuild.txt
    """
    from verify.chain import run_rebuild
    from verify.report.rebuild import rebuild_closing_line, rebuild_text

    with Report.current() as report:
        outcome = run_rebuild(request, PhaseObserver())
        for line in rebuild_text(outcome.result, outcome.record):
            report.echo(line)
        report.echo(outcome.recipe_status)
        report.echo(rebuild_closing_line(outcome.record, len(outcome.result.read_manifest().entries)))
        check = outcome.reproducibility
        if check is not None and not check.explained:
            sys.exit(EXIT_FAILED)
