"""The nightly workflow run locally: scripts/nightly-local runs the workflow's own steps (scripts/nightly-step).

Fast tests check that the workflow and the local script share their steps and run the attest and merge
steps on a small real result; the slow test runs the whole workflow on this machine against the real
3.13.5 fixtures, reusing the session's rebuilds.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT, cli_environment
from test_attest_support import TARBALL, make_result, openssl_keypair
from test_cache_faults import TinyRelease, tiny_release

from verify.chain import CHECK_VARIATIONS
from verify.compare import compare_paths
from verify.report.compare import render_html
from verify.result import ResultDir

__all__ = ["tiny_release"]  # the fixture, imported to be used here

STEP = PROJECT_ROOT / "scripts" / "nightly-step"
LOCAL = PROJECT_ROOT / "scripts" / "nightly-local"
WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "nightly-attest.yml"


def _run_bodies() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    return [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "run" in step]


def test_every_workflow_step_is_a_nightly_step_sub_command() -> None:
    # Only set-up, GitHub's own plumbing (outputs, the matrix handed to the merge job) and calls of
    # scripts/nightly-step may appear in a run: body, so scripts/nightly-local runs what CI runs.
    called = set()
    for body in _run_bodies():
        assert "cpython-verify" not in body, f"a workflow step runs the tool itself instead of nightly-step: {body}"
        for line in body.strip().splitlines():
            if line.startswith("scripts/bootstrap") or "GITHUB_OUTPUT" in line or line.startswith("printf"):
                continue
            match = re.search(r"scripts/nightly-step (\w+)", line)
            if match:
                called.add(match.group(1))
            else:
                assert line.startswith("  --") or line.startswith("--"), f"unexpected workflow command: {line}"
    assert called == {"plan", "rebuild", "attest", "merge", "gate"}
    local = LOCAL.read_text()
    for sub_command in called:
        assert f'"$step" {sub_command}' in local, f"scripts/nightly-local never runs nightly-step {sub_command}"


def test_the_nightly_second_build_varies_what_check_varies() -> None:
    match = re.search(r'^NIGHTLY_VARIATIONS="([^"]+)"$', STEP.read_text(), re.MULTILINE)
    assert match, "scripts/nightly-step no longer names its variations"
    assert frozenset(match.group(1).split(",")) == CHECK_VARIATIONS


@pytest.mark.parametrize(
    ("script", "args"), [(STEP, []), (STEP, ["deploy"]), (STEP, ["attest", "x", "--neither"]), (LOCAL, ["--bogus"])]
)
def test_bad_arguments_are_one_line_and_exit_2(script: Path, args: list[str], tmp_path: Path) -> None:
    completed = subprocess.run([script, *args], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert list(tmp_path.iterdir()) == [], "a refused call must not start a step"


# -- the attest and merge steps on a small real result ------------------------------------------------

JOB = "3.13.5-default-bwrap"


def _step(work: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """Run ``nightly-step`` in ``work`` with this checkout's CLI, as the workflow runs it."""
    env = cli_environment(extra={"CPYTHON_VERIFY": f"{sys.executable} -m verify"})
    return subprocess.run([STEP, *map(str, args)], capture_output=True, text=True, cwd=work, env=env, timeout=300,
                          check=False)  # fmt: skip


@pytest.fixture
def nightly_work(tmp_path: Path, cpython_fixtures: Path) -> Path:
    """A work directory as the rebuild step leaves it: ``result/JOB`` (a real, attestable result), the
    plan naming JOB, and an offline key pair."""
    work = tmp_path / "work"
    make_result(work / "result" / JOB, cpython_fixtures / TARBALL)
    (work / "plan.json").write_text(json.dumps({"include": [
        {"version": "3.13.5", "profile": "default", "runner": "bwrap", "series": "3.13", "id": JOB}]}))  # fmt: skip
    openssl_keypair(work, "rebuilder")
    return work


