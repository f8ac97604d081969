"""``cpython-verify rebuild VERSION``: verify the source, rebuild it in the recipe's sandbox, and
(with ``--twice``) build again with variations and say whether the result is reproducible.

Exit codes: 0 built (and with ``--twice``: identical, or only the differences the chosen variations
are documented to cause), 1 source not verified or unexplained differences, 2 operational error
(including a failed build phase, whose log tail is shown).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import click

from verify.commands.options import source_options
from verify.errors import EXIT_FAILED, OperationalError
from verify.fsutil import make_result_directory, write_json_atomic
from verify.models import FetchedFile, SourceVerdict
from verify.rebuild import (
    VARIATIONS,
    BuildFailed,
    BuildSettings,
    RebuildCache,
    RebuildResult,
    parse_variations,
    rebuild_cache_dir,
)
from verify.rebuild.core import rebuild as run_rebuild
from verify.rebuild.sandbox import image_for, runner_for
from verify.rebuild.variations import Comparison, bisect_variations, compare_results
from verify.releases import Version

_RESULT_MARKER = "rebuild.json"


class _PhaseDisplay:
    """Shows the running phase and its elapsed time on stderr; a plain line per phase when not a terminal."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._interactive = sys.stderr.isatty()
        self._status: Any = None
        self._started = 0.0

    def phase_started(self, phase: str) -> None:
        self._started = time.monotonic()
        if self._interactive:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._status = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True)
            )
            self._status.start()
            self._status.add_task(f"{self._label}: {phase}", total=None)
        else:
            click.echo(f"{self._label}: {phase} ...", err=True)

    def phase_finished(self, phase: str, seconds: float) -> None:
        self.stop()
        click.echo(f"{self._label}: {phase} done in {seconds:.1f} s", err=True)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so a terminated rebuild cleans up like a Ctrl-C one."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("rebuild")
@click.argument("version")
@source_options
@click.option("--profile", default="default", show_default=True, help="Recipe build profile (e.g. default, pgo-lto).")
@click.option(
    "--runner", "runner_name", default="bwrap", show_default=True, help="Sandbox runner: bwrap, podman, docker."
)
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
def rebuild(**params: Any) -> None:
    """Rebuild CPython VERSION from its verified source in the recipe's pinned sandbox."""
    baseline, comparison, out_dir = rebuild_release(params)
    _report(baseline, comparison, out_dir)
    if comparison is not None and not comparison.explained:
        sys.exit(EXIT_FAILED)


def rebuild_release(params: dict[str, Any]) -> tuple[RebuildResult, Comparison | None, Path]:
    """The rebuild stage for the ``rebuild`` and ``check`` commands, from their option values.

    Verifies the source, builds (twice with ``twice``), publishes the result directory and returns the
    baseline result, the comparison of the two builds (if any) and the result directory.
    """
    version = Version.parse(params["version"])
    variations = parse_variations(params["vary"]) if params["vary"] else frozenset(VARIATIONS)
    if params["bisect"] and not params["twice"]:
        raise OperationalError("--bisect needs --twice")
    if params["vary"] and not params["twice"]:
        raise OperationalError("--vary needs --twice")

    pgo_profile = _pinned_pgo_profile(params["pgo_profile"], params["pgo_profile_sha256"])
    verdict, tarball = _verified_source(version, params)
    from verify.recipes import load_recipe

    recipe = load_recipe(version.series, params.get("recipes_dir"))
    if recipe.build is None:
        raise OperationalError(f"the CPython {recipe.series} recipe has no [build] section")
    runner = runner_for(params["runner_name"])
    runner.check_available()
    image = image_for(recipe.build.environment, cache_dir=params.get("cache_dir"), rootfs=params["rootfs"])
    cache = RebuildCache(rebuild_cache_dir(params.get("cache_dir"), params["rebuild_cache"]))
    settings = BuildSettings() if params["jobs"] is None else replace(BuildSettings(), jobs=params["jobs"])

    def build(chosen: frozenset[str]) -> RebuildResult:
        label = f"{version} {params['profile']}" + (f" [{','.join(sorted(chosen))}]" if chosen else "")
        display = _PhaseDisplay(label)
        try:
            result = run_rebuild(
                tarball,
                verdict,
                recipe,
                params["profile"],
                image,
                runner,
                settings,
                chosen,
                None,
                cache,
                force=params["force"],
                progress=display,
                pgo_profile=pgo_profile,
            )
        except BuildFailed as failure:
            display.stop()
            click.echo(f"{label}: {failure.phase} failed; last lines of {failure.log_path}:", err=True)
            for line in failure.tail:
                click.echo(f"  | {line}", err=True)
            raise
        finally:
            display.stop()
        if result.from_cache:
            click.echo(f"{label}: cached result {result.result_dir}", err=True)
        return result

    with _terminate_as_interrupt():
        baseline = build(frozenset())
        comparison: Comparison | None = None
        if params["twice"]:
            comparison = compare_results(baseline, build(variations), variations)
            if params["bisect"] and not comparison.reproducible:
                comparison = bisect_variations(build, comparison)

    out_dir = params["out_dir"] or Path(f"rebuild-{version}-{params['profile']}")
    _publish(baseline, comparison, out_dir)
    return baseline, comparison, out_dir


