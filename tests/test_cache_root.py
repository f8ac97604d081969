"""One cache root: ``--cache`` moves every cache, the rebuild cache included (a real, failing rebuild)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def _empty_rootfs(path: Path) -> Path:
    """A rootfs tarball with no shell in it: the configure phase fails at once, keeping its log."""
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("etc/empty")
        archive.addfile(info, io.BytesIO(b""))
    return path


def _rebuild(cpython_fixtures: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    rootfs = _empty_rootfs(tmp_path / "empty-rootfs.tar")
    return run_cli("rebuild", "3.13.5", "--from", cpython_fixtures, "--offline", "--rootfs", rootfs,
                   "--out", tmp_path / "out", *options)  # fmt: skip


def _kept_log(stderr: str) -> Path:
    match = re.search(r"full log: (\S+)", stderr)
    assert match, stderr
    return Path(match.group(1))


def test_cache_option_puts_the_downloads_and_the_rebuild_cache_under_it(
    cpython_fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPYTHON_VERIFY_CACHE", str(tmp_path / "from-the-environment"))
    root = tmp_path / "chosen"
    completed = _rebuild(cpython_fixtures, tmp_path, "--cache", str(root))
    assert completed.returncode == 2 and "configure phase failed" in completed.stderr, completed.stderr
    log = _kept_log(completed.stderr)
    # A failed build keeps its logs beside the rebuild cache's entries: <cache root>/rebuilds/failed/.
    assert log.is_file() and log.is_relative_to(root / "rebuilds" / "failed"), log
    assert any((root / "sha256").iterdir()), "the source files were cached under the same root"
    assert not (tmp_path / "from-the-environment").exists()


def test_rebuild_cache_option_still_wins_for_the_rebuild_cache(cpython_fixtures: Path, tmp_path: Path) -> None:
    root, rebuilds = tmp_path / "chosen", tmp_path / "rebuilds-elsewhere"
    completed = _rebuild(cpython_fixtures, tmp_path, "--cache", str(root), "--rebuild-cache", str(rebuilds))
    assert completed.returncode == 2, completed.stderr
    assert _kept_log(completed.stderr).is_relative_to(rebuilds / "failed")
    assert not (root / "rebuilds").exists()