def test_attest_publishes_the_compare_report_and_merge_links_it_from_the_rows_page(
    nightly_work: Path, cpython_fixtures: Path
) -> None:
    result = ResultDir(nightly_work / "result" / JOB)
    other = make_result(nightly_work / "other", cpython_fixtures / TARBALL, variant=" (edited)")
    report = render_html(compare_paths(result.path, other))
    result.compare_html_path.write_text(report)

    attested = _step(nightly_work, "attest", JOB, "--signing-key", nightly_work / "rebuilder.pem")
    assert attested.returncode == 0, attested.stderr
    published = nightly_work / "publish" / f"{JOB}.compare.html"
    assert published.read_text() == report and not published.is_symlink()
    shutil.copytree(nightly_work / "publish", nightly_work / "attestations")
    merged = _step(nightly_work, "merge", "attestations", "--public-key", nightly_work / "rebuilder.pub")
    assert merged.returncode == 0, merged.stdout + merged.stderr

    site = nightly_work / "site"
    status = json.loads((site / "status.json").read_text())
    (row,) = status["rows"]
    assert not status["notes"], status["notes"]
    links = {artifact["label"]: artifact["link"] for artifact in row["artifacts"]}
    assert links.keys() == {"manifest", "compare report"}
    assert f'href="../{links["compare report"]}"' in (site / row["page"]).read_text()
    served = (site / links["compare report"]).read_text()
    assert served.startswith('<!DOCTYPE html>\n<meta http-equiv="Content-Security-Policy"')
    assert served.endswith(report) and "opt/python/lib/python3.13/LICENSE.txt" in served


def test_attest_never_follows_a_compare_report_that_is_a_symbolic_link(nightly_work: Path) -> None:
    secret = nightly_work / "secret.txt"
    secret.write_text("the runner's secret\n")
    result = ResultDir(nightly_work / "result" / JOB)
    result.compare_html_path.symlink_to(secret)
    # An earlier run's report must not stay beside this run's attestation either.
    (nightly_work / "publish").mkdir()
    (nightly_work / "publish" / f"{JOB}.compare.html").write_text("<p>last night's report</p>")

    attested = _step(nightly_work, "attest", JOB, "--signing-key", nightly_work / "rebuilder.pem")
    assert attested.returncode == 0, attested.stderr
    published = sorted(path.name for path in (nightly_work / "publish").iterdir())
    assert published == [f"{JOB}.intoto.json", f"{JOB}.manifest.json", f"{JOB}.provenance.intoto.json"]
    assert not any("secret" in path.read_text(errors="replace") for path in (nightly_work / "publish").iterdir())


# -- the slow run ------------------------------------------------------------------------------------


def _runs_as(user: str, python: str, pythonpath: str) -> bool:
    probe = ["setpriv", "--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--clear-groups",
             "env", f"PYTHONPATH={pythonpath}", python, "-c", "import verify, sigstore"]  # fmt: skip
    return subprocess.run(probe, capture_output=True, cwd="/", check=False).returncode == 0


def _tool_command_for(user: str | None, directory: Path) -> tuple[str, str]:
    """``CPYTHON_VERIFY`` and ``PYTHONPATH`` running this checkout's ``verify`` with this interpreter's
    packages, for ``user`` too: a venv whose interpreter lives in root's home (pyenv) cannot be run by
    another user, so that user's steps (attest, merge) use the system's interpreter of the same series with
    the same packages, while root's step (the rebuild) keeps this interpreter, as the workflow's `sudo`
    rebuild keeps the checkout's (the system's may be an older patch release: bookworm's 3.11.2 has no
    tarfile extraction filters, which unpacking a release needs). The choice is by user id, in a wrapper
    script written to ``directory``."""
    pythonpath = os.pathsep.join([str(PROJECT_ROOT), sysconfig.get_paths()["purelib"]])
    if user is None or _runs_as(user, sys.executable, pythonpath):
        return f"{sys.executable} -m verify", pythonpath
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not _runs_as(user, system, pythonpath):
        pytest.skip(f"no interpreter with this checkout's packages that {user} may run")
    wrapper = directory / "cpython-verify-by-user"
    wrapper.write_text(f'#!/bin/sh\nif [ "$(id -u)" = 0 ]; then exec {sys.executable} -m verify "$@"; fi\n'
                       f'exec {system} -m verify "$@"\n')  # fmt: skip
    wrapper.chmod(0o755)
    return str(wrapper), pythonpath


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="nightly-local-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _committed_rebuilds(cache: Path) -> set[str]:
    return {entry.name for entry in cache.iterdir() if (entry / "rebuild.json").is_file()} if cache.is_dir() else set()


