"""Configure's answers do not follow the process that runs the build (a real CPython configure, sandboxed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from verify.environments import get_runner
from verify.environments.interface import Bind, RootfsImage, SandboxSpec
from verify.rebuild.core import unpack_release
from verify.rebuild.settings import BUILD_MOUNT, DEFAULT_BUILD_DIR, BuildSettings


@pytest.mark.slow
def test_configure_answers_the_same_at_any_niceness(
    real_image: RootfsImage, cpython_fixtures: Path, tmp_path: Path
) -> None:
    """CPython's "broken nice()" probe said yes at niceness 18 and 19 (a CI runner's ``nice -n 19``): the build
    environment gives configure Linux's answer instead, so the build's own priority changes nothing."""
    tree = tmp_path / "build"
    tree.mkdir()
    unpack_release(cpython_fixtures / "Python-3.13.5.tar.xz", tree / Path(DEFAULT_BUILD_DIR).name)
    settings = replace(BuildSettings(), source_date_epoch=0)
    spec = SandboxSpec(
        binds=(Bind(tree, BUILD_MOUNT, writable=True),), env=settings.environment(), cwd=DEFAULT_BUILD_DIR
    )
    command = ["nice", "-n", "19", "./configure", "--with-ensurepip=no"]
    result = get_runner("bwrap").run(real_image, command, spec, log_path=tmp_path / "configure.log")
    assert result.returncode == 0, (tmp_path / "configure.log").read_text()[-2000:]
    pyconfig = (tree / "cpython" / "pyconfig.h").read_text()
    assert "/* #undef HAVE_BROKEN_NICE */" in pyconfig
    assert "#define HAVE_BROKEN_NICE" not in pyconfig
