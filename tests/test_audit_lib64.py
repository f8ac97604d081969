"""The audit of installations whose stdlib is in ``lib64`` (``--with-platlibdir=lib64``: Fedora, RHEL, openSUSE).

Every installation is planted at test time from the real, verified 3.13.5 tarball's ``Lib/``, laid out
as Fedora's python3 packages are: the stdlib (``.py``, ``__pycache__``, ``lib-dynload``,
sysconfigdata) in ``PREFIX/lib64/python3.13``, pure-Python packages in
``PREFIX/lib/python3.13/site-packages``, libpython in ``PREFIX/lib64``. ELF files are this host's own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import unpack_audited_parts
from test_audit import _tar_bytes, _tree_entries, run_audit

from verify.audit import AuditError, AuditReport, audit_installation
from verify.audit.files import find_library_dir
from verify.audit.inputs import find_prefixes, locate_installation
from verify.audit.layout import LIBRARY_DIRS, installation_scope, stdlib_candidates
from verify.audit.sources import read_source_model
from verify.commands.audit import audit as audit_command
from verify.manifest import Manifest, scan_tree
from verify.report.audit import audit_to_dict
from verify.source.releases import Version

V3135 = Version.parse("3.13.5")
HOST_DYNLOAD = Path("/usr/lib/python3.11/lib-dynload")
JSON_SO = "_json.cpython-313-x86_64-linux-gnu.so"
EVIL_SO = "_evil.cpython-313-x86_64-linux-gnu.so"
LIBPYTHON = "libpython3.13.so.1.0"
STDLIB_FILES = ("json/", "os.py", "base64.py", "heapq.py", "bisect.py", "keyword.py")


@pytest.fixture(scope="module")
def source_3135(cpython_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parts of the real Python-3.13.5.tar.xz the audit reads, unpacked once for this module."""
    return unpack_audited_parts(cpython_fixtures / "Python-3.13.5.tar.xz", "Python-3.13.5",
                                tmp_path_factory.mktemp("source-3.13.5"))  # fmt: skip


def _host_elf(pattern: str) -> bytes:
    return sorted(HOST_DYNLOAD.glob(pattern))[0].read_bytes()


def _plant(source: Path, prefix: Path, libdir: str) -> Path:
    """A small 3.13.5 installation, its stdlib in ``prefix/libdir/python3.13``, tampered with as the audit must see."""
    model = read_source_model(source)
    stdlib = prefix / libdir / "python3.13"
    for rel, origin in model.stdlib.items():
        if rel.startswith(STDLIB_FILES):
            (stdlib / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / origin, stdlib / rel)
    (stdlib / "base64.py").write_text((stdlib / "base64.py").read_text() + "\n# nobody's patch\n")
    (stdlib / "_distro_addon.py").write_text("X = 1\n")
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(
        "build_time_vars = {'CONFIG_ARGS': \"'--prefix=/usr' '--enable-shared'\"}\n"
    )
    (stdlib / "site-packages" / "platpkg").mkdir(parents=True)
    (stdlib / "site-packages" / "platpkg" / "__init__.py").write_text("")
    (stdlib / "__pycache__").mkdir()
    (stdlib / "__pycache__" / "ghost.cpython-313.pyc").write_bytes(b"\xf3\r\r\n" + b"\0" * 12)  # no ghost.py
    (stdlib / "sneaky.pyc").write_bytes(b"\xf3\r\r\n" + b"\0" * 12)
    (stdlib / "lib-dynload").mkdir()
    (stdlib / "lib-dynload" / JSON_SO).write_bytes(_host_elf("_json.*.so"))
    (stdlib / "lib-dynload" / EVIL_SO).write_bytes(_host_elf("_json.*.so"))
    (prefix / libdir / LIBPYTHON).write_bytes(_host_elf("_bz2.*.so"))
    return prefix