def _run_nightly_local(
    work: Path, *options: object, extra_env: dict[str, str] | None = None, exit_code: int = 0
) -> tuple[str, dict[str, str]]:
    """Run scripts/nightly-local for 3.13.5 into ``work`` as CI runs the workflow: the rebuild as root, attest
    and merge as an unprivileged user who must read the result; root's umask is 077 so any file the tool
    leaves private is caught. Returns its output and the environment the tool ran in."""
    step_user = "nobody" if os.geteuid() == 0 else None
    command, pythonpath = _tool_command_for(step_user, work.parent)
    argv = [str(LOCAL), "--work", str(work), "--versions", "3.13.5", *map(str, options)]
    if step_user:
        argv += ["--step-user", step_user]
    env = dict(os.environ, CPYTHON_VERIFY=command, PYTHONPATH=pythonpath, NO_COLOR="1", **(extra_env or {}))
    completed = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", *argv], capture_output=True, text=True,
                               env=env, timeout=7200, check=False)  # fmt: skip
    output = completed.stdout + completed.stderr
    assert completed.returncode == exit_code, output[-3000:]
    return output, env


def _assert_published_reproducible(work: Path, env: dict[str, str], job: str = "3.13.5-default-bwrap") -> None:
    """The status page has one reproducible, source-verified row for 3.13.5 (default profile, bwrap) from
    ``job``, links the rebuild's comparison report in the record's words, and its attestation verifies for a
    third party."""
    status = json.loads((work / "site" / "status.json").read_text())
    rows = [row for row in status["rows"] if row["version"] == "3.13.5" and row["job"] == job]
    assert len(rows) == 1 and not status["notes"], status
    row = rows[0]
    assert row["profile"] == "default" and row["runner"] == "bwrap"
    assert row["verdict"] == "reproducible" and row["source_verified"] is True, row
    page = (work / "site" / "index.html").read_text()
    assert "3.13.5" in page
    # The rebuild's comparison of its two builds reaches the row's page, in the record's words.
    links = {artifact["label"]: artifact["link"] for artifact in row["artifacts"]}
    assert "compare report" in links, row["artifacts"]
    assert f'href="../{links["compare report"]}"' in (work / "site" / row["page"]).read_text()
    report = (work / "site" / links["compare report"]).read_text()
    varied = ", ".join(sorted(CHECK_VARIATIONS))
    assert f"CPython 3.13.5, profile default: baseline vs. a build varied in {varied}" in report
    assert f"reproducible: the build varied in {varied} is identical in every file" in report

    # The page's attestation verifies for a third party with the public key, against the result.
    attestation = work / "site" / row["attestation"]
    checked = subprocess.run(
        [*env["CPYTHON_VERIFY"].split(), "verify-attestation", str(attestation), "--public-key",
         str(work / "rebuilder.pem.pub"), "--result", str(work / "result" / job)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_nightly_workflow_runs_end_to_end_locally_on_the_tiny_release(
    tiny_release: TinyRelease, world_readable_dir: Path
) -> None:
    """CI's run of the whole workflow (the real 3.13.5's is in the release tier: its rebuild --twice is a
    second real build): the tiny release dressed as 3.13.5, its recipe, its rootfs, the same steps."""
    # Copies the step user can read (pytest's tmp_path is under a 0700 directory).
    recipes = shutil.copytree(tiny_release.recipes, world_readable_dir / "recipes")
    distfiles = shutil.copytree(tiny_release.distfiles, world_readable_dir / "distfiles")
    work = world_readable_dir / "work"
    _output, env = _run_nightly_local(work, "--from", distfiles, "--offline", "--rootfs", tiny_release.rootfs,
                                      "--cache", world_readable_dir / "cache",
                                      extra_env={"CPYTHON_VERIFY_RECIPES": str(recipes)})  # fmt: skip
    _assert_published_reproducible(work, env)


# The planted disagreement: job b's result replaced, before it is attested, by a result whose tree differs (one
# installed file), as a machine that built something else would leave it.
_PLANT = """
import shutil, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_attest_support import make_result
if sys.argv[1].endswith("-b"):
    shutil.rmtree(Path("result", sys.argv[1]))
    make_result(Path("result", sys.argv[1]), Path({tarball!r}), variant=" (built elsewhere)")
"""


def _tiny_two_jobs(tiny_release: TinyRelease, directory: Path) -> tuple[list[object], dict[str, str]]:
    recipes = shutil.copytree(tiny_release.recipes, directory / "recipes")
    distfiles = shutil.copytree(tiny_release.distfiles, directory / "distfiles")
    options: list[object] = ["--profiles", "default", "--independent-rebuilds", "default=2", "--from", distfiles,
                             "--offline", "--rootfs", tiny_release.rootfs, "--cache", directory / "cache"]  # fmt: skip
    return options, {"CPYTHON_VERIFY_RECIPES": str(recipes)}


def test_two_rebuild_jobs_with_separate_caches_agree_locally_on_the_tiny_release(
    tiny_release: TinyRelease, world_readable_dir: Path
) -> None:
    """The workflow's two runner jobs of one release x profile, on this machine: each rebuilds with its own
    rebuild cache, both are signed by the one key, and the page says their runs agree (one signer)."""
    options, extra_env = _tiny_two_jobs(tiny_release, world_readable_dir)
    work = world_readable_dir / "work"
    output, _env = _run_nightly_local(work, *options, extra_env=extra_env)
    assert output.count("nightly-local: rebuild ") == 2 and "nightly-local: gate" in output
    # Separate rebuild caches: job a's (the cache root's rebuilds/) and job b's own, each with its builds.
    own = _committed_rebuilds(work / "rebuild-caches" / "3.13.5-default-bwrap-b")
    assert own and _committed_rebuilds(world_readable_dir / "cache" / "rebuilds"), output[-3000:]
    status = json.loads((work / "site" / "status.json").read_text())
    assert sorted((row["job"], row["verdict"]) for row in status["rows"]) == [
        ("3.13.5-default-bwrap-a", "reproducible"), ("3.13.5-default-bwrap-b", "reproducible")]  # fmt: skip
    [verdict] = status["agreement"]
    assert verdict["state"] == "met" and verdict["independent"] == 1
    [runs] = verdict["runs"]
    assert runs["agree"] and len(runs["runs"]) == 2 and len(runs["machines"]) == 1  # one machine here, said so
    assert "one rebuilder (one signer), 2 runs on 1 machine agree" in (work / "site" / "index.html").read_text()


def test_a_planted_disagreement_between_two_jobs_shows_red_and_fails_nightly_local(
    tiny_release: TinyRelease, world_readable_dir: Path, cpython_fixtures: Path
) -> None:
    options, extra_env = _tiny_two_jobs(tiny_release, world_readable_dir)
    plant = world_readable_dir / "plant.py"
    plant.write_text(_PLANT.format(tests=str(Path(__file__).parent), tarball=str(cpython_fixtures / TARBALL)))
    work = world_readable_dir / "work"
    hook = f"umask 022; {sys.executable} {plant}"
    output, _env = _run_nightly_local(work, *options, "--before-attest", hook, extra_env=extra_env, exit_code=1)
    assert "nightly-step: 3.13.5 default disagree: " in output and "DISAGREE (1 signer" in output
    status = json.loads((work / "site" / "status.json").read_text())
    [verdict] = status["agreement"]
    assert verdict["state"] == "disagree" and not verdict["runs"][0]["agree"]
    trees = verdict["runs"][0]["trees"]
    page = (work / "site" / "index.html").read_text()
    assert len(trees) == 2 and all(f"<code>{tree}</code>" in page for tree in trees)
    assert "RUNS OF ONE REBUILDER DISAGREE" in page


@pytest.mark.slow
@pytest.mark.release  # rebuild --twice: a second real build (docs/testing.md); CI runs it on the tiny release
def test_nightly_workflow_runs_end_to_end_locally(
    cpython_fixtures: Path, shared_rebuild_cache: Path, world_readable_dir: Path
) -> None:
    """Two runner jobs of 3.13.5 default, as the workflow runs pgo-lto-deterministic's (a PGO build is not for
    a test run): job a with the session's rebuild cache, job b rebuilding twice in a cache of its own."""
    built_before = _committed_rebuilds(shared_rebuild_cache)
    work = world_readable_dir / "work"
    output, env = _run_nightly_local(work, "--from", cpython_fixtures, "--offline", "--profiles", "default",
                                     "--independent-rebuilds", "default=2",
                                     "--rebuild-cache", shared_rebuild_cache)  # fmt: skip

    # test_check_real built 3.13.5 twice with check's variations into the shared cache: job a's rebuild must
    # only verify the source and find both builds (unless this test runs alone); job b shares no cache.
    job_a = output.split("nightly-local: rebuild 3.13.5-default-bwrap-b", 1)[0]
    if len(built_before) >= 2:
        assert job_a.count("cached result") == 2 and "configure" not in job_a, output[-3000:]
        assert _committed_rebuilds(shared_rebuild_cache) == built_before, "the workflow rebuilt instead of reusing"
    assert _committed_rebuilds(work / "rebuild-caches" / "3.13.5-default-bwrap-b"), "job b did not rebuild"

    for job in ("3.13.5-default-bwrap-a", "3.13.5-default-bwrap-b"):
        _assert_published_reproducible(work, env, job)
    [verdict] = json.loads((work / "site" / "status.json").read_text())["agreement"]
    assert verdict["state"] == "met" and verdict["runs"][0]["agree"], verdict
