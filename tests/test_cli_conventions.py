"""The command-line conventions, checked for every command in ``verify/cli.py``'s ``_COMMANDS``.

Errors and usage errors are one line on stderr with exit 2; ``NO_COLOR`` and non-terminal output carry
no ANSI codes and are not hard-wrapped; every reporting command takes ``-o/--output``, ``-q/--quiet``
and ``--no-progress``; every ``--help`` has examples; progress goes to stderr only on a terminal.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, cli_command, cli_environment, read_terminal, run_cli

from verify.cli import _COMMANDS, main
from verify.common import progress

COMMANDS = sorted(_COMMANDS)
REPORTING = {name: [name] for name in COMMANDS if name not in ("env", "cache")} | {
    "env list": ["env", "list"],
    "env build": ["env", "build"],
    "env lock": ["env", "lock"],
    "cache check": ["cache", "check"],
    "env probe": ["env", "probe"],
    "docs": ["docs"],
}
"""Every command that prints a report (env's shell and run hand the terminal to the sandbox)."""


def test_every_command_is_covered() -> None:
    assert set(OPERATIONAL_ERRORS) == set(COMMANDS)
    assert {words[0] for words in REPORTING.values()} == set(COMMANDS)


def run_main(capsys: pytest.CaptureFixture[str], args: Sequence[str]) -> tuple[int, str, str]:
    """Run the console entry point in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2, (out, err)
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("cpython-verify: error: "), err
    assert "\x1b" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
def test_usage_error_is_one_line(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(*run_main(capsys, [command, "--no-such-option"]))


@pytest.mark.parametrize(
    "args",
    [
        ["compare"],
        ["env", "build"],
        ["releases", "--since", "yesterday"],
        ["attest", "--signing-key"],
        ["source", "3.13.5", "--require", "md5"],
    ],
    ids=" ".join,
)
def test_bad_arguments_are_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Missing arguments, bad values, options without their value: click's other usage errors.
    assert_one_line_error(*run_main(capsys, args))


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.json"
    path.write_text("garbage\n")
    return path


OPERATIONAL_ERRORS = {
    "source": lambda t: ["source", "3.99.1", "--offline"],
    "env": lambda t: ["env", "build", "no-such-environment"],
    "rebuild": lambda t: ["rebuild", "3.99.1", "--offline"],
    "compare": lambda t: ["compare", str(_garbage(t)), str(t)],
    "audit": lambda t: ["audit", "3.13.5", str(t), "--offline", "--prefix", "../outside"],
    "attest": lambda t: ["attest", str(t), "--signing-key", str(t / "missing.pem")],
    "verify-attestation": lambda t: ["verify-attestation", str(_garbage(t)), "--public-key", str(_garbage(t))],
    "peers": lambda t: ["peers", "3.13.5", "--attestation", str(_garbage(t)), "--public-key", str(_garbage(t))],
    "releases": lambda t: ["releases", "--url", str(t / "no-such-feed.json")],
    "plan": lambda t: ["plan", "--releases", str(_garbage(t))],
    "merge": lambda t: ["merge", str(t), "--public-key", str(_garbage(t)), "--out", str(t / "site")],
    "check": lambda t: ["check", "3.99.1", "--offline"],
    "cache": lambda t: ["cache", "check", "--cache", str(_garbage(t))],
    "docs": lambda t: ["docs", "no-such-page"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_operational_error_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPYTHON_VERIFY_CACHE", str(tmp_path / "cache"))
    assert_one_line_error(*run_main(capsys, OPERATIONAL_ERRORS[command](tmp_path)))


@pytest.mark.parametrize("command", sorted(REPORTING))
def test_help_has_examples_and_the_output_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    words = REPORTING[command]
    code, out, _ = run_main(capsys, [*words, "--help"])
    assert code == 0
    assert "\x1b" not in out
    for option in ("-o, --output FILE", "-q, --quiet", "--no-progress"):
        assert option in out, f"{command} lacks {option}"
    group_help = run_main(capsys, [words[0], "--help"])[1]
    assert "Examples:" in group_help
    # click's \b keeps each example on its own line instead of re-flowing them into a paragraph.
    example_lines = [line for line in group_help.splitlines() if line.strip().startswith("cpython-verify ")]
    assert len(example_lines) >= 2, group_help


# -- reports: plain, unwrapped, to -o FILE, or nothing with -q -------------------------------------------


def _trees(tmp_path: Path) -> tuple[Path, Path, str]:
    """Two trees differing in one file whose path is far longer than any terminal is wide."""
    long_name = "/".join(["a-directory-with-a-long-name"] * 8) + "/file.txt"
    a, b = tmp_path / "a", tmp_path / "b"
    for root, content in ((a, "one\n"), (b, "two\n")):
        (root / long_name).parent.mkdir(parents=True)
        (root / long_name).write_text(content)
    return a, b, long_name


def test_piped_compare_is_neither_coloured_nor_wrapped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, long_name = _trees(tmp_path)
    code, out, _ = run_main(capsys, ["compare", str(a), str(b)])
    assert code == 1
    assert "\x1b" not in out
    assert any(line.startswith(long_name) for line in out.splitlines()), out  # the path is whole, on one line
    assert max(len(line) for line in out.splitlines()) < 1000  # and nothing is padded to an absurd width


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_output_file_gets_the_report_and_stdout_nothing(
    as_json: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, long_name = _trees(tmp_path)
    target = tmp_path / "report.out"
    code, out, _ = run_main(capsys, ["compare", str(a), str(b), "-o", str(target), *(["--json"] if as_json else [])])
    assert (code, out) == (1, "")
    text = target.read_text()
    assert "\x1b" not in text and long_name in text
    if as_json:
        assert json.loads(text)["identical"] is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.out")] == []  # no temporary left


def test_no_output_file_after_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "report.out"
    code, _, _ = run_main(capsys, ["plan", "2.7.18", "-o", str(target)])
    assert code == 1 and not target.exists()  # nothing to do: a failure, and no empty report left behind


def test_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _ = _trees(tmp_path)
    assert run_main(capsys, ["compare", str(a), str(b), "-q"]) == (1, "", "")
    assert run_main(capsys, ["compare", str(a), str(a), "--quiet"]) == (0, "", "")
    assert run_main(capsys, ["plan", "3.13.5", "-q"]) == (0, "", "")


@pytest.mark.parametrize("words", [["plan", "3.13.5"], ["env", "list"]], ids=" ".join)
def test_output_file_for_other_commands(words: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed = run_main(capsys, words)
    target = tmp_path / "out.txt"
    assert run_main(capsys, [*words, "-o", str(target)]) == (0, "", "")
    assert target.read_text() == printed[1] != ""


# -- a real terminal: colour unless NO_COLOR; progress on stderr unless --no-progress ---------------------


def _on_a_terminal(args: Sequence[str], *, no_color: bool, stream: str) -> bytes:
    """Run the CLI with ``stream`` ("stdout" or "stderr") on a pseudo-terminal; return what it showed."""
    controller, terminal = pty.openpty()
    env = cli_environment(extra={"COLUMNS": "60"})
    if not no_color:
        del env["NO_COLOR"]
    other = subprocess.DEVNULL
    process = subprocess.Popen(
        cli_command(*args),
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal if stream == "stdout" else other,
        stderr=terminal if stream == "stderr" else other,
    )
    os.close(terminal)
    shown = read_terminal(controller)
    process.wait(timeout=120)
    return shown


@pytest.fixture
def source_args(cpython_fixtures: Path, tmp_path: Path) -> list[str]:
    return ["source", "3.13.5", "--from", str(cpython_fixtures), "--offline", "--cache", str(tmp_path / "cache")]


def test_source_is_coloured_on_a_terminal_unless_no_color(source_args: list[str]) -> None:
    coloured = _on_a_terminal(source_args, no_color=False, stream="stdout")
    assert b"VERIFIED" in coloured and b"\x1b[" in coloured
    plain = _on_a_terminal(source_args, no_color=True, stream="stdout")
    assert b"VERIFIED: CPython 3.13.5 source" in plain and b"\x1b" not in plain


def test_compare_has_no_colour_with_no_color(tmp_path: Path) -> None:
    a, b, long_name = _trees(tmp_path)
    assert b"\x1b[" in _on_a_terminal(["compare", str(a), str(b)], no_color=False, stream="stdout")
    plain = _on_a_terminal(["compare", str(a), str(b)], no_color=True, stream="stdout")
    assert b"\x1b" not in plain and long_name.encode() in plain.replace(b"\r\n", b"")


def test_progress_shows_on_a_terminal_and_not_with_no_progress(source_args: list[str]) -> None:
    shown = _on_a_terminal(source_args, no_color=True, stream="stderr")
    assert b"fetching, checking signatures" in shown
    assert b"fetching" not in _on_a_terminal([*source_args, "--no-progress"], no_color=True, stream="stderr")
    assert b"fetching" not in _on_a_terminal([*source_args, "-q"], no_color=True, stream="stderr")


def test_phase_lines_in_a_log_and_none_when_progress_is_off(capsys: pytest.CaptureFixture[str]) -> None:
    # Not a terminal (pytest captures stderr): rebuild phases are plain log lines, the live display never starts.
    try:
        log = progress.PhaseLog("3.13.5 default")
        log.phase_started("configure")
        log.phase_finished("configure", 2.5)
        with progress.phase("comparing"):
            pass
        assert capsys.readouterr().err == "3.13.5 default: configure ...\n3.13.5 default: configure done in 2.5 s\n"
        progress.configure(enabled=False)
        log.phase_started("make")
        log.phase_finished("make", 1.0)
        progress.note("env: cache hit")
        assert capsys.readouterr().err == ""
        assert isinstance(progress.default_progress(), progress.NoProgress)
    finally:
        progress.configure(enabled=True)


def test_shell_completion_as_the_readme_documents_it() -> None:
    env = {"_CPYTHON_VERIFY_COMPLETE": "bash_complete", "COMP_WORDS": "cpython-verify verify-att", "COMP_CWORD": "1"}
    completed = run_cli(env=env, timeout=60)
    assert completed.stdout.splitlines() == ["plain,verify-attestation"], completed
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "_CPYTHON_VERIFY_COMPLETE=bash_source cpython-verify" in readme


@pytest.mark.parametrize("name", ["check", "rebuild", "source", "audit"])
def test_a_command_declares_its_options_and_receives_them_as_typed_values(name: str) -> None:
    """No ``**params``: every option is declared on the command, and each group of them (VERSION, the source
    options, the build options) reaches the function as one typed value, not as a dictionary."""
    import importlib
    import inspect

    module_name, attribute = _COMMANDS[name].split(":")
    command = getattr(importlib.import_module(module_name), attribute)
    function = inspect.unwrap(command.callback)
    parameters = inspect.signature(function).parameters.values()
    variadic = [p.name for p in parameters if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    assert variadic == [], f"{name} takes {variadic}"
    hints = {p.name: str(p.annotation) for p in parameters}
    assert "Any" not in " ".join(hints.values()), hints


def test_check_declares_the_rebuild_options_itself_and_reads_version_as_a_version() -> None:
    from verify.commands.check import check
    from verify.commands.rebuild import rebuild
    from verify.source.releases import Version

    # Its own options, not rebuild's copied onto it: each is a parameter of check alone.
    assert not [param.name for param in check.params if any(param is theirs for theirs in rebuild.params)]
    assert {param.name for param in rebuild.params} - {param.name for param in check.params} == {"twice", "bisect"}
    for command in (check, rebuild):
        version = next(param for param in command.params if param.name == "version")
        assert version.type.convert("3.14.0rc1", version, None) == Version.parse("3.14.0rc1")