def _pinned_pgo_profile(path: Path | None, sha256: str | None) -> FetchedFile | None:
    """The ``--pgo-profile`` file with its pinned digest (checked again as the build copies it)."""
    if path is None:
        if sha256:
            raise OperationalError("--pgo-profile-sha256 needs --pgo-profile")
        return None
    if not sha256 or len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
        raise OperationalError("--pgo-profile needs --pgo-profile-sha256 with the profile's 64-hex-digit sha256")
    return FetchedFile(path.name, path, sha256.lower(), path.stat().st_size, str(path))


def _verified_source(version: Version, params: dict[str, Any]) -> tuple[SourceVerdict, FetchedFile]:
    """The source stage, as the other commands run it; raises unless the tarball is verified."""
    from verify.assembly import SourceOptions, require_verified, verify_release_source

    options = SourceOptions.from_params(params)
    verdict = verify_release_source(version, options)
    return verdict, require_verified(verdict)


def _publish(baseline: RebuildResult, comparison: Comparison | None, out_dir: Path) -> None:
    """Assemble the result directory: the baseline's files (hard links into the cache) and rebuild.json.

    Built beside ``out_dir`` and renamed into place; an existing directory is replaced only if it is
    an earlier result (has rebuild.json), never an unrelated directory.
    """
    if out_dir.exists() and not (out_dir / _RESULT_MARKER).is_file():
        if any(out_dir.iterdir()):
            raise OperationalError(f"--out {out_dir} exists and is not a cpython-verify result; not replacing it")
        out_dir.rmdir()
    staging = make_result_directory(out_dir.parent, f".{out_dir.name}.")
    try:
        for name in ("root", "logs"):
            if (baseline.result_dir / name).exists():
                shutil.copytree(baseline.result_dir / name, staging / name, symlinks=True, copy_function=_link_or_copy)
        for name in ("manifest.json", "source-verdict.json", "pgo-profile.tar"):
            if (baseline.result_dir / name).exists():
                shutil.copy2(baseline.result_dir / name, staging / name)
        record = dict(baseline.record)
        if comparison is not None:
            record.update(comparison.to_json())
        write_json_atomic(staging / _RESULT_MARKER, record)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _report(baseline: RebuildResult, comparison: Comparison | None, out_dir: Path) -> None:
    click.echo(f"result: {out_dir}")
    click.echo(f"manifest: {out_dir / 'manifest.json'} (sha256 {baseline.record.get('manifest_sha256')})")
    if comparison is None:
        return
    varied = ", ".join(sorted(comparison.variations)) or "nothing"
    if comparison.reproducible:
        click.echo(f"reproducible: the build varied in {varied} is identical in every file")
        return
    click.echo(f"NOT reproducible bit for bit: {len(comparison.differences)} path(s) differ (varied: {varied})")
    changes: dict[str, dict[str, int]] = {}
    for difference in comparison.differences:
        per_kind = changes.setdefault(difference.kind, {})
        per_kind[difference.change] = per_kind.get(difference.change, 0) + 1
    for kind, paths in comparison.to_json()["differences_by_kind"].items():
        detail = ", ".join(f"{count} {change}" for change, count in sorted(changes[kind].items()))
        click.echo(f"  {kind}: {len(paths)} ({detail})")
        for path in paths[:10]:
            click.echo(f"    {path}")
        if len(paths) > 10:
            click.echo(f"    ... and {len(paths) - 10} more")
    if comparison.explained:
        click.echo("all differences are of the kinds the chosen variations are documented to cause")
    else:
        click.echo(f"unexplained differences: {len(comparison.unexplained)}")
    if comparison.culprits:
        culprits = [name for name, guilty in sorted(comparison.culprits.items()) if guilty]
        click.echo(f"culprit variation(s): {', '.join(culprits) or 'none alone (an interaction)'}")
