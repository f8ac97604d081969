"""Slow: the real 3.13.5 rebuild killed by SIGKILL in the middle of ``make``, then run again.

The killed run leaves no cache entry and no sandboxed process; the next run removes its staging directory
(hundreds of MB) and gives the reference install tree. The rebuild cache is the session's shared one: the
second run's build is the one the other real 3.13.5 tests find there, so this test costs only the killed
run (source checks, rootfs, configure and the start of make).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import processes_mentioning, run_cli

# The release tier (docs/testing.md): a second real build of 3.13.5 (the killed one reaches make). CI covers
# the mechanism on the tiny release: test_cache_faults.py kills a rebuild at every phase, make included.
pytestmark = [pytest.mark.slow, pytest.mark.release]

KILL_AT_SETTING = "CPYTHON_VERIFY_TEST_KILL_AT"
MANIFEST_SHA256 = "3c85bd4337a831bd4ef873df23686db240d911002e49eb5e99ae96a84639609a"
"""The manifest of the plain 3.13.5 rebuild in the pinned environment (as the issue measured it)."""


def test_a_real_rebuild_killed_during_make_leaves_nothing_and_the_rerun_gives_the_reference_tree(
    cpython_fixtures: Path, shared_rebuild_cache: Path, tmp_path: Path
) -> None:
    from verify.rebuild.cache import RebuildCache
    from verify.result.integrity import open_finished

    out = tmp_path / "out"
    args = ("rebuild", "3.13.5", "--from", cpython_fixtures, "--offline", "--rebuild-cache", shared_rebuild_cache,
            "--out", out)  # fmt: skip
    # --force: even with an entry already there (a reused cache), this run builds and so reaches make.
    killed = run_cli(*args, "--force", env={KILL_AT_SETTING: "make"}, timeout=3600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert "make ..." in killed.stderr and "make done" not in killed.stderr
    staging = sorted(shared_rebuild_cache.glob(".staging-*"))
    assert staging and all(path.name.endswith(".lock") or (path / "build").is_dir() for path in staging)
    assert not processes_mentioning(str(shared_rebuild_cache)), "the sandbox died with the killed run"
    assert not out.exists()

    rerun = run_cli(*args, timeout=3600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert open_finished(out).read_record().manifest_sha256 == MANIFEST_SHA256
    assert not list(shared_rebuild_cache.glob(".staging-*")), "the killed run's staging directory was removed"
    report = RebuildCache(shared_rebuild_cache).check_all()
    assert report.checked >= 1 and not report.damaged and not report.removed, report
