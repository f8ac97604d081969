"""Errors name what the user gave and what was expected: the user's output path (never a temporary file
beside it), what kind of file a compare input is, a log that still exists, an unsupported series."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from verify.common.fsutil import write_atomic


def _one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    return stderr.strip()


@pytest.mark.parametrize("option", ["--html", "-o"])
def test_an_output_path_in_a_missing_directory_is_named_as_given(option: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_text("x\n")
    target = tmp_path / "no" / "such" / "dir" / "report.out"
    result = run_cli("compare", tree, tree, option, target)
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert line.endswith(f": {target}"), line
    assert ".tmp" not in line


def test_write_atomic_names_the_destination_on_every_failure(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "out.json"
    with pytest.raises(FileNotFoundError) as raised:
        write_atomic(missing, b"{}")
    assert raised.value.filename == str(missing)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    with pytest.raises(OSError) as replaced:  # the rename over a directory fails after the bytes were written
        write_atomic(directory, b"{}")
    assert replaced.value.filename == str(directory)
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]  # and no temporary file is left


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "file").write_text("x\n")
    return tree


def test_compare_names_a_python_file_as_text_not_a_manifest(tree: Path) -> None:
    script = Path(__file__)
    result = run_cli("compare", tree, script)
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert f"B: {script} is text, not a manifest: compare reads a manifest" in line, line
    assert "Extra data" not in line


def test_compare_names_a_release_tarball_as_compressed(tree: Path, cpython_fixtures: Path) -> None:
    tarball = cpython_fixtures / "Python-3.13.5.tar.xz"
    result = run_cli("compare", tarball, tree)
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert f"A: {tarball} is an xz-compressed file, not a manifest" in line and "unpack it" in line, line
    assert "codec" not in line


def test_json_documents_say_what_they_got_instead(tmp_path: Path) -> None:
    # The same detection for every JSON input: here plan's --releases, given a compressed one and a script.
    compressed = tmp_path / "releases.json.gz"
    compressed.write_bytes(gzip.compress(b'{"releases": []}'))
    result = run_cli("plan", "--releases", compressed)
    assert result.returncode == 2
    assert "it is a gzip-compressed file, not JSON" in _one_line(result.stderr)
    result = run_cli("plan", "--releases", Path(__file__))
    assert "it is text, not JSON" in _one_line(result.stderr)


@pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap")
def test_env_lock_names_a_log_that_exists(tmp_path: Path) -> None:
    # Port 9 on 127.0.0.1: nothing listens, so mmdebstrap fails at once (offline too).
    result = run_cli(
        "env", "lock", "bookworm-cpython", "--mirror", "http://127.0.0.1:9/debian", "--cache-dir", tmp_path / "cache"
    )
    assert result.returncode == 2
    error = result.stderr.splitlines()[-1]  # after the progress line
    assert error.startswith("cpython-verify: error: mmdebstrap failed"), result.stderr
    named = re.search(r"\(log: (\S+)\)", error)
    assert named is not None, result.stderr
    log = Path(named.group(1))
    assert log.is_file() and log.stat().st_size > 0, log
    assert log.is_relative_to(tmp_path / "cache")


def test_a_python_2_release_names_its_series_and_the_supported_ones() -> None:
    result = run_cli("source", "2.7.18", "--offline", "--from", ".")
    assert result.returncode == 2
    line = _one_line(result.stderr)
    assert "CPython 2.7 is not a supported series; supported: 3.8, " in line, line
    assert "not a CPython release version" not in line
