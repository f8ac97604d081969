"""``audit --against``: the installation's ELF files against a rebuild, explained by compare's comparators.

Real ELF files: extension modules compiled with gcc at test time, once as "the rebuild" and once as
"the installation", in two build directories or with other code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_audit import run_audit

from verify.audit import audit_installation
from verify.audit.elf import RebuildSide
from verify.compare.comparators import FilePair, explain
from verify.manifest import Manifest, scan_tree
from verify.source.releases import Version

V3112 = Version.parse("3.11.2")
SO = "_planted.cpython-311-x86_64-linux-gnu.so"
OTHER_SO = "_other.cpython-311-x86_64-linux-gnu.so"
MODULE = "int answer(void) { return 42; }\n"
OTHER_MODULE = "int twice(int x) { return 2 * x; }\n"
CONFIG_ARGS = "'--prefix=/opt/python' '--with-ensurepip=no'"


def _compile(directory: Path, source: str, output: str, *flags: str) -> bytes:
    """``gcc -g -shared`` of ``source`` inside ``directory`` (its path lands in the DWARF info)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "m.c").write_text(source)
    subprocess.run(
        ["gcc", "-g", "-fPIC", "-shared", *flags, "m.c", "-o", output], cwd=directory, check=True, capture_output=True
    )
    return (directory / output).read_bytes()


def _prefix(root: Path, config_args: str, modules: dict[str, bytes]) -> Path:
    """A prefix with a sysconfigdata recording ``config_args`` and the given extension modules."""
    stdlib = root / "lib" / "python3.11"
    (stdlib / "lib-dynload").mkdir(parents=True)
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(
        f"build_time_vars = {{'prefix': '/opt/python', 'CONFIG_ARGS': {config_args!r}}}\n"
    )
    for name, data in modules.items():
        (stdlib / "lib-dynload" / name).write_bytes(data)
    return root


@pytest.fixture()
def builds(tmp_path: Path) -> dict[str, bytes]:
    """The same module built in two directories, and a module whose code differs at one build path."""
    return {
        "rebuilt": _compile(tmp_path / "build-one", MODULE, SO),
        "moved": _compile(tmp_path / "build-two", MODULE, SO),
        "other-rebuilt": _compile(tmp_path / "build-one", OTHER_MODULE, OTHER_SO, "-O0"),
        "other-code": _compile(tmp_path / "build-one", OTHER_MODULE, OTHER_SO, "-O2"),
    }


def _rebuild(tmp_path: Path, builds: dict[str, bytes], config_args: str = CONFIG_ARGS) -> Path:
    """A rebuild's install tree, laid out like a result's root/ (opt/python/...)."""
    root = tmp_path / "rebuild"
    _prefix(root / "opt" / "python", config_args, {SO: builds["rebuilt"], OTHER_SO: builds["other-rebuilt"]})
    return root


def test_same_flags_differences_are_explained_by_compare_s_comparators(
    tmp_path: Path, source_tree: Path, builds: dict[str, bytes]
) -> None:
    installation = _prefix(tmp_path / "usr", CONFIG_ARGS, {SO: builds["moved"], OTHER_SO: builds["other-code"]})
    root = _rebuild(tmp_path, builds)
    report = audit_installation(
        installation, V3112, source_tree, against=RebuildSide(Manifest(entries=scan_tree(root)), root)
    )
    elf = report.elf
    assert elf.config_args_match is True
    assert elf.rebuild_config_args == ("--prefix=/opt/python", "--with-ensurepip=no")
    found = {finding.path.rsplit("/", 1)[-1]: finding for finding in elf.differing}
    assert set(found) == {SO, OTHER_SO}
    # Exactly compare's verdict on the same pair (rebuild as A, installation as B): no audit-only wording.
    for name, rebuilt, installed in ((SO, "rebuilt", "moved"), (OTHER_SO, "other-rebuilt", "other-code")):
        expected = explain(
            FilePair(
                f"opt/python/lib/python3.11/lib-dynload/{name}",
                "elf-shared-object",
                "elf-shared-object",
                builds[rebuilt],
                builds[installed],
            )
        )
        assert found[name].comparison == expected
        assert found[name].detail == f"{expected.category}: {expected.explanation}"
    moved = found[SO].comparison
    assert moved is not None and moved.category == "debug-info"
    assert moved.build_paths == (str(tmp_path / "build-one"), str(tmp_path / "build-two"))
    other = found[OTHER_SO].comparison
    assert other is not None and other.category == "code" and ".text" in other.sections
    assert "same arguments" in elf.note
    assert set(report.unexplained) >= {f.path for f in elf.differing}, "a differing binary stays unexplained"


