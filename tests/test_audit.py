"""The audit on real data: the verified 3.11.2 Lib/ from the fixture tarball, the host's Debian python3.11."""

from __future__ import annotations

import importlib.util
import marshal
import py_compile
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from verify.audit import AuditError, audit_installation
from verify.manifest import Manifest, scan_tree
from verify.releases import Version
from verify.report.audit import audit_to_dict, audit_to_json

V3112 = Version.parse("3.11.2")
HOST_PREFIX = Path("/usr")


@pytest.fixture(scope="module")
def source_tree(cpython_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``Lib/`` of the real Python-3.11.2.tgz (the command gets this from the verified pipeline)."""
    target = tmp_path_factory.mktemp("source")
    with tarfile.open(cpython_fixtures / "Python-3.11.2.tgz") as archive:
        members = [m for m in archive.getmembers() if m.name.startswith("Python-3.11.2/Lib/")]
        archive.extractall(target, members=members, filter="data")
    return target / "Python-3.11.2"


def _compile(source: Path, **kwargs: object) -> Path:
    cfile = importlib.util.cache_from_source(str(source))
    py_compile.compile(str(source), cfile=cfile, doraise=True, **kwargs)  # type: ignore[arg-type]
    return Path(cfile)


@pytest.fixture()
def installation(source_tree: Path, tmp_path: Path) -> Path:
    """A small prefix made from the verified Lib/, then tampered with in every way the audit must see."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the test compiles 3.11 .pyc files with the running interpreter")
    prefix = tmp_path / "prefix"
    stdlib = prefix / "lib" / "python3.11"
    stdlib.mkdir(parents=True)
    for name in ("abc.py", "base64.py", "bisect.py", "heapq.py", "keyword.py", "json"):
        origin = source_tree / "Lib" / name
        if origin.is_dir():
            shutil.copytree(origin, stdlib / name)
        else:
            shutil.copy2(origin, stdlib / name)
    for py in sorted(stdlib.rglob("*.py")):
        _compile(py)
    (stdlib / "base64.py").write_text((stdlib / "base64.py").read_text() + "\n# distribution patch\n")
    _compile(stdlib / "base64.py")  # the patched file's own .pyc: consistent, but the source is modified
    (stdlib / "_distro_addon.py").write_text("X = 1\n")  # extra, not in Lib/
    (stdlib / "site-packages" / "thirdparty").mkdir(parents=True)
    (stdlib / "site-packages" / "thirdparty" / "__init__.py").write_text("")
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(
        "build_time_vars = {'CONFIG_ARGS': \"'--prefix=/usr' '--enable-shared' 'CFLAGS=-O2 -g'\"}\n"
    )
    # An orphan in __pycache__ and a sourceless .pyc where the import system would load it.
    shutil.copy(importlib.util.cache_from_source(str(stdlib / "heapq.py")),
                stdlib / "__pycache__" / "ghost.cpython-311.pyc")
    shutil.copy(importlib.util.cache_from_source(str(stdlib / "heapq.py")), stdlib / "sneaky.pyc")
    # Stale: the source changed after compiling (size no longer matches the header).
    keyword = stdlib / "keyword.py"
    keyword.write_text(keyword.read_text().replace("kwlist", "kwlist ", 1))
    # Tampered: bisect's .pyc holds other code under a header that matches bisect.py exactly.
    bisect_pyc = Path(importlib.util.cache_from_source(str(stdlib / "bisect.py")))
    evil = compile("import os\nos.system('true')\n", str(stdlib / "bisect.py"), "exec")
    bisect_pyc.write_bytes(bisect_pyc.read_bytes()[:16] + marshal.dumps(evil))
    return prefix


def test_audit_names_every_deviation(installation: Path, source_tree: Path) -> None:
    report = audit_installation(installation, V3112, source_tree)
    # keyword.py was edited after compiling: modified against Lib/ and its .pyc is stale (below).
    assert [f.path for f in report.sources.modified] == ["lib/python3.11/base64.py", "lib/python3.11/keyword.py"]
    assert report.sources.modified[0].detail == "+2 -0 lines against Lib/"
    assert [f.path for f in report.sources.extra] == ["lib/python3.11/_distro_addon.py"]
    expected = {f.path: f.status for f in report.sources.expected_extra}
    assert expected == {
        "lib/python3.11/_sysconfigdata__linux_x86_64-linux-gnu.py": "generated",
        "lib/python3.11/site-packages": "third-party",
    }
    assert report.sources.missing_by_package()["asyncio"] > 10  # not installed in this small prefix
    assert [f.path for f in report.pyc.orphans] == [
        "lib/python3.11/__pycache__/ghost.cpython-311.pyc",
        "lib/python3.11/sneaky.pyc",
    ]
    assert report.pyc.orphans[1].status == "sourceless"
    assert [f.path for f in report.pyc.stale] == ["lib/python3.11/__pycache__/keyword.cpython-311.pyc"]
    assert "size=" in report.pyc.stale[0].detail
    assert report.pyc.recompiled == 0 and "no independent interpreter" in report.pyc.reference
    assert report.config_args_list == ("--prefix=/usr", "--enable-shared", "CFLAGS=-O2 -g")
    assert not report.clean


