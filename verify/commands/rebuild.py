"""``cpython-verify rebuild VERSION``: verify the source, rebuild it in the recipe's sandbox, and
(with ``--twice``) build again with variations and say whether the result is reproducible.

Exit codes: 0 built (and with ``--twice``: identical, or only the differences the chosen variations
are documented to cause), 1 source not verified or unexplained differences, 2 operational error
(including a failed build phase, whose log tail is shown).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from verify.commands.options import RUNNER_CHOICE, source_options
from verify.commands.output import Report, output_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED, OperationalError
from verify.common.progress import PhaseLog
from verify.rebuild.settings import VARIATIONS, parse_variations
from verify.source.models import FetchedFile

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
@click.argument("version")
@source_options
@click.option("--profile", default="default", show_default=True, help="Recipe build profile (e.g. default, pgo-lto).")
@click.option("--runner", "runner_name", type=RUNNER_CHOICE, default="bwrap", show_default=True, help="Sandbox runner.")
@click.option(
    "--rootfs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this rootfs tarball as the recipe's environment instead of building it.",
)
@click.option("--twice", is_flag=True, help="Build a second time with --vary variations and compare.")
@click.option(
    "--vary",
    "vary",
    multiple=True,
    metavar="LIST",
    help=f"Variations for the second build (comma-separated; default all): {', '.join(VARIATIONS)}.",
)
@click.option("--bisect", is_flag=True, help="With --twice: re-run with one variation at a time to name the culprits.")
@click.option(
    "--pgo-profile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With an --enable-optimizations profile: reuse this pgo-profile.tar instead of a training run.",
)
@click.option(
    "--pgo-profile-sha256",
    metavar="HEX",
    help="The pinned sha256 of --pgo-profile (required with it: an unpinned profile is never used).",
)
@click.option(
    "--reuse-profile",
    is_flag=True,
    help="With --twice and a PGO profile whose training is deterministic: the second build reuses the profile "
    "the baseline trained instead of training its own (by default it trains again, independently).",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cache has this exact build.")
@click.option("--jobs", type=click.IntRange(min=1), help="make -j (default: the number of CPUs).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Result directory (default: ./rebuild-VERSION-PROFILE).",
)
@click.option(
    "--rebuild-cache",
    "rebuild_cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where finished rebuilds are cached (default: the --cache root's rebuilds/).",
)
@output_options
def rebuild(**params: Any) -> None:
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
        outcome = run_rebuild(rebuild_request(params), PhaseObserver())
        for line in rebuild_text(outcome.result, outcome.record):
            report.echo(line)
        report.echo(outcome.recipe_status)
        report.echo(rebuild_closing_line(outcome.record, len(outcome.result.read_manifest().entries)))
        check = outcome.reproducibility
        if check is not None and not check.explained:
            sys.exit(EXIT_FAILED)


def rebuild_request(params: dict[str, Any]) -> RebuildRequest:
    """The chain's request from the option values of ``rebuild`` (and ``check``, which shares them)."""
    from verify.chain import RebuildRequest
    from verify.source.assembly import SourceOptions
    from verify.source.releases import Version

    version = Version.parse(params["version"])
    if params["vary"] and not params["twice"]:
        raise OperationalError("--vary needs --twice")
    variations = parse_variations(params["vary"]) if params["vary"] else frozenset(VARIATIONS)
    return RebuildRequest(
        version=version,
        source=SourceOptions.from_params(params),
        profile=params["profile"],
        runner=params["runner_name"],
        rootfs=params["rootfs"],
        twice=params["twice"],
        variations=variations,
        bisect=params["bisect"],
        pgo_profile=_pinned_pgo_profile(params["pgo_profile"], params["pgo_profile_sha256"]),
        reuse_profile=params["reuse_profile"],
        force=params["force"],
        jobs=params["jobs"],
        out_dir=params["out_dir"],
        rebuild_cache=params["rebuild_cache"],
    )


def _pinned_pgo_profile(path: Path | None, sha256: str | None) -> FetchedFile | None:
    """The ``--pgo-profile`` file with its pinned digest (checked again as the build copies it)."""
    if path is None:
        if sha256:
            raise OperationalError("--pgo-profile-sha256 needs --pgo-profile")
        return None
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise OperationalError("--pgo-profile needs --pgo-profile-sha256 with the profile's 64-hex-digit sha256")
    return FetchedFile(path.name, path, sha256.lower(), path.stat().st_size, str(path))
