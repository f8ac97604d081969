"""The ``exec_path`` variation means what reprotest's does: an absent directory appended to ``PATH``.

reprotest's ``build.py`` runs the varied build with ``PATH + ':/i_capture_the_path'`` and the control
build with ``PATH`` unchanged. Run in the real bwrap sandbox: every command resolves to the same file in
both builds, and only the value of ``PATH`` differs.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from verify.environments.bwrap import BwrapRunner
from verify.environments.interface import RootfsImage, SandboxSpec
from verify.rebuild.settings import PATH, VARIED_EXEC_PATH_DIR, BuildSettings, apply_variations

PROBE = 'echo "PATH=$PATH"; for tool in sh cat env date; do echo "$tool=$(command -v "$tool")"; done'


def _sandbox_view(image: RootfsImage, settings: BuildSettings, log: Path) -> list[str]:
    environment = settings.environment()
    result = BwrapRunner().run(image, ["/bin/sh", "-c", PROBE], SandboxSpec(env=environment), log_path=log)
    assert result.returncode == 0, log.read_text()
    return log.read_text().splitlines()


def test_exec_path_appends_an_absent_directory_as_reprotest_does() -> None:
    baseline = BuildSettings(source_date_epoch=1)
    varied = apply_variations(baseline, frozenset({"exec_path"}))
    assert baseline.environment()["PATH"] == PATH
    assert varied.environment()["PATH"] == PATH + ":" + VARIED_EXEC_PATH_DIR == PATH + ":/i_capture_the_path"
    assert {**varied.environment(), "PATH": PATH} == baseline.environment(), "nothing but PATH changes"
    # Recorded (and so in the cache key) under its own name, only when varied.
    assert varied.to_json()["exec_path_suffix"] == VARIED_EXEC_PATH_DIR
    assert "exec_path_suffix" not in baseline.to_json() and "exec_path_prefix" not in varied.to_json()


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_exec_path_changes_the_value_of_path_and_no_command_lookup(tiny_image: RootfsImage, tmp_path: Path) -> None:
    baseline = BuildSettings(source_date_epoch=1)
    varied = apply_variations(baseline, frozenset({"exec_path"}))
    before = _sandbox_view(tiny_image, baseline, tmp_path / "baseline.log")
    after = _sandbox_view(tiny_image, varied, tmp_path / "varied.log")
    assert before[0] == f"PATH={PATH}" and after[0] == f"PATH={PATH}:/i_capture_the_path"
    assert before[1:] == after[1:] and all(line.split("=", 1)[1].startswith("/") for line in after[1:]), after
    assert replace(varied, exec_path_suffix="") == baseline


def test_the_user_base_sysconfig_records_does_not_follow_home(tmp_path: Path) -> None:
    """From 3.14, ``make`` writes ``sysconfig``'s variables to ``_sysconfig_vars_*.json``, ``userbase`` among
    them, which is ``$HOME/.local`` unless ``PYTHONUSERBASE`` is set (3.15.0rc1 under ``--vary all``: its only
    unexplained difference). Asked of a real ``sysconfig``, under the build's environment with and without
    the ``home`` variation, the answer is the same, and the same as the default ``HOME`` gives."""
    import subprocess
    import sys

    from verify.rebuild.settings import DEFAULT_HOME, USER_BASE

    query = "import sysconfig; print(sysconfig.get_config_var('userbase'))"
    answers = []
    for settings in (BuildSettings(), apply_variations(BuildSettings(), frozenset({"home"}))):
        environment = replace(settings, source_date_epoch=0).environment()
        completed = subprocess.run(
            [sys.executable, "-I", "-c", query], env=environment, capture_output=True, text=True, check=True
        )
        answers.append((environment["HOME"], completed.stdout.strip()))
    assert answers[0][0] != answers[1][0], "the home variation changes HOME"
    assert answers[0][1] == answers[1][1] == USER_BASE == f"{DEFAULT_HOME}/.local"
    assert BuildSettings().to_json()["python_user_base"] == USER_BASE
