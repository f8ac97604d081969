"""One vocabulary across commands (issue 22): VERSION positional, one cache option, separate signing and
verifying keys, --json, -v and --runner the same everywhere; old spellings warn and still work."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from conftest import run_cli
from schema_support import REPORTING_COMMANDS
from test_attest_support import TARBALL, make_result, openssl_keypair

from verify.cli import cli
from verify.commands.output import VERBOSE_HELP
from verify.environments.runners import known_runners
from verify.source.names import RUNNER_NAMES

REPORTING = [*sorted((name,) for name in REPORTING_COMMANDS - {"cache"}), ("cache", "check")]
"""Every command whose report has a ``--json`` form (schema_support's list, with ``cache``'s subcommand)."""
DEPRECATED = "is deprecated and will be removed in the next release"


def _command(*path: str) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, name
        command = found
    return command


def _options(command: click.Command) -> dict[str, click.Option]:
    return {name: param for param in command.params if isinstance(param, click.Option) for name in param.opts}


def _every_command() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name in cli.list_commands(click.Context(cli)):
        command = _command(name)
        if isinstance(command, click.Group):
            paths += [(name, sub) for sub in command.list_commands(click.Context(command))]
        else:
            paths.append((name,))
    return paths


@pytest.mark.parametrize("path", REPORTING, ids=" ".join)
def test_every_reporting_command_has_json_output_and_the_same_verbose(path: tuple[str, ...]) -> None:
    options = _options(_command(*path))
    assert {"--json", "-o", "-v"} <= options.keys(), path
    assert options["-v"].help == VERBOSE_HELP


def test_the_same_option_means_the_same_thing_in_every_command() -> None:
    for path in _every_command():
        options = _options(_command(*path))
        visible = {name for name, option in options.items() if not option.hidden}
        where = " ".join(path)
        assert "--version" not in visible and "--cache-dir" not in visible and "--key" not in visible, where
        if "-v" in options:
            assert options["-v"].help == VERBOSE_HELP, where
        if "--runner" in options:
            assert isinstance(options["--runner"].type, click.Choice), where
            assert tuple(options["--runner"].type.choices) == RUNNER_NAMES == known_runners(), where
        for name in ("--cache", "--signing-key", "--public-key"):
            if name in options:
                assert not options[name].hidden, where
    assert "--cache" in _options(_command("env", "build")) and "--cache" in _options(_command("rebuild"))
    for path in (("attest",), ("check",)):
        assert {"--signing-key", "--create-key"} <= _options(_command(*path)).keys()
    for path in (("verify-attestation",), ("peers",), ("merge",)):
        assert "--public-key" in _options(_command(*path)) and "--signing-key" not in _options(_command(*path))


def test_version_is_positional_in_plan_and_the_old_spelling_warns_and_works() -> None:
    new = run_cli("plan", "3.13.5", "--json")
    assert new.returncode == 0 and new.stderr == "", new.stderr
    old = run_cli("plan", "--version", "3.13.5", "--json")
    assert old.returncode == 0 and old.stdout == new.stdout
    assert old.stderr.count("\n") == 1 and "--version" + " " + DEPRECATED in old.stderr
    both = run_cli("plan", "3.12.10", "--version", "3.13.5")
    assert both.returncode == 2 and "not also its old spelling --version" in both.stderr
    text = run_cli("plan", "3.13.5")
    assert text.returncode == 0 and text.stdout.splitlines()[-1] == "1 job(s)"
    assert json.loads(new.stdout)["include"][0]["id"] == "3.13.5-default-bwrap"


def test_audit_takes_version_first_and_the_old_spelling_warns(tmp_path: Path, cpython_fixtures: Path) -> None:
    # An input with no Python in it: the audit judges it before fetching anything (exit 1, one line).
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ("--offline", "--from", cpython_fixtures)
    new = run_cli("audit", "3.13.5", empty, *common, cache=tmp_path / "c")
    assert new.returncode == 1 and "no file of the standard library" in new.stderr and DEPRECATED not in new.stderr
    old = run_cli("audit", empty, "--version", "3.13.5", *common, cache=tmp_path / "c")
    assert old.returncode == 1 and DEPRECATED in old.stderr and "no file of the standard library" in old.stderr
    missing = run_cli("audit", "3.13.5", cache=tmp_path / "c")
    assert missing.returncode == 2 and "audit VERSION INPUT..." in missing.stderr
    assert "Usage: cpython-verify audit [OPTIONS] VERSION INPUT..." in run_cli("audit", "--help").stdout


def test_env_cache_dir_is_an_alias_of_cache(tmp_path: Path) -> None:
    new = run_cli("env", "build", "no-such-env", "--cache", tmp_path)
    old = run_cli("env", "build", "no-such-env", "--cache-dir", tmp_path)
    assert new.returncode == old.returncode == 2
    assert old.stderr == f"cpython-verify: warning: --cache-dir {DEPRECATED}; use --cache\n" + new.stderr


def test_a_missing_signing_key_is_refused_unless_asked_to_create_it(cpython_fixtures: Path, tmp_path: Path) -> None:
    """A mistyped key path must not silently become a new key nobody trusts: attest and check refuse it
    (check before any build) unless --create-key says to make one."""
    result = make_result(tmp_path / "result", cpython_fixtures / TARBALL)
    key = tmp_path / "keys" / "new.pem"
    refused = run_cli("attest", result, "--signing-key", key)
    assert refused.returncode == 2 and "does not exist" in refused.stderr and "--create-key" in refused.stderr
    assert not key.exists() and not (result / "attestation.intoto.json").exists()
    checked = run_cli("check", "3.13.5", "--offline", "--from", cpython_fixtures, "--signing-key", key)
    assert checked.returncode == 2 and "does not exist" in checked.stderr and not key.exists()
    created = run_cli("attest", result, "--signing-key", key, "--create-key")
    assert created.returncode == 0, created.stderr
    public = Path(f"{key}.pub")
    assert key.exists() and public.exists() and f"--public-key {public}" in created.stdout
    verified = run_cli("verify-attestation", result / "attestation.intoto.json", "--public-key", public)
    assert verified.returncode == 0, verified.stderr
    # The old spellings still work, with one warning each.
    private, old_public = openssl_keypair(tmp_path, "old")
    old_attest = run_cli("attest", result, "--key", private, "--out", tmp_path / "old.intoto.json")
    assert old_attest.returncode == 0 and f"--key {DEPRECATED}; use --signing-key" in old_attest.stderr
    old_verify = run_cli("verify-attestation", tmp_path / "old.intoto.json", "--key", old_public)
    assert old_verify.returncode == 0 and f"--key {DEPRECATED}; use --public-key" in old_verify.stderr


def test_rebuild_runner_is_a_choice() -> None:
    completed = run_cli("rebuild", "3.13.5", "--runner", "chroot")
    assert completed.returncode == 2 and "'chroot' is not one of 'bwrap', 'docker', 'podman'" in completed.stderr
