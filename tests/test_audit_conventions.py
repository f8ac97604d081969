"""Each distribution's convention table, on planted installations laid out as that distribution's.

The source is the real, verified 3.11.2 tarball's; each installation is made at test time from it, as
the distribution's packaging recipe lays it out (docs/audit.md cites the recipe beside each convention).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT
from test_audit import _install

from verify.audit import AuditReport, audit_installation
from verify.audit.conventions import DISTRIBUTIONS, TABLES
from verify.audit.inputs import locate_installation, os_release_id
from verify.commands.audit import audit as audit_command
from verify.report.audit import audit_to_dict, render_audit_text
from verify.source.releases import Version

V3112 = Version.parse("3.11.2")
ALPINE_MARKER = (
    "[externally-managed]\nError=\n  The system-wide Python installation in Alpine is managed\n"
    "  by using the system package manager (apk).\n"
)
ARCH_TOOLS = (
    "Tools/i18n/msgfmt.py",
    "Tools/i18n/pygettext.py",
    "Tools/scripts/README",
    "Tools/scripts/which.py",
    "Tools/scripts/reindent.py",
)


def _os_release(root: Path, text: str, *, in_usr_lib: bool = False) -> None:
    """``/etc/os-release``, or ``/usr/lib/os-release`` with ``/etc/os-release`` a link to it (as on Arch)."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    if in_usr_lib:
        (root / "usr" / "lib").mkdir(parents=True, exist_ok=True)
        (root / "usr" / "lib" / "os-release").write_text(text)
        (root / "etc" / "os-release").symlink_to("../usr/lib/os-release")
    else:
        (root / "etc" / "os-release").write_text(text)