def test_recompiling_with_a_reference_interpreter_catches_swapped_code(installation: Path, source_tree: Path) -> None:
    report = audit_installation(installation, V3112, source_tree, reference_python=Path(sys.executable))
    assert [f.path for f in report.pyc.mismatched] == ["lib/python3.11/__pycache__/bisect.cpython-311.pyc"]
    assert report.pyc.mismatched[0].status == "code-mismatch"
    assert report.pyc.recompiled == report.pyc.header_ok
    assert report.pyc.equivalent == report.pyc.recompiled - 1
    assert f"with {sys.executable}" in report.pyc.reference


def test_reference_inside_the_audited_prefix_is_refused(installation: Path, source_tree: Path) -> None:
    inside = installation / "bin" / "python3.11"
    inside.parent.mkdir()
    inside.symlink_to(sys.executable)
    # The link lives in the prefix, but it resolves elsewhere: only the resolved interpreter counts.
    resolved_elsewhere = audit_installation(installation, V3112, source_tree, reference_python=inside)
    assert resolved_elsewhere.pyc.recompiled > 0
    copy = installation / "bin" / "python-copy"
    copy.write_bytes(b"#!/bin/sh\n")
    refused = audit_installation(installation, V3112, source_tree, reference_python=copy)
    assert "belongs to the audited installation" in refused.pyc.reference
    assert refused.pyc.recompiled == 0


def test_elf_files_against_a_rebuild_manifest(installation: Path, source_tree: Path) -> None:
    dynload = installation / "lib" / "python3.11" / "lib-dynload"
    dynload.mkdir()
    real = sorted((Path("/usr/lib/python3.11/lib-dynload")).glob("*.so"))[:3]
    for so in real:
        shutil.copy(so, dynload / so.name)
    rebuild_root = installation.parent / "rebuild" / "opt" / "python" / "lib" / "python3.11" / "lib-dynload"
    rebuild_root.mkdir(parents=True)
    shutil.copy(real[0], rebuild_root / real[0].name)
    shutil.copy(real[2], rebuild_root / real[1].name)  # same name, other bytes
    manifest = Manifest(inputs={}, entries=scan_tree(installation.parent / "rebuild"))
    report = audit_installation(installation, V3112, source_tree, against=manifest)
    assert report.elf.checked == 3 and report.elf.matching == 1
    assert [f.path for f in report.elf.differing] == [f"lib/python3.11/lib-dynload/{real[1].name}"]
    assert [f.path for f in report.elf.not_in_rebuild] == [f"lib/python3.11/lib-dynload/{real[2].name}"]


def test_wrong_prefix_is_a_clear_error(tmp_path: Path, source_tree: Path) -> None:
    with pytest.raises(AuditError, match="no standard library"):
        audit_installation(tmp_path, V3112, source_tree)
    (tmp_path / "lib" / "python3.11").mkdir(parents=True)
    with pytest.raises(AuditError, match="no Lib/"):
        audit_installation(tmp_path, V3112, tmp_path)


def test_host_debian_python_shows_its_patches(source_tree: Path) -> None:
    """This machine's own Debian python3.11: patches appear by name, CONFIG_ARGS say how it was built."""
    report = audit_installation(HOST_PREFIX, V3112, source_tree)
    modified = {f.path for f in report.sources.modified}
    assert "lib/python3.11/sysconfig.py" in modified  # Debian's install-scheme patch
    assert "lib/python3.11/os.py" not in modified
    assert "lib/python3.11/_distutils_system_mod.py" in {f.path for f in report.sources.extra}
    assert "test" in report.sources.missing_by_package()  # split into libpython3.11-testsuite
    assert "--prefix=/usr" in report.config_args_list
    assert not report.pyc.orphans
    document = audit_to_dict(report)
    assert document["format"] == "cpython-verify/audit/v1" and document["clean"] is False
    assert audit_to_json(report) == audit_to_json(report)
