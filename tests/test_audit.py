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


SOURCE_PARTS = ("Lib/", "Include/", "Modules/Setup", "Makefile.pre.in", "setup.py", "LICENSE")


@pytest.fixture(scope="module")
def source_tree(cpython_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the audit reads of the real Python-3.11.2.tgz (the command gets it from the verified pipeline)."""
    target = tmp_path_factory.mktemp("source")
    with tarfile.open(cpython_fixtures / "Python-3.11.2.tgz") as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(tuple(f"Python-3.11.2/{part}"
                                                                                for part in SOURCE_PARTS))]
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


# --- every file from the source, each difference explained ----------------------------------------

from verify.audit.inputs import read_patch_series  # noqa: E402
from verify.audit.patches import PatchError  # noqa: E402
from verify.audit.sources import read_source_model  # noqa: E402


def _install(source_tree: Path, prefix: Path, *, only: tuple[str, ...] = ()) -> Path:
    """Copy what make install copies from the source into ``prefix`` (all of it, or the files under ``only``)."""
    model = read_source_model(source_tree)
    stdlib = prefix / "lib" / "python3.11"
    for rel, origin in model.stdlib.items():
        if only and not rel.startswith(only):
            continue
        target = stdlib / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_tree / origin, target)
    return stdlib


def _patch(name: str, path: str, old: list[str], new: list[str], start: int = 1) -> str:
    """A real unified diff of ``path`` (quilt style, a/ and b/ prefixes)."""
    import difflib

    body = "".join(difflib.unified_diff([line + "\n" for line in old], [line + "\n" for line in new],
                                        f"a/{path}", f"b/{path}", n=3))
    return f"Description: {name}\n\n{body}"


def _series(directory: Path, patches: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in patches.items():
        (directory / name).write_text(text)
    (directory / "series").write_text("# quilt series\n" + "".join(f"{name} -p1\n" for name in patches))
    return directory


@pytest.fixture()
def planted(source_tree: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A small installation with one planted case per explanation, and the patch series that explains some."""
    prefix = tmp_path / "usr"
    stdlib = _install(source_tree, prefix, only=("json/", "venv/", "base64.py", "quopri.py", "uu.py", "heapq.py",
                                                  "mailcap.py", "bisect.py"))
    lib = source_tree / "Lib"
    heapq = (lib / "heapq.py").read_text().splitlines()
    patched_heapq = [*heapq[:3], "# patched by the distribution", *heapq[3:]]
    activate = (lib / "venv/scripts/common/activate").read_text().splitlines()
    patched_activate = [line.replace("deactivate nondestructive", "deactivate  nondestructive") for line in activate]
    new_module = ["X = 1"]
    patches = _series(tmp_path / "patches", {
        "heapq.diff": _patch("heapq.diff", "Lib/heapq.py", heapq, patched_heapq),
        "activate.diff": _patch("activate.diff", "Lib/venv/scripts/common/activate", activate, patched_activate),
        "new-module.diff": _patch("new-module.diff", "Lib/_added.py", [], new_module).replace(
            "--- a/Lib/_added.py", "--- /dev/null"),
        # Newer than the installation: a security fix the installation does not have must not count.
        "later-fix.diff": _patch("later-fix.diff", "Lib/heapq.py", heapq, [*heapq, "# a later fix"]),
    })
    (stdlib / "heapq.py").write_text("\n".join(patched_heapq) + "\n")
    (stdlib / "venv/scripts/common/activate").write_text("\n".join(patched_activate) + "\n")
    (stdlib / "_added.py").write_text("X = 1\n")
    # A patched part plus a part no patch accounts for.
    (stdlib / "json/decoder.py").write_text((lib / "json/decoder.py").read_text() + "# nobody's patch\n")
    # An activate edit no patch explains.
    fish = stdlib / "venv/scripts/posix/activate.fish"
    fish.write_text(fish.read_text().replace("VIRTUAL_ENV", "VIRTUAL_ENV_EVIL", 1))
    # Shebangs: rewritten to the installation's own interpreter, and to something else.
    for name, interpreter in (("base64.py", "/usr/bin/python3.11"), ("quopri.py", "/tmp/python3")):
        text = (stdlib / name).read_text().split("\n", 1)
        (stdlib / name).write_text(f"#! {interpreter}\n{text[1]}")
    # A relocated prefix: every changed line is the old directory replaced by another.
    (stdlib / "mailcap.py").write_text((lib / "mailcap.py").read_text().replace("'/usr/local/etc/mailcap'",
                                                                                 "'/opt/python/etc/mailcap'"))
    # A change that looks like one but is not: a path added where the source had none.
    (stdlib / "uu.py").write_text((lib / "uu.py").read_text().replace("import binascii",
                                                                       "import binascii  # /opt/python/lib/x", 1))
    # Debian's conventions, in the exact form, and a look-alike that is not one.
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (stdlib / "sitecustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (stdlib / "usercustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (stdlib / "lib-dynload").mkdir()
    shutil.copy(next(Path("/usr/lib/python3.11/lib-dynload").glob("_json.*.so")), stdlib / "lib-dynload")
    shutil.copy(next(Path("/usr/lib/python3.11/lib-dynload").glob("_json.*.so")),
                stdlib / "lib-dynload" / "_evil.cpython-311-x86_64-linux-gnu.so")
    return prefix, patches


def test_every_planted_difference_is_explained_or_named(planted: tuple[Path, Path], source_tree: Path) -> None:
    prefix, patch_dir = planted
    report = audit_installation(prefix, V3112, source_tree, patches=read_patch_series(patch_dir),
                                distribution="debian", install_prefix="/usr")
    by_path = {f.path.removeprefix("lib/python3.11/"): f for f in report.sources.modified}
    assert by_path["heapq.py"].status == "patched" and by_path["heapq.py"].patches == ("heapq.diff",)
    assert by_path["venv/scripts/common/activate"].patches == ("activate.diff",)
    assert by_path["venv/scripts/common/activate"].status == "patched"
    assert by_path["json/decoder.py"].status == "modified"
    assert by_path["venv/scripts/posix/activate.fish"].status == "modified"
    assert (by_path["base64.py"].status, by_path["base64.py"].transform) == ("transformed", "shebang-rewritten")
    assert "/usr/bin/python3.11" in by_path["base64.py"].detail
    assert by_path["quopri.py"].status == "modified", "a shebang to another program is not explained"
    assert (by_path["mailcap.py"].status, by_path["mailcap.py"].transform) == ("transformed", "relocated-prefix")
    assert by_path["mailcap.py"].detail == "prefix /usr/local relocated to /opt/python"
    expected = {f.path.removeprefix("lib/python3.11/"): f for f in report.sources.expected_extra}
    assert expected["_added.py"].status == "added-by-patch" and expected["_added.py"].patches == ("new-module.diff",)
    assert expected["EXTERNALLY-MANAGED"].convention == "externally-managed"
    assert expected["sitecustomize.py"].convention == "sitecustomize-etc"
    assert "1 extension module" in expected["lib-dynload"].detail
    assert report.unexplained == tuple(f"lib/python3.11/{rel}" for rel in (
        "json/decoder.py", "lib-dynload/_evil.cpython-311-x86_64-linux-gnu.so", "quopri.py", "usercustomize.py",
        "uu.py", "venv/scripts/posix/activate.fish",
    ))
    assert "+1 -0 lines left unexplained" not in by_path["json/decoder.py"].detail  # no patch touched it
    groups = {g.group: g for g in report.sources.missing_groups}
    assert groups["test"].package == "libpython3.11-testsuite" and groups["idlelib"].package == "idle-python3.11"
    document = audit_to_dict(report)
    assert document["unexplained"] == list(report.unexplained) and document["clean"] is False
    assert set(document["conventions"]) >= {"externally-managed", "sitecustomize-etc", "shebang-rewrite"}
    assert "every interpreter start" in document["conventions"]["sitecustomize-etc"]["effect"]


def test_without_a_distribution_no_convention_is_applied(planted: tuple[Path, Path], source_tree: Path) -> None:
    prefix, patch_dir = planted
    report = audit_installation(prefix, V3112, source_tree, patches=read_patch_series(patch_dir),
                                install_prefix="/usr")
    assert {"lib/python3.11/EXTERNALLY-MANAGED", "lib/python3.11/sitecustomize.py"} <= set(report.unexplained)
    assert all(not g.package for g in report.sources.missing_groups)


def test_a_patch_accounting_for_part_of_a_file_leaves_the_rest_unexplained(source_tree: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "usr"
    stdlib = _install(source_tree, prefix, only=("heapq.py",))
    heapq = (source_tree / "Lib/heapq.py").read_text().splitlines()
    patched = [*heapq[:3], "# patched", *heapq[3:]]
    patches = _series(tmp_path / "patches", {"p.diff": _patch("p.diff", "Lib/heapq.py", heapq, patched)})
    (stdlib / "heapq.py").write_text("\n".join([*patched, "import os; os.system('id')"]) + "\n")
    report = audit_installation(prefix, V3112, source_tree, patches=read_patch_series(patches))
    (finding,) = report.sources.modified
    assert finding.status == "modified" and finding.patches == ("p.diff",)
    assert "+1 -0 lines left unexplained" in finding.detail
    assert report.unexplained == ("lib/python3.11/heapq.py",)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("up.diff", "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "outside the source tree"),
    ("abs.diff", "--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "absolute"),
    ("mid.diff", "--- a/Lib/../../x\n+++ b/Lib/../../x\n@@ -1 +1 @@\n-a\n+b\n", "outside the source tree"),
])
def test_a_patch_with_traversal_paths_is_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    (tmp_path / "series").write_text(f"{name}\n")
    with pytest.raises(PatchError, match=message):
        read_patch_series(tmp_path)
    (tmp_path / "series").write_text("../outside.diff\n")
    with pytest.raises(PatchError, match="outside the source tree"):
        read_patch_series(tmp_path)
