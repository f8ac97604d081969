"""``cpython-verify env``: the commands exist, list the shipped lock, and fail in one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

from verify.commands.env import describe_changes
from verify.environments.lock import load_lock


def test_env_list_shows_the_locked_digest() -> None:
    result = run_cli("env", "list")
    lock = load_lock("bookworm-cpython")
    assert result.returncode == 0, result.stderr
    assert f"bookworm-cpython\tbookworm/amd64\t{len(lock.packages)} packages\t{lock.rootfs_sha256}" in result.stdout


def test_env_build_of_an_unknown_environment_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("env", "build", "no-such-env", "--cache", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "env lock no-such-env" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        ("schema = = 1\n", "demo.lock: not valid TOML"),
        ("schema = 1\nsurprise = 1\n", "demo.lock: missing keys 'architecture', 'include', 'name',"),
        ("x = " + "[" * 50_000 + "]" * 50_000, "demo.lock: not valid TOML: nested too deeply"),
    ],
)
def test_a_malformed_lock_is_one_line_exit_2(tmp_path: Path, lock: str, message: str) -> None:
    (tmp_path / "demo.lock").write_text(lock)
    result = run_cli("env", "list", env={"CPYTHON_VERIFY_ENVIRONMENTS": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr


def test_env_run_rejects_unknown_runner() -> None:
    result = run_cli("env", "run", "bookworm-cpython", "--runner", "lxc", "true")
    assert result.returncode == 2 and "lxc" in result.stderr


def test_describe_changes_is_a_reviewable_summary() -> None:
    lock = load_lock("bookworm-cpython")
    assert describe_changes(lock, lock) == ["unchanged"]
    older = type(lock)(
        **{
            **{f: getattr(lock, f) for f in lock.__dataclass_fields__},
            "packages": lock.packages[1:],
            "rootfs_sha256": "0" * 64,
        }
    )
    lines = describe_changes(older, lock)
    assert lines[0] == f"+ {lock.packages[0].name} {lock.packages[0].version}"
    assert lines[-1].startswith("rootfs sha256 " + "0" * 64)
    assert describe_changes(None, lock) == [f"new lock: {len(lock.packages)} packages"]


def test_env_run_rejects_a_malformed_env_before_building_anything(tmp_path: Path) -> None:
    result = run_cli("env", "run", "bookworm-cpython", "--cache", str(tmp_path), "--env", "NOEQUALS", "true")
    assert result.returncode == 2 and "NOEQUALS" in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing was downloaded or built for a command that could not run"
