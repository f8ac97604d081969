"""``cpython-verify plan``: the CI job matrix (versions x profiles x runners) as JSON.

Exit codes: 0 printed (an empty matrix only with ``--allow-empty``), 1 the plan is empty, 2 the releases
file is unreadable or there are no recipes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from verify.attest import AttestationError
from verify.commands.output import Report, output_options
from verify.common.jsonutil import read_json_file
from verify.common.limits import PLAN_MAX_BYTES


def _known_runners_only(_ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a runner no sandbox implements, as a usage error (exit 2), before planning jobs that cannot run."""
    if value:
        from verify.environments.runners import known_runners  # only when asked: it imports the sandboxes

        known = known_runners()
        for name in value:
            if name not in known:
                raise click.BadParameter(f"unknown runner {name!r}; choose from {', '.join(known)}")
    return value


def _plan_versions(versions: Sequence[str], releases_file: Path | None) -> list[str]:
    chosen = list(versions)
    if releases_file is not None:
        try:
            data = read_json_file(releases_file, PLAN_MAX_BYTES)
        except (OSError, ValueError) as error:
            raise AttestationError(f"cannot read releases file {releases_file}: {error}") from None
        items = data.get("releases") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("version"), str) for i in items
        ):
            raise AttestationError(f"{releases_file} is not the output of `cpython-verify releases --json`")
        chosen += [item["version"] for item in items]
    return chosen


@click.command("plan")
@click.option("--version", "versions", multiple=True, help="A release to plan (repeatable).")
@click.option(
    "--releases",
    "releases_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan every release in this `releases --json` output.",
)
@click.option("--profile", "profiles", multiple=True, help="Recipe build profiles (default: default).")
@click.option("--runner", "runners", multiple=True, callback=_known_runners_only, help="Runners (default: bwrap).")
@click.option("--allow-empty", is_flag=True, help="Print an empty matrix instead of failing (a night with no release).")
@output_options
def plan(
    versions: tuple[str, ...],
    releases_file: Path | None,
    profiles: tuple[str, ...],
    runners: tuple[str, ...],
    allow_empty: bool,
) -> None:
    """Print a CI job matrix (versions x profiles x runners) as JSON: {"include": [...]}.

    Releases whose series has no recipe, or whose recipe lacks a profile, are left out with a note on
    stderr, so the matrix holds only jobs that can run. A missing or empty recipes directory is an
    error (exit 2), not a plan that quietly drops every release.

    \b
    Examples:
      cpython-verify plan --version 3.13.5 --version 3.12.10
      cpython-verify releases --since 2025-06-01 --json > releases.json
      cpython-verify plan --releases releases.json --runner bwrap --runner podman --allow-empty
    """
    from verify.common.errors import NothingToDo, RecipeError, VersionError
    from verify.source.recipes import available_recipes_dir, load_recipe
    from verify.source.releases import Version

    if not versions and releases_file is None:
        raise click.UsageError("give the releases to plan with --version or --releases")
    available_recipes_dir()
    jobs: list[dict[str, str]] = []
    seen: set[str] = set()
    for text in _plan_versions(versions, releases_file):
        try:
            version = Version.parse(text)
            recipe = load_recipe(version.series)
        except (VersionError, RecipeError) as error:
            click.echo(f"plan: skipping {text}: {error.message}", err=True)
            continue
        if str(version) in seen:
            continue
        seen.add(str(version))
        for profile in profiles or ("default",):
            if recipe.build is None or profile not in recipe.build.profiles:
                click.echo(
                    f"plan: skipping {version} {profile}: the {version.series} recipe has no such profile", err=True
                )
                continue
            for runner in runners or ("bwrap",):
                jobs.append(
                    {
                        "version": str(version),
                        "series": version.series,
                        "profile": profile,
                        "runner": runner,
                        "id": f"{version}-{profile}-{runner}",
                    }
                )
    if not jobs and not allow_empty:
        raise NothingToDo(
            "the plan is empty: no requested release has a recipe and profile (--allow-empty to print an empty matrix)"
        )
    report = Report.current()
    report.echo(json.dumps({"include": jobs}, sort_keys=True))
    report.close()