def _rebuild_manifest(root: Path) -> Manifest:
    """A plain rebuild's tree (stdlib in lib): _json's bytes the installation's, libpython other bytes, and a
    second _json of the same name elsewhere, so that a match by file name alone is impossible."""
    stdlib = root / "opt" / "python" / "lib" / "python3.13"
    (stdlib / "lib-dynload").mkdir(parents=True)
    (stdlib / "lib-dynload" / JSON_SO).write_bytes(_host_elf("_json.*.so"))
    (stdlib / "test").mkdir()
    (stdlib / "test" / JSON_SO).write_bytes(_host_elf("_bz2.*.so"))
    (root / "opt" / "python" / "lib" / LIBPYTHON).write_bytes(_host_elf("_codecs_cn.*.so"))
    return Manifest(inputs={}, entries=scan_tree(root))


def _verdicts(report: AuditReport) -> str:
    """The report's findings and counts as JSON, every path spelled with ``lib`` for ``lib64``."""
    document = audit_to_dict(report)
    for key in ("prefix", "stdlib", "notes"):
        document.pop(key, None)
    return json.dumps(document, sort_keys=True).replace("lib64/", "lib/")


def test_a_lib64_installation_audits_like_the_lib_one(source_3135: Path, tmp_path: Path) -> None:
    manifest = _rebuild_manifest(tmp_path / "rebuild")
    reports = {
        libdir: audit_installation(
            _plant(source_3135, tmp_path / libdir / "usr", libdir),
            V3135,
            source_3135,
            against=manifest,
            install_prefix="/usr",
        )
        for libdir in LIBRARY_DIRS
    }
    lib64 = reports["lib64"]
    assert lib64.stdlib.endswith("/lib64/python3.13") and lib64.notes == reports["lib"].notes
    assert lib64.unexplained == (
        f"lib64/{LIBPYTHON}",
        "lib64/python3.13/__pycache__/ghost.cpython-313.pyc",
        "lib64/python3.13/_distro_addon.py",
        "lib64/python3.13/base64.py",
        f"lib64/python3.13/lib-dynload/{EVIL_SO}",
        "lib64/python3.13/sneaky.pyc",
    )
    assert (lib64.sources.checked, lib64.sources.identical) == (10, 9)  # every file planted, base64.py modified
    expected = {f.path: f.status for f in lib64.sources.expected_extra}
    assert expected == {
        "lib64/python3.13/_sysconfigdata__linux_x86_64-linux-gnu.py": "generated",
        "lib64/python3.13/lib-dynload": "generated",
        "lib64/python3.13/site-packages": "third-party",
    }
    assert lib64.elf.checked == 3 and lib64.elf.matching == 1, "_json matched with the rebuild's lib-dynload/_json"
    assert [f.path for f in lib64.elf.differing] == [f"lib64/{LIBPYTHON}"]
    assert [f.path for f in lib64.elf.not_in_rebuild] == [f"lib64/python3.13/lib-dynload/{EVIL_SO}"]
    assert lib64.config_args_list == ("--prefix=/usr", "--enable-shared")
    assert _verdicts(lib64) == _verdicts(reports["lib"])


def test_fedora_layout_picks_lib64_and_says_why(source_3135: Path, cpython_fixtures: Path, tmp_path: Path) -> None:
    """A Fedora image: stdlib in usr/lib64/python3.13, only site-packages in usr/lib/python3.13, /lib64 a link."""
    root = tmp_path / "rootfs"
    _plant(source_3135, root / "usr", "lib64")
    purelib = root / "usr" / "lib" / "python3.13" / "site-packages" / "purepkg"
    purelib.mkdir(parents=True)
    (purelib / "__init__.py").write_text("")
    (purelib / "module.py").write_text("Y = 2\n")
    (root / "lib64").symlink_to("usr/lib64")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=41\n')
    assert find_prefixes(root, "3.13") == ["usr"], "the root's lib64 link is not a second prefix"
    located = locate_installation([root], "3.13", tmp_path / "scratch", None, "auto")
    assert (located.prefix, located.libdir, located.distribution) == (root / "usr", "lib64", None)
    image = tmp_path / "fedora-rootfs.tar.gz"
    image.write_bytes(_tar_bytes(_tree_entries(root, "."), compress=True))
    result = run_audit(
        "3.13.5", image, "--from", cpython_fixtures, "--offline", "--work-dir", tmp_path / "work", "--json"
    )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["prefix"] == "/usr" and document["stdlib"] == "/usr/lib64/python3.13"
    assert (
        "the standard library is lib64/python3.13 (it holds lib-dynload and os.py); lib/python3.13 holds only "
        "site-packages"
    ) in " ".join(document["notes"])
    third_party = {
        f["path"]: f["detail"] for f in document["sources"]["expected_extra"] if f["status"] == "third-party"
    }
    assert third_party == {
        "lib/python3.13/site-packages": "2 file(s): site packages, not the stdlib",
        "lib64/python3.13/site-packages": "1 file(s): site packages, not the stdlib",
    }
    assert document["unexplained"] == [
        "lib64/python3.13/__pycache__/ghost.cpython-313.pyc",
        "lib64/python3.13/_distro_addon.py",
        "lib64/python3.13/base64.py",
        f"lib64/python3.13/lib-dynload/{EVIL_SO}",
        "lib64/python3.13/sneaky.pyc",
    ]
    assert document["out_of_scope"] == ["etc/os-release", "lib64"]
    text = run_audit("3.13.5", image, "--from", cpython_fixtures, "--offline")
    shown = " ".join(text.stdout.split())  # the terminal wraps the long note
    assert "(/usr/lib64/python3.13)" in shown and "lib/python3.13 holds only site-packages" in shown