def test_other_flags_are_named_instead_of_comparing_the_binaries(
    tmp_path: Path, source_tree: Path, builds: dict[str, bytes]
) -> None:
    installation = _prefix(
        tmp_path / "usr",
        "'--prefix=/usr' '--enable-shared' '--with-ensurepip=no'",
        {SO: builds["moved"], OTHER_SO: builds["other-rebuilt"]},
    )
    root = _rebuild(tmp_path, builds)
    report = audit_installation(
        installation, V3112, source_tree, against=RebuildSide(Manifest(entries=scan_tree(root)), root)
    )
    assert report.elf.config_args_match is False and report.elf.matching == 1
    (finding,) = report.elf.differing
    assert finding.comparison is None
    assert "only here: --enable-shared --prefix=/usr; only in the rebuild: --prefix=/opt/python" in finding.detail
    assert "rebuild with this installation's CONFIG_ARGS" in finding.detail


def test_a_manifest_alone_gives_compare_s_digest_verdict(
    tmp_path: Path, source_tree: Path, builds: dict[str, bytes]
) -> None:
    installation = _prefix(tmp_path / "usr", CONFIG_ARGS, {SO: builds["moved"]})
    root = _rebuild(tmp_path, builds)
    report = audit_installation(installation, V3112, source_tree, against=Manifest(entries=scan_tree(root)))
    (finding,) = report.elf.differing
    assert finding.comparison is not None and finding.comparison.comparator == "digest"
    assert "only the manifests' digests were available" in finding.comparison.explanation
    assert report.elf.config_args_match is None and report.elf.rebuild_config_args is None
    assert "manifest only" in report.elf.note and "give the rebuild result directory" in report.elf.note


def test_cli_against_a_rebuild_tree_json_and_text(
    tmp_path: Path, source_tree: Path, builds: dict[str, bytes], cpython_fixtures: Path
) -> None:
    installation = _prefix(tmp_path / "usr", CONFIG_ARGS, {SO: builds["moved"], OTHER_SO: builds["other-rebuilt"]})
    root = _rebuild(tmp_path, builds)
    common = (
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--against",
        root,
    )
    result = run_audit("3.11.2", installation, *common, "--json")
    assert result.returncode == 1, result.stderr
    elf = json.loads(result.stdout)["elf"]
    assert elf["config_args_match"] is True and elf["matching"] == 1
    assert elf["rebuild_config_args"] == ["--prefix=/opt/python", "--with-ensurepip=no"]
    (differing,) = elf["differing"]
    assert differing["comparison"]["comparator"] == "elf" and differing["comparison"]["category"] == "debug-info"
    assert differing["comparison"]["build_paths"] == [str(tmp_path / "build-one"), str(tmp_path / "build-two")]
    text = run_audit("3.11.2", installation, *common)
    assert "debug-info: code and data are identical" in text.stdout, text.stdout
    assert "the rebuild's (the same arguments): ./configure --prefix=/opt/python --with-ensurepip=no" in text.stdout
    missing = run_audit("3.11.2", installation, *common[:-1], tmp_path / "not-there")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
