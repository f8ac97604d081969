"""Every audit green is earned: what it compared is part of its verdict, and too little is never a pass.

Installations are made at test time from the real, verified 3.11.2 tarball (the files ``make install``
copies, as its own ``Makefile.pre.in`` lists them); packages are laid out as bookworm's split
``python3.11`` packages are (``python3.11`` holds ``bin/pydoc3.11`` and an empty ``lib-dynload``, no
standard library). The command runs as a user runs it, against the real tarball and its real Sigstore
bundle (3.11.2 has no OpenPGP signature in the fixtures: ``--allow-missing openpgp``, which every report
must name).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_audit import _deb, _install, _tar_bytes, _tree_entries, run_audit

from verify.audit import audit_installation
from verify.audit.coverage import PARTS
from verify.manifest import Manifest, scan_tree
from verify.source.releases import Version

V3112 = Version.parse("3.11.2")
SOURCE_OPTIONS = ("--offline", "--allow-missing", "openpgp")
SYSCONFIGDATA = "_sysconfigdata__linux_x86_64-linux-gnu.py"


def _sysconfigdata(stdlib: Path, config_args: str) -> None:
    (stdlib / SYSCONFIGDATA).write_text(f"build_time_vars = {{'CONFIG_ARGS': {config_args!r}}}\n")


def _full_installation(source_tree: Path, prefix: Path, *, config_args: str = "'--prefix=/opt/python'") -> Path:
    """Everything make install copies from the verified source (stdlib and headers), an interpreter and the
    configuration: a whole installation, by the source's own list. Returns the stdlib directory."""
    stdlib = _install(source_tree, prefix)
    include = prefix / "include" / "python3.11"
    for header in sorted((source_tree / "Include").rglob("*.h")):
        target = include / header.relative_to(source_tree / "Include")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(header, target)
    (prefix / "bin").mkdir()
    shutil.copyfile("/bin/true", prefix / "bin" / "python3.11")  # an ELF; without --against, not compared
    _sysconfigdata(stdlib, config_args)
    return stdlib