def test_no_stdlib_in_either_is_the_one_line_failure(tmp_path: Path) -> None:
    """Nothing but site-packages in lib and lib64: no file of the standard library, nothing to compare (exit 1)."""
    prefix = tmp_path / "usr"
    for libdir in LIBRARY_DIRS:
        (prefix / libdir / "python3.13" / "site-packages").mkdir(parents=True)
        (prefix / libdir / "python3.13" / "site-packages" / "pkg.py").write_text("")
    result = run_audit("3.13.5", tmp_path, "--offline", "--from", tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert "no file of the standard library or interpreter of Python 3.13 was in the input" in result.stderr


def _outside_stdlib(tmp_path: Path) -> Path:
    """A directory outside the audited input that looks like a lib64 with a standard library."""
    outside = tmp_path / "outside" / "lib64"
    (outside / "python3.13" / "lib-dynload").mkdir(parents=True)
    (outside / "python3.13" / "os.py").write_text("import secrets\n")
    (outside / LIBPYTHON).write_bytes(_host_elf("_json.*.so"))
    return outside


@pytest.mark.parametrize("case", ["lib64-links-out", "stdlib-link-loop", "image-lib64-absolute"])
def test_a_linked_library_directory_is_refused_with_one_line(case: str, tmp_path: Path) -> None:
    prefix = tmp_path / "input" / "opt" / "python"
    (prefix / "lib" / "python3.13" / "site-packages").mkdir(parents=True)
    (prefix / "lib" / "python3.13" / "site-packages" / "pkg.py").write_text("")
    target = prefix
    if case == "lib64-links-out":
        (prefix / "lib64").symlink_to(_outside_stdlib(tmp_path))
        message = "lib64 is a symbolic link to"
    elif case == "stdlib-link-loop":
        (prefix / "lib64").mkdir()
        (prefix / "lib64" / "python3.13").symlink_to("python3.13")
        message = "lib64/python3.13 is a symbolic link loop"
    else:
        target = tmp_path / "image.tar"
        target.write_bytes(_tar_bytes([*_tree_entries(prefix, "."), ("lib64", "/", "symlink")]))
        message = "lib64 is a symbolic link to /, outside"
    result = run_audit("3.13.5", target, "--offline", "--from", tmp_path, "--work-dir", tmp_path / "w")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr and "refused" in result.stderr, result.stderr
    if case != "image-lib64-absolute":
        with pytest.raises(AuditError, match="refused"):
            find_library_dir(prefix, "3.13")


def test_a_link_beside_a_real_stdlib_is_never_followed(source_3135: Path, tmp_path: Path) -> None:
    """A lib stdlib with lib64 leading out of the input: audited, lib64 named in a note, nothing read through it."""
    prefix = _plant(source_3135, tmp_path / "input" / "usr", "lib")
    (prefix / "lib64").symlink_to(_outside_stdlib(tmp_path))
    report = audit_installation(prefix, V3135, source_3135)
    assert report.stdlib == str(prefix / "lib" / "python3.13")
    assert [note for note in report.notes if "lib64" in note] == [
        f"{prefix / 'lib64'} is a symbolic link to {tmp_path / 'outside' / 'lib64'}, outside {prefix}: not followed"
    ]
    touched = [f.path for f in (*report.findings(), *report.sources.expected_extra)]
    assert touched and not [path for path in touched if path.startswith("lib64")]
    assert report.elf.checked == 3  # the two lib-dynload modules and lib/libpython3.13.so.1.0, not the outside one


def test_arch_s_lib64_link_to_lib_is_the_same_directory(source_3135: Path, tmp_path: Path) -> None:
    prefix = _plant(source_3135, tmp_path / "usr", "lib")
    (prefix / "lib64").symlink_to("lib")
    assert find_library_dir(prefix, "3.13").name == "lib" and not find_library_dir(prefix, "3.13").notes
    assert audit_installation(prefix, V3135, source_3135).stdlib == str(prefix / "lib" / "python3.13")


def test_two_standard_libraries_need_libdir(source_3135: Path, tmp_path: Path) -> None:
    """A multilib system: a 32-bit stdlib in lib, the 64-bit one in lib64. Nothing tells them apart but the user."""
    prefix = _plant(source_3135, tmp_path / "usr", "lib64")
    _plant(source_3135, prefix, "lib")
    with pytest.raises(AuditError, match="choose one with --libdir"):
        find_library_dir(prefix, "3.13")
    with pytest.raises(AuditError, match="choose one with --libdir"):
        locate_installation([prefix], "3.13", tmp_path / "scratch", None, "auto")
    located = locate_installation([prefix], "3.13", tmp_path / "scratch", None, "auto", "lib64")
    assert located.libdir == "lib64" and any("lib/python3.13 holds a standard library too" in n for n in located.notes)
    searched = locate_installation([tmp_path], "3.13", tmp_path / "scratch", None, "auto", "lib64")
    assert (searched.prefix, searched.libdir, searched.install_prefix) == (prefix, "lib64", "/usr")
    report = audit_installation(prefix, V3135, source_3135, libdir="lib64")
    assert report.stdlib == str(prefix / "lib64" / "python3.13")


def test_choosing_the_library_directory_and_the_scope_of_a_path() -> None:
    assert stdlib_candidates({"lib": {"site-packages"}, "lib64": {"os.py", "site-packages"}}) == ("lib64",)
    assert stdlib_candidates({"lib": {"site-packages", "stray.py"}, "lib64": {"lib-dynload"}}) == ("lib64",)
    assert stdlib_candidates({"lib": {"site-packages", "stray.py"}, "lib64": {"site-packages"}}) == ("lib",)
    assert stdlib_candidates({"lib": {"os.py"}, "lib64": {"os.py"}}) == ("lib", "lib64")
    assert stdlib_candidates({"lib": {"dist-packages"}, "lib64": set()}) == ()
    scope = {
        path: installation_scope(path, "3.13", "lib64")
        for path in (
            "lib64/python3.13/os.py",
            "lib/python3.13/os.py",
            "lib/python3.13/site-packages/x.py",
            "lib64/python3.13/site-packages/y.py",
            "lib64/libpython3.13.so.1.0",
            "lib/libpython3.13.so",
            "lib64/x86_64-linux-gnu/libpython3.13.so",
            "lib64/libc.so.6",
            "bin/python3.13",
        )
    }
    assert scope == {
        "lib64/python3.13/os.py": "stdlib",
        "lib/python3.13/os.py": None,
        "lib/python3.13/site-packages/x.py": "third-party",
        "lib64/python3.13/site-packages/y.py": "third-party",
        "lib64/libpython3.13.so.1.0": "libpython",
        "lib/libpython3.13.so": "libpython",
        "lib64/x86_64-linux-gnu/libpython3.13.so": "libpython",
        "lib64/libc.so.6": None,
        "bin/python3.13": "interpreter",
    }
    assert installation_scope("lib/python3.13/os.py", "3.13", "lib") == "stdlib"
    (libdir_option,) = [p for p in audit_command.params if p.name == "libdir"]
    assert list(getattr(libdir_option.type, "choices", ())) == list(LIBRARY_DIRS)
