"""The nightly workflow run locally: scripts/nightly-local runs the workflow's own steps (scripts/nightly-step).

Fast tests check that the workflow and the local script share their steps; the slow test runs the
whole workflow on this machine against the real 3.13.5 fixtures, reusing the session's rebuilds.
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
from conftest import PROJECT_ROOT

from verify.chain import CHECK_VARIATIONS

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
    assert called == {"plan", "rebuild", "attest", "merge"}
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


# -- the slow run ------------------------------------------------------------------------------------


def _runs_as(user: str, python: str, pythonpath: str) -> bool:
    probe = ["setpriv", "--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid), "--clear-groups",
             "env", f"PYTHONPATH={pythonpath}", python, "-c", "import verify, sigstore"]  # fmt: skip
    return subprocess.run(probe, capture_output=True, cwd="/", check=False).returncode == 0


def _tool_command_for(user: str | None) -> tuple[str, str]:
    """``CPYTHON_VERIFY`` and ``PYTHONPATH`` running this checkout's ``verify`` with this interpreter's
    packages, for ``user`` too: a venv whose interpreter lives in root's home (pyenv) cannot be run by
    another user, so the system's interpreter of the same version is used with the same packages."""
    pythonpath = os.pathsep.join([str(PROJECT_ROOT), sysconfig.get_paths()["purelib"]])
    if user is None or _runs_as(user, sys.executable, pythonpath):
        return f"{sys.executable} -m verify", pythonpath
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if not _runs_as(user, system, pythonpath):
        pytest.skip(f"no interpreter with this checkout's packages that {user} may run")
    return f"{system} -m verify", pythonpath


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is under a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="nightly-local-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _committed_rebuilds(cache: Path) -> set[str]:
    return {entry.name for entry in cache.iterdir() if (entry / "rebuild.json").is_file()} if cache.is_dir() else set()


@pytest.mark.slow
def test_nightly_workflow_runs_end_to_end_locally(
    cpython_fixtures: Path, shared_rebuild_cache: Path, world_readable_dir: Path
) -> None:
    # As in CI: the rebuild runs as root, attest and merge as an unprivileged user who must read the
    # result; root's umask is 077 so any file the tool leaves private is caught.
    step_user = "nobody" if os.geteuid() == 0 else None
    command, pythonpath = _tool_command_for(step_user)
    built_before = _committed_rebuilds(shared_rebuild_cache)
    work = world_readable_dir / "work"
    argv = [str(LOCAL), "--work", str(work), "--versions", "3.13.5", "--from", str(cpython_fixtures), "--offline",
            "--rebuild-cache", str(shared_rebuild_cache)]  # fmt: skip
    if step_user:
        argv += ["--step-user", step_user]
    env = dict(os.environ, CPYTHON_VERIFY=command, PYTHONPATH=pythonpath, NO_COLOR="1")
    completed = subprocess.run(["sh", "-c", 'umask 077 && exec "$@"', "sh", *argv], capture_output=True, text=True,
                               env=env, timeout=7200, check=False)  # fmt: skip
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]

    # test_check_real built 3.13.5 twice with check's variations into the shared cache: the workflow's
    # rebuild must only verify the source and find both builds (unless this test runs alone).
    if len(built_before) >= 2:
        assert output.count("cached result") == 2 and "configure" not in output, output[-3000:]
        assert _committed_rebuilds(shared_rebuild_cache) == built_before, "the workflow rebuilt instead of reusing"

    status = json.loads((work / "site" / "status.json").read_text())
    rows = [row for row in status["rows"] if row["version"] == "3.13.5"]
    assert len(rows) == 1 and not status["notes"], status
    row = rows[0]
    assert row["profile"] == "default" and row["runner"] == "bwrap"
    assert row["verdict"] == "reproducible" and row["source_verified"] is True, row
    page = (work / "site" / "index.html").read_text()
    assert "3.13.5" in page

    # The page's attestation verifies for a third party with the public key, against the result.
    attestation = work / "site" / row["attestation"]
    checked = subprocess.run(
        [*command.split(), "verify-attestation", str(attestation), "--key", str(work / "rebuilder.pem.pub"),
         "--result", str(work / "result" / "3.13.5-default-bwrap")],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