def _audit_json(*args: object) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    result = run_audit("3.11.2", *args, *SOURCE_OPTIONS, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads(result.stdout) if result.stdout.strip() else {}


# --- nothing of the standard library in the input: exit 1, one line naming what to add ---------------------


def _bookworm_python311_deb(tmp_path: Path) -> Path:
    """bookworm's ``python3.11`` package, laid out as its file list is: scripts, an empty ``lib-dynload``,
    a desktop file; no standard library, no interpreter (those are in the other split packages)."""
    entries: list[tuple[str, bytes | str | None, str]] = [
        ("./", None, "dir"),
        ("./usr/", None, "dir"),
        ("./usr/bin/", None, "dir"),
        ("./usr/bin/pydoc3.11", b"#! /usr/bin/python3.11\nimport pydoc\npydoc.cli()\n", "file"),
        ("./usr/bin/pygettext3.11", b"#! /usr/bin/python3.11\n", "file"),
        ("./usr/lib/", None, "dir"),
        ("./usr/lib/python3/", None, "dir"),
        ("./usr/lib/python3/dist-packages/", None, "dir"),
        ("./usr/lib/python3.11/", None, "dir"),
        ("./usr/lib/python3.11/lib-dynload/", None, "dir"),
        ("./usr/share/applications/python3.11.desktop", b"[Desktop Entry]\n", "file"),
    ]
    return _deb(tmp_path / "python3.11_3.11.2-6+deb12u9_amd64.deb", "python3.11", _tar_bytes(entries, compress=True))


@pytest.mark.parametrize("case", ["sysconfigdata only", "bookworm python3.11", "interpreter only"])
def test_an_input_without_the_standard_library_fails_with_one_line(
    case: str, tmp_path: Path, cpython_fixtures: Path
) -> None:
    if case == "sysconfigdata only":
        stdlib = tmp_path / "dir" / "lib" / "python3.13"
        stdlib.mkdir(parents=True)
        _sysconfigdata(stdlib, "'--prefix=/usr/local'")
        inputs, version = [tmp_path / "dir"], "3.13.5"
        wanted = [
            "no file of the standard library or interpreter of Python 3.13 was in the input",
            "lib/python3.13/",
            "bin/python3.13",
        ]
    elif case == "bookworm python3.11":
        inputs, version = [_bookworm_python311_deb(tmp_path)], "3.11.2"
        wanted = [
            "no file of the standard library or interpreter of Python 3.11 was in the input",
            "add libpython3.11-stdlib, libpython3.11-minimal and python3.11-minimal",
        ]
    else:
        interpreter = _tar_bytes([("./usr/bin/python3.11", Path("/bin/true").read_bytes(), "file")], compress=True)
        inputs, version = [_deb(tmp_path / "python3.11-minimal.deb", "python3.11-minimal", interpreter)], "3.11.2"
        wanted = [
            "no file of the standard library of Python 3.11 was in the input",
            "only the interpreter (usr/bin/python3.11)",
            "add libpython3.11-stdlib and libpython3.11-minimal",
        ]
    for output in ([], ["--json"]):
        result = run_audit(version, *inputs, "--from", cpython_fixtures, *SOURCE_OPTIONS, *output)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        for fragment in wanted:
            assert fragment in result.stderr, result.stderr
        assert "not in this package set" not in result.stderr


# --- an installation short of what make install installs: not a pass --------------------------------------


def test_an_installation_short_of_its_subject_does_not_pass(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    """A plain directory holding 6 untouched stdlib files: nothing unexplained, but not an installation."""
    prefix = tmp_path / "prefix"
    _install(source_tree, prefix, only=("json/", "heapq.py"))
    result, document = _audit_json(prefix, "--from", cpython_fixtures)
    assert result.returncode == 1, result.stderr
    assert document["clean"] is True and document["passed"] is False
    coverage = document["coverage"]
    assert coverage["subject"] == "installation" and coverage["compared"] == 6
    stdlib = coverage["parts"]["stdlib"]
    assert stdlib["compared"] == stdlib["present"] == 6 and stdlib["installs"] > 2000
    assert stdlib["unaccounted"] == stdlib["absent"] == stdlib["installs"] - 6
    assert coverage["parts"]["interpreter"] == {
        **coverage["parts"]["interpreter"],
        "installs": 1,
        "present": 0,
        "absent": 1,
        "unaccounted": 1,
    }
    assert {f["status"] for f in document["sources"]["missing"]} == {"not-installed"}
    assert document["sources"]["not_in_package_set"] == []
    assert document["verdict"].startswith("AUDIT FAILED: 0 unexplained of 6 compared (stdlib 6 of ")
    assert "absent from this installation and nothing accounts for them" in document["verdict"]
    text = run_audit("3.11.2", prefix, "--from", cpython_fixtures, *SOURCE_OPTIONS)
    assert text.returncode == 1
    assert "not in this package set" not in text.stdout and "not installed: " in text.stdout
    assert text.stdout.splitlines()[-1] == document["verdict"]


def test_the_same_files_as_packages_are_their_share_of_an_installation(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    """The same 6 files in a package: the subject is the package set, what it lacks is in other packages."""
    prefix = tmp_path / "build"
    _install(source_tree, prefix, only=("json/", "heapq.py"))
    deb = _deb(
        tmp_path / "libpython3.11-stdlib.deb",
        "libpython3.11-stdlib",
        _tar_bytes([("./", None, "dir"), *_tree_entries(prefix, "./usr")], compress=True),
    )
    result, document = _audit_json(deb, "--from", cpython_fixtures)
    assert result.returncode == 0, document.get("verdict")
    assert document["passed"] is True and document["coverage"]["subject"] == "package set"
    assert {f["status"] for f in document["sources"]["missing"]} == {"not-in-package-set"}
    assert document["sources"]["not_in_package_set"]
    assert document["verdict"].startswith("AUDIT PASSED: 0 unexplained of 6 compared (stdlib 6 of ")


def test_a_whole_installation_passes_and_shows_its_coverage_everywhere(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    _full_installation(source_tree, prefix)
    html = tmp_path / "audit.html"
    result, document = _audit_json(prefix, "--from", cpython_fixtures, "--html", html)
    assert result.returncode == 0, document.get("verdict")
    coverage = document["coverage"]
    assert set(coverage["parts"]) == set(PARTS)
    stdlib, headers = coverage["parts"]["stdlib"], coverage["parts"]["headers"]
    assert stdlib["compared"] == stdlib["installs"] == stdlib["present"] > 2000 and stdlib["absent"] == 0
    assert headers["compared"] == headers["installs"] > 100 and headers["absent"] == 0
    assert coverage["parts"]["interpreter"]["present"] == 1 and coverage["parts"]["interpreter"]["compared"] == 0
    assert coverage["parts"]["config"]["present"] == 1 and coverage["parts"]["config"]["installs"] is None
    total = stdlib["compared"] + headers["compared"]
    assert document["verdict"] == (
        f"AUDIT PASSED: 0 unexplained of {total:,} compared (stdlib {stdlib['compared']:,} of {stdlib['installs']:,}, "
        f"interpreter 0 of 1, libpython 0 of 0 present, headers {headers['compared']:,} of {headers['installs']:,}, "
        "config 0 of 1 present)"
    )
    text = run_audit("3.11.2", prefix, "--from", cpython_fixtures, *SOURCE_OPTIONS)
    lines = text.stdout.splitlines()
    assert lines[-1] == document["verdict"]
    for part in PARTS:
        assert any(line.startswith(f"  {part} ") and "make install installs" in line for line in lines), part
    page = html.read_text()
    assert document["verdict"] in page and "make install installs" in page and "<td>interpreter</td>" in page


def test_test_directories_are_accounted_for_only_by_disable_test_modules(source_tree: Path, tmp_path: Path) -> None:
    """make install leaves TESTSUBDIRS out of an installation configured --disable-test-modules (3.10+): only
    then is their absence accounted for."""
    reports = {}
    for flag in ("'--disable-test-modules'", "'--enable-optimizations'"):
        prefix = tmp_path / flag.strip("'-")
        stdlib = _full_installation(source_tree, prefix, config_args=f"'--prefix=/opt/python' {flag}")
        shutil.rmtree(stdlib / "test")
        shutil.rmtree(stdlib / "idlelib" / "idle_test")
        reports[flag] = audit_installation(prefix, V3112, source_tree)
    without_tests = reports["'--disable-test-modules'"]
    assert without_tests.passed, without_tests.shortfalls()
    groups = {group.group: group.accounted_for for group in without_tests.sources.missing_groups}
    assert groups["test"].startswith("configured --disable-test-modules")
    assert groups["idlelib/idle_test"].startswith("configured --disable-test-modules")
    assert without_tests.coverage is not None and without_tests.coverage.part("stdlib").unaccounted == 0
    with_tests = reports["'--enable-optimizations'"]
    assert with_tests.clean and not with_tests.passed
    assert with_tests.coverage is not None
    assert with_tests.coverage.part("stdlib").unaccounted == with_tests.coverage.part("stdlib").absent > 1000


# --- the source verdict and the lists: reports keep their evidence -------------------------------------------


def test_every_audit_report_names_its_source_and_relaxations(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    _install(source_tree, prefix, only=("json/",))
    html = tmp_path / "audit.html"
    _result, document = _audit_json(prefix, "--from", cpython_fixtures, "--html", html)
    tarball = cpython_fixtures / "Python-3.11.2.tgz"
    sha256 = hashlib.sha256(tarball.read_bytes()).hexdigest()
    source = document["source"]
    assert source["verified"] is True and source["tarball"]["name"] == "Python-3.11.2.tgz"
    assert source["tarball"]["sha256"] == sha256 and source["tarball"]["size"] == tarball.stat().st_size
    assert {s["kind"]: s["status"] for s in source["signatures"]} == {"openpgp": "not-required", "sigstore": "verified"}
    assert source["relaxed"] == ["--allow-missing openpgp: no openpgp signature was found, and none was required"]
    text = run_audit("3.11.2", prefix, "--from", cpython_fixtures, *SOURCE_OPTIONS).stdout
    page = html.read_text()
    for report in (text, page):
        assert sha256 in report and "--allow-missing openpgp" in report and "Python-3.11.2.tgz" in report
        assert "sigstore ok" in report and "openpgp  not checked" in report


def test_a_long_unexplained_list_says_how_many_more_and_ends_with_the_verdict(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "prefix"
    stdlib = _install(source_tree, prefix, only=("email/", "json/", "asyncio/"))
    modified = sorted(stdlib.rglob("*.py"))[:38]
    assert len(modified) == 38
    for path in modified:
        path.write_text(path.read_text() + "# planted\n")
    text = run_audit("3.11.2", prefix, "--from", cpython_fixtures, *SOURCE_OPTIONS)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert "  … and 13 more (all of them with --verbose or --json)" in lines
    assert lines[-1].startswith("AUDIT FAILED: 38 unexplained of ")
    assert sum(line.startswith("AUDIT ") for line in lines) == 1
    verbose = run_audit("3.11.2", prefix, "--from", cpython_fixtures, *SOURCE_OPTIONS, "--verbose")
    listed = verbose.stdout.split("UNEXPLAINED: 38")[-1].splitlines()
    assert all(f"  {path.relative_to(prefix).as_posix()}" in listed for path in modified)
    assert "more (" not in verbose.stdout.split("UNEXPLAINED: 38")[-1]


def test_against_a_rebuild_only_bin_python_x_y_is_held_against_an_installation(
    source_tree: Path, tmp_path: Path
) -> None:
    """The rebuild's make install also made bin/python3 and the -config script; an installation made with
    make altinstall has neither, and lacks nothing every configuration installs."""
    prefix = tmp_path / "prefix"
    _full_installation(source_tree, prefix)
    rebuilt = tmp_path / "rebuild" / "opt" / "python"
    shutil.copytree(prefix, rebuilt, symlinks=True)
    (rebuilt / "bin" / "python3").symlink_to("python3.11")
    (rebuilt / "bin" / "python3.11-config").write_text("#!/bin/sh\n")
    report = audit_installation(prefix, V3112, source_tree, against=Manifest(entries=scan_tree(tmp_path / "rebuild")))
    assert report.coverage is not None
    interpreter = report.coverage.part("interpreter")
    assert (interpreter.installs, interpreter.present, interpreter.compared) == (3, 1, 1)
    assert (interpreter.absent, interpreter.unaccounted) == (2, 0)
    assert report.passed, report.shortfalls()
    (prefix / "bin" / "python3.11").unlink()
    without = audit_installation(prefix, V3112, source_tree, against=Manifest(entries=scan_tree(tmp_path / "rebuild")))
    assert without.coverage is not None and without.coverage.part("interpreter").unaccounted == 1
    assert not without.passed and "(1 interpreter)" in without.shortfalls()[0]
