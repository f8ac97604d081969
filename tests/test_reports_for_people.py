"""Reports a person can act on: bounded decoration in a pipe and on a terminal, the unexplained files' diffs
(text with --diff or -v, HTML), a kept --work-dir, and the next step (--patches where a distribution's
conventions are in use). The audit runs as a user runs it: the real CLI on the real 3.11.2 source."""

from __future__ import annotations

import fcntl
import os
import pty
import shlex
import shutil
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, cli_command, cli_environment, read_terminal, run_cli

from verify.audit import audit_installation
from verify.audit.sources import read_source_model
from verify.report.audit import _shell_lines
from verify.source.releases import Version

RULE = "─"
PIPED_DECORATION_WIDTH = 80
PIPED_LINE_WIDTH = 200


def _install(source_tree: Path, prefix: Path, names: tuple[str, ...]) -> Path:
    """Copy ``names`` of the verified Lib/ (and patchlevel.h, which names the release) into ``prefix``."""
    model = read_source_model(source_tree)
    stdlib = prefix / "lib" / "python3.11"
    for rel, origin in model.stdlib.items():
        if rel in names:
            (stdlib / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_tree / origin, stdlib / rel)
    include = prefix / "include" / "python3.11"
    include.mkdir(parents=True)
    shutil.copyfile(source_tree / "Include" / "patchlevel.h", include / "patchlevel.h")
    return stdlib


@pytest.fixture
def changed_installation(source_tree: Path, tmp_path: Path) -> Path:
    """A small installation with one line of heapq.py changed, as a distribution's patch would."""
    prefix = tmp_path / "usr"
    stdlib = _install(source_tree, prefix, ("heapq.py", "bisect.py", "abc.py"))
    heapq = stdlib / "heapq.py"
    heapq.write_text(heapq.read_text().replace("def heappush(heap, item):", "def heappush(heap, item):  # changed", 1))
    return prefix


def _audit_args(prefix: Path, cpython_fixtures: Path, *extra: object) -> list[object]:
    return [
        "audit", prefix, "--version", "3.11.2", "--from", cpython_fixtures, "--offline",
        "--allow-missing", "openpgp", *extra,
    ]  # fmt: skip


def _rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if RULE * 3 in line]