@pytest.fixture()
def alpine_root(source_tree: Path, tmp_path: Path) -> Path:
    """An Alpine python3 package's layout: marker from aports, tkinter/idlelib/test/ensurepip/venv split off."""
    root = tmp_path / "alpine"
    _os_release(root, 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n')
    stdlib = _install(source_tree, root / "usr", only=("json/", "heapq.py", "cgi.py", "base64.py"))
    (stdlib / "EXTERNALLY-MANAGED").write_text(ALPINE_MARKER)
    return root


@pytest.fixture()
def arch_root(source_tree: Path, tmp_path: Path) -> Path:
    """An Arch python package's layout: marker, Tools/ scripts copied in, cgi.py's sed, tests split off."""
    root = tmp_path / "arch"
    _os_release(root, 'NAME="Arch Linux"\nID=arch\n', in_usr_lib=True)
    stdlib = _install(source_tree, root / "usr", only=("json/", "heapq.py", "cgi.py", "base64.py", "idlelib/"))
    shutil.rmtree(stdlib / "idlelib" / "idle_test")  # package_python(): rm -r {test,idlelib/idle_test}
    (stdlib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=\n  To install Python packages system-wide, try 'pacman -S python-xyz'\n"
    )
    for rel in ARCH_TOOLS:
        (stdlib / rel).parent.mkdir(parents=True, exist_ok=True)
        (stdlib / rel).write_bytes((source_tree / rel).read_bytes())
    cgi = (source_tree / "Lib" / "cgi.py").read_text().split("\n", 1)
    assert cgi[0] == "#! /usr/local/bin/python"
    (stdlib / "cgi.py").write_text("#!/usr/bin/python\n" + cgi[1])  # sed -e "s|^#.* /usr/local/bin/python|...|"
    return root


def _audit(root: Path, source_tree: Path, tmp_path: Path, distribution: str = "auto") -> AuditReport:
    """Locate the installation and its distribution as the command does, then audit it."""
    located = locate_installation([root], "3.11", tmp_path / "scratch", "usr", distribution)
    return audit_installation(
        located.prefix, V3112, source_tree, distribution=located.distribution, install_prefix=located.install_prefix
    )


def _expected(report: AuditReport) -> dict[str, tuple[str, str]]:
    return {f.path.removeprefix("lib/python3.11/"): (f.status, f.convention) for f in report.sources.expected_extra}


def test_alpine_conventions_are_named_and_explained(alpine_root: Path, source_tree: Path, tmp_path: Path) -> None:
    report = _audit(alpine_root, source_tree, tmp_path)
    assert report.distribution == "alpine"
    assert _expected(report)["EXTERNALLY-MANAGED"] == ("convention", "externally-managed")
    assert report.unexplained == ()
    packages = {group.group: group.package for group in report.sources.missing_groups}
    assert packages["test"] == "python3-tests"
    assert packages["tkinter"] == packages["idlelib"] == "python3-tkinter"
    assert packages["ensurepip"] == packages["venv"] == "python3-venv"
    assert packages["asyncio"] == "", "Alpine ships asyncio in python3 itself: absent, it has no other package"
    document = audit_to_dict(report)
    assert set(document["conventions"]) == {"externally-managed", "split-packages"}
    marker = document["conventions"]["externally-managed"]
    assert marker["distribution"] == "alpine" and "apk" in marker["effect"] and "aports" in marker["source"]
    assert marker["paths"] == ["lib/python3.11/EXTERNALLY-MANAGED"]


def test_arch_conventions_are_named_and_explained(arch_root: Path, source_tree: Path, tmp_path: Path) -> None:
    report = _audit(arch_root, source_tree, tmp_path)
    assert report.distribution == "arch", "os-release under /usr/lib, /etc/os-release a link to it"
    assert report.unexplained == ()
    expected = _expected(report)
    assert expected["EXTERNALLY-MANAGED"] == ("convention", "externally-managed")
    for rel in ARCH_TOOLS:
        assert expected[rel] == ("convention", "tools-scripts")
    (cgi,) = [f for f in report.sources.modified if f.path.endswith("/cgi.py")]
    assert (cgi.status, cgi.convention) == ("convention", "cgi-shebang")
    packages = {group.group: group.package for group in report.sources.missing_groups}
    assert packages["test"] == packages["idlelib/idle_test"] == "python-tests"
    assert packages["tkinter"] == "", "Arch ships tkinter in python itself"
    document = audit_to_dict(report)
    assert set(document["conventions"]) == {"externally-managed", "tools-scripts", "cgi-shebang", "split-packages"}
    assert document["conventions"]["tools-scripts"]["paths"] == [f"lib/python3.11/{rel}" for rel in sorted(ARCH_TOOLS)]
    assert "FS#23997" in document["conventions"]["cgi-shebang"]["effect"]
    assert all(c["distribution"] == "arch" and c["source"] for c in document["conventions"].values())


def test_the_text_report_names_each_convention_and_what_it_does(
    arch_root: Path, source_tree: Path, tmp_path: Path
) -> None:
    from rich.console import Console

    console = Console(record=True, width=200, color_system=None)
    render_audit_text(_audit(arch_root, source_tree, tmp_path), console, verbose=True)
    text = console.export_text()
    assert "conventions: arch" in text
    assert "cgi.py's first line rewritten to /usr/bin/python" in text
    assert "scripts from the source's Tools/ copied into the stdlib directory (tools-scripts):" in text


@pytest.mark.parametrize(
    ("case", "plant"),
    [
        (
            "a Tools/ script edited",
            lambda s: (s / "Tools/scripts/which.py").write_text(
                (s / "Tools/scripts/which.py").read_text() + "import os; os.system('id')\n"
            ),
        ),
        ("a Tools/ script the source does not have", lambda s: (s / "Tools/scripts/helper.py").write_text("X = 1\n")),
        (
            "cgi.py's shebang to another program",
            lambda s: (s / "cgi.py").write_text("#!/tmp/python\n" + (s / "cgi.py").read_text().split("\n", 1)[1]),
        ),
        (
            "cgi.py's sed plus another edit",
            lambda s: (s / "cgi.py").write_text((s / "cgi.py").read_text() + "# and one more line\n"),
        ),
        (
            "the marker as a link",
            lambda s: ((s / "EXTERNALLY-MANAGED").unlink(), (s / "EXTERNALLY-MANAGED").symlink_to("/tmp/marker")),
        ),
    ],
)
def test_a_look_alike_of_an_arch_convention_stays_unexplained(
    arch_root: Path, source_tree: Path, tmp_path: Path, case: str, plant: object
) -> None:
    stdlib = arch_root / "usr" / "lib" / "python3.11"
    plant(stdlib)  # type: ignore[operator]
    report = _audit(arch_root, source_tree, tmp_path)
    assert len(report.unexplained) == 1, (case, report.unexplained)


@pytest.mark.parametrize("other", ["debian", "alpine", "none"])
def test_arch_conventions_do_not_explain_another_distribution_s_input(
    arch_root: Path, source_tree: Path, tmp_path: Path, other: str
) -> None:
    report = _audit(arch_root, source_tree, tmp_path, distribution=other)
    unexplained = {path.removeprefix("lib/python3.11/") for path in report.unexplained}
    assert {"cgi.py", *ARCH_TOOLS} <= unexplained
    assert ("EXTERNALLY-MANAGED" in unexplained) == (other == "none")
    assert report.sources.missing_groups and all(g.package != "python-tests" for g in report.sources.missing_groups)
    assert not {"tools-scripts", "cgi-shebang"} & set(audit_to_dict(report)["conventions"])


@pytest.mark.parametrize("distribution", ["alpine", "arch"])
def test_debian_conventions_do_not_explain_alpine_or_arch_files(
    alpine_root: Path, source_tree: Path, tmp_path: Path, distribution: str
) -> None:
    """Debian's startup hook, install-scheme module and empty graminit.h on another distribution: unexplained."""
    stdlib = alpine_root / "usr" / "lib" / "python3.11"
    (stdlib / "sitecustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (stdlib / "_distutils_system_mod.py").write_text("")
    (alpine_root / "usr" / "include" / "python3.11").mkdir(parents=True)
    (alpine_root / "usr" / "include" / "python3.11" / "graminit.h").write_text("")
    report = _audit(alpine_root, source_tree, tmp_path, distribution=distribution)
    assert set(report.unexplained) == {
        "lib/python3.11/sitecustomize.py",
        "lib/python3.11/_distutils_system_mod.py",
        "include/python3.11/graminit.h",
    }
    assert _expected(report)["EXTERNALLY-MANAGED"] == ("convention", "externally-managed")
    debian = _audit(alpine_root, source_tree, tmp_path, distribution="debian")
    assert debian.unexplained == (), "the same files are Debian's conventions on Debian"
    assert {g.group: g.package for g in debian.sources.missing_groups}["test"] == "libpython3.11-testsuite"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ID=alpine\n", "alpine"),
        ("ID=arch\n", "arch"),
        ('ID=manjaro\nID_LIKE="arch"\n', "arch"),
        ("ID=ubuntu\nID_LIKE=debian\n", "debian"),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "debian"),
        ("ID=debian\n", "debian"),
        ("ID=fedora\n", None),
        ('ID="rhel"\nID_LIKE="fedora"\n', None),
        ("ID_LIKE=debian-ish\n", None),
    ],
)
def test_os_release_chooses_the_table(tmp_path: Path, text: str, expected: str | None) -> None:
    (tmp_path / "os-release").write_text(text)
    assert os_release_id(tmp_path / "os-release") == expected


def test_the_command_offers_every_table() -> None:
    choices = next(p for p in audit_command.params if p.name == "distribution").type.choices  # type: ignore[attr-defined]
    assert list(choices) == ["auto", *DISTRIBUTIONS, "none"]


def test_the_documented_tables_are_the_code_s() -> None:
    """docs/audit.md has one section per table, listing exactly its ids and citing each convention's source."""
    text = (PROJECT_ROOT / "docs" / "audit.md").read_text()
    sections = re.split(r"^### ", text, flags=re.M)
    for name, table in TABLES.items():
        (section,) = [s for s in sections if s.startswith(f"{name.capitalize()} ")]
        assert set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M)) == set(table), name
        for convention in table.values():
            assert convention.source and convention.source in section, (name, convention.source)
