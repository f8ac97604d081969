"""``cpython-verify plan``: the CI job matrix (versions x profiles x runners) as JSON.

Exit codes: 0 printed (an empty matrix only with ``--allow-empty``), 1 the plan is empty, 2 the releases
file is unreadable or there are no recipes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from verify.commands.aliases import renamed
from verify.commands.options import RUNNER_CHOICE
from verify.commands.output import Report, output_options
from verify.site.plan import REBUILDER_LETTERS


def _independent_rebuilds(values: Sequence[str]) -> dict[str, int]:
    """``PROFILE=N`` options -> profile -> N; a malformed one is a usage error (exit 2)."""
    counts: dict[str, int] = {}
    for value in values:
        profile, equals, number = value.partition("=")
        if not equals or not profile or not number.isdigit() or not 1 <= int(number) <= len(REBUILDER_LETTERS):
            raise click.BadParameter(
                f"{value!r} is not PROFILE=N with N from 1 to {len(REBUILDER_LETTERS)}",
                param_hint="--independent-rebuilds",
            )
        counts[profile] = int(number)
    return counts


def _plan_versions(versions: Sequence[str], releases_file: Path | None) -> list[str]:
    chosen = list(versions)
    if releases_file is not None:
        from verify.site.release_listing import read_release_listing

        chosen += [str(release.version) for release in read_release_listing(releases_file).releases]
    return chosen


@click.command("plan")
@click.argument("versions", nargs=-1, metavar="[VERSION]...")
@renamed("--version", "the VERSION arguments (plan VERSION...)", "versions", multiple=True)
@click.option(
    "--releases",
    "releases_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan every release in this `releases --json` output.",
)
@click.option("--profile", "profiles", multiple=True, help="Recipe build profiles (default: default).")
@click.option("--runner", "runners", multiple=True, type=RUNNER_CHOICE, help="Runners (default: bwrap; repeatable).")
@click.option(
    "--independent-rebuilds",
    "independent",
    multiple=True,
    metavar="PROFILE=N",
    help="Plan N jobs (rebuilder a, b, ...) for each release x runner of PROFILE: independent rebuilds on "
    "separate machines, whose install trees must agree (repeatable; default 1).",
)
@click.option("--allow-empty", is_flag=True, help="Print an empty matrix instead of failing (a night with no release).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print the matrix as JSON, {"include": [...]}: what CI reads (docs/attestation.md).',
)
@output_options
def plan(
    versions: tuple[str, ...],
    releases_file: Path | None,
    profiles: tuple[str, ...],
    runners: tuple[str, ...],
    independent: tuple[str, ...],
    allow_empty: bool,
    as_json: bool,
) -> None:
    """Plan a CI job matrix: each VERSION (and each release in --releases) x profiles x runners.

    One job per line; with --json the matrix GitHub Actions reads, {"include": [...]}.

    With --independent-rebuilds PROFILE=N, each release x runner of PROFILE is N jobs, rebuilder a, b,
    ... (ids ending -a, -b): each rebuilds from scratch on its own machine, and `merge` shows whether
    their install trees agree. They share a signer in CI, so they are runs of one rebuilder, not N
    independent rebuilders (docs/attestation.md).

    Releases whose series has no recipe, or whose recipe lacks a profile, are left out with a note on
    stderr, so the matrix holds only jobs that can run. A missing or empty recipes directory is an
    error (exit 2), not a plan that quietly drops every release.

    \b
    Examples:
      cpython-verify plan 3.13.5 3.12.10
      cpython-verify releases --since 2025-06-01 --json > releases.json
      cpython-verify plan --releases releases.json --runner bwrap --runner podman --allow-empty --json -o plan.json
    """
    from verify.common.errors import NothingToDo, RecipeError, VersionError
    from verify.site.plan import Plan, PlanJob
    from verify.source.recipes import available_recipes_dir, load_recipe
    from verify.source.releases import Version

    if not versions and releases_file is None:
        raise click.UsageError("give the releases to plan: VERSION arguments or --releases FILE")
    rebuild_counts = _independent_rebuilds(independent)
    available_recipes_dir()
    jobs: list[PlanJob] = []
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
            count = rebuild_counts.get(profile, 1)
            for runner in runners or ("bwrap",):
                for rebuilder in REBUILDER_LETTERS[:count]:
                    # One job keeps the id it always had (its status page history goes on).
                    suffix = f"-{rebuilder}" if count > 1 else ""
                    jobs.append(
                        PlanJob(
                            version=version,
                            series=version.series,
                            profile=profile,
                            runner=runner,
                            rebuilder=rebuilder,
                            id=f"{version}-{profile}-{runner}{suffix}",
                        )
                    )
    planned_profiles = set(profiles or ("default",))
    for profile in sorted(set(rebuild_counts) - planned_profiles):
        click.echo(f"plan: --independent-rebuilds names {profile}, a profile not planned (--profile)", err=True)
    if not jobs and not allow_empty:
        raise NothingToDo(
            "the plan is empty: no requested release has a recipe and profile (--allow-empty to print an empty matrix)"
        )
    report = Report.current()
    if as_json:
        report.echo(json.dumps(Plan(include=tuple(jobs)).to_json(), sort_keys=True))
    else:
        for job in jobs:
            report.echo(f"{job.id}\t{job.version} {job.profile} {job.runner} rebuilder {job.rebuilder}")
        report.echo(f"{len(jobs)} job(s)")
    report.close()