def test_piped_audit_rules_are_at_most_80_columns(
    changed_installation: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    result = run_cli(*_audit_args(changed_installation, cpython_fixtures), cache=tmp_path / "cache")
    assert result.returncode == 1, result.stderr
    rules = _rules(result.stdout)
    assert len(rules) >= 4, result.stdout  # one per section
    assert max(len(line) for line in rules) <= PIPED_DECORATION_WIDTH, max(rules, key=len)
    assert len(result.stdout) < 20_000  # a screenful of report, not thousands of rule characters


def test_piped_audit_lines_are_at_most_200_columns(
    changed_installation: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    """Not only the rules: the source verdict, the coverage lines and the conventions' explanations wrap too;
    the closing verdict stays one line (``tail -1``), however long."""
    result = run_cli(*_audit_args(changed_installation, cpython_fixtures), cache=tmp_path / "cache")
    assert result.returncode == 1, result.stderr
    *lines, verdict = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= PIPED_LINE_WIDTH, max(lines, key=len)
    assert verdict.startswith("AUDIT FAILED: 1 unexplained") and verdict.endswith(")"), verdict


def test_a_long_configure_line_wraps_into_shell_continuations() -> None:
    configure = "  ./configure " + " ".join(f"'--with-option-{n}=/usr/lib/x86_64-linux-gnu'" for n in range(12))
    configure += " 'CFLAGS=-g   -O2 -fstack-protector-strong '"
    wrapped = _shell_lines(configure, 120)
    lines = wrapped.splitlines()
    assert len(lines) > 1 and max(len(line) for line in lines) <= 120, lines
    assert all(line.endswith(" \\") for line in lines[:-1]), lines
    # The shell reads the same words, quoting and spacing inside quotes kept.
    assert shlex.split(wrapped.replace("\\\n", "")) == shlex.split(configure)
    assert _shell_lines(configure, None) == configure


def test_piped_compare_rules_are_at_most_80_columns(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, content in ((a, "one\n"), (b, "two\n")):
        root.mkdir()
        (root / "file.txt").write_text(content)
    result = run_cli("compare", a, b)
    assert result.returncode == 1, result.stderr
    rules = _rules(result.stdout)
    assert rules and max(len(line) for line in rules) <= PIPED_DECORATION_WIDTH, rules


def _on_a_terminal_of(columns: int, args: list[object], cache: Path) -> str:
    """Run the CLI with standard output on a pseudo-terminal ``columns`` wide (no COLUMNS variable)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = cli_environment(cache=cache)
    env.pop("COLUMNS", None)
    process = subprocess.Popen(
        cli_command(*args), cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=terminal,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(terminal)
    shown = read_terminal(controller)
    process.wait(timeout=300)
    return shown.decode().replace("\r\n", "\n")


def test_audit_rules_fit_the_terminal(changed_installation: Path, cpython_fixtures: Path, tmp_path: Path) -> None:
    shown = _on_a_terminal_of(57, _audit_args(changed_installation, cpython_fixtures), tmp_path / "cache")
    rules = _rules(shown)
    assert len(rules) >= 4, shown
    assert max(len(line) for line in rules) <= 57, max(rules, key=len)


def test_the_unexplained_file_s_diff_in_text_and_html(
    changed_installation: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    page = tmp_path / "audit.html"
    plain = run_cli(*_audit_args(changed_installation, cpython_fixtures, "--html", page), cache=tmp_path / "c")
    assert plain.returncode == 1, plain.stderr
    assert "+def heappush(heap, item):  # changed" not in plain.stdout  # the diff only when asked for
    assert "next: see what changed in the 1 unexplained text file(s): --diff" in plain.stdout
    lines = plain.stdout.splitlines()
    assert lines[-1].startswith("AUDIT FAILED: 1 unexplained") and lines[-2].startswith("next: ")  # verdict last
    for flag in ("--diff", "-v"):
        shown = run_cli(*_audit_args(changed_installation, cpython_fixtures, flag), cache=tmp_path / "c")
        assert shown.returncode == 1, shown.stderr
        lines = shown.stdout.splitlines()
        assert "--- a/Lib/heapq.py" in lines and "+++ b/lib/python3.11/heapq.py" in lines
        assert "-def heappush(heap, item):" in lines and "+def heappush(heap, item):  # changed" in lines
        assert not any(line.startswith("next: see what changed") for line in lines)
    html = page.read_text()
    assert "+def heappush(heap, item):  # changed" in html and "--- a/Lib/heapq.py" in html


def test_a_long_diff_says_how_much_was_cut(source_tree: Path, tmp_path: Path) -> None:
    from verify.common.limits import AUDIT_DIFF_MAX_LINES_PER_FILE

    prefix = tmp_path / "usr"
    stdlib = _install(source_tree, prefix, ("argparse.py",))
    argparse = stdlib / "argparse.py"
    argparse.write_text("".join(f"{line}  # changed\n" for line in argparse.read_text().splitlines()))
    report = audit_installation(prefix, Version.parse("3.11.2"), source_tree)
    (finding,) = report.sources.unexplained_modified
    assert len(finding.diff) == AUDIT_DIFF_MAX_LINES_PER_FILE
    assert "diff lines cut (at most 200 per file" in finding.diff_note, finding.diff_note


def test_a_given_work_dir_is_kept_and_named(changed_installation: Path, cpython_fixtures: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    result = run_cli(*_audit_args(changed_installation, cpython_fixtures, "--work-dir", work), cache=tmp_path / "c")
    assert result.returncode == 1, result.stderr
    (kept,) = work.iterdir()
    assert (kept / "source" / "Python-3.11.2" / "Lib" / "heapq.py").is_file()
    assert f"kept in {kept}" in result.stdout


def test_patches_are_suggested_when_a_distribution_s_conventions_are_in_use(
    changed_installation: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    args = _audit_args(changed_installation, cpython_fixtures)
    debian = run_cli(*args, "--distribution", "debian", cache=tmp_path / "c")
    assert debian.returncode == 1, debian.stderr
    assert any(line.startswith("next: ") and "--patches DIR" in line for line in debian.stdout.splitlines())
    bare = run_cli(*args, "--distribution", "none", cache=tmp_path / "c")
    assert "--patches" not in bare.stdout
