"""Slow tests: a real rebuild of a release of the newest series, checked by CPython's own tests and marshal.

The release tier (scripts/test-releases) builds 3.14.4 in its ``default`` profile (``Python-3.14.4.tar.xz``,
Sigstore only) through the real ``rebuild`` command, into the session's shared rebuild cache, and then:

* the rebuilt interpreter runs (in the environment it was built in), says it is that release, has every
  extension module configure knows (none ``missing``), was built with the JIT and the tail-calling
  interpreter off (the free-threaded profile: without the GIL), and wrote checked-hash ``.pyc`` files;
* ``bench/pyc_oracle.py`` finds that cpython-verify's ``.pyc`` reader loads every ``.pyc`` of its
  standard library exactly as the interpreter's own ``marshal`` does;
* a subset of CPython's own test suite passes on it, in the pinned environment it was built in, with
  each module having really run tests (a module skipped whole, e.g. ``test_ssl`` without ``_ssl``,
  fails): a rebuild that is reproducible but broken does not pass.

Nothing here is particular to 3.14.4: ``$CPYTHON_VERIFY_SERIES_BUILDS`` names other builds to check the
same way (``3.14.4:free-threaded,3.15.0rc1:default``); the fixture directory must hold their tarballs and
bundles. docs/reproducibility.md records the by-hand runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, run_cli

from verify.environments import get_runner, image_for
from verify.environments.interface import Bind, SandboxSpec
from verify.source.releases import Version

# The release tier (docs/testing.md): another release, built in another pinned environment (trixie-cpython,
# whose rootfs is built too). CI's one real build is 3.13.5's default profile.
pytestmark = [pytest.mark.slow, pytest.mark.release]

DEFAULT_BUILDS = "3.14.4:default"
CPYTHON_TESTS = ("test_re", "test_json", "test_ssl", "test_sqlite3", "test_ctypes", "test_decimal")
"""The subset of CPython's test suite run on each rebuild: regular expressions, JSON, and the C libraries
the build links (OpenSSL, SQLite, libffi, libmpdec) through their extension modules."""


def _builds() -> list[tuple[str, str]]:
    text = os.environ.get("CPYTHON_VERIFY_SERIES_BUILDS") or DEFAULT_BUILDS
    return [(item.split(":")[0], item.split(":")[1]) for item in text.split(",") if item]


@pytest.fixture(scope="module", params=_builds(), ids=lambda build: f"{build[0]}-{build[1]}")
def rebuilt(
    request: pytest.FixtureRequest,
    cpython_fixtures: Path,
    shared_rebuild_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, str, Path]:
    """(release, profile, result directory) of a real ``rebuild`` through the command line."""
    version, profile = request.param
    out = tmp_path_factory.mktemp("series") / f"rebuild-{version}-{profile}"
    completed = run_cli(
        "rebuild",
        version,
        "--profile",
        profile,
        "--from",
        cpython_fixtures,
        "--offline",
        "--rebuild-cache",
        shared_rebuild_cache,
        "--out",
        out,
        "--no-progress",
        timeout=5400,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"recipe {Version.parse(version).series} profile {profile}: " in completed.stdout
    return version, profile, out


def _in_environment(result: Path, argv: list[str], log: Path, *, writable: Path | None = None) -> tuple[int, str]:
    """Run ``argv`` in the environment the result was built in (its rebuild.json names it), the install tree
    bound read-only at ``/out`` (``writable``, if given, at ``/build``), as the rebuild ran: its interpreter
    needs that environment's C library, not this host's. Returns the exit status and the combined output."""
    record = json.loads((result / "rebuild.json").read_text())
    image = image_for(record["inputs"]["environment"]["name"])
    binds = [Bind(result / "root", "/out")] + ([Bind(writable, "/build", writable=True)] if writable else [])
    spec = SandboxSpec(binds=tuple(binds), env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C.UTF-8",
                                                "TZ": "UTC"}, cwd="/tmp")  # fmt: skip
    ran = get_runner("bwrap").run(image, argv, spec, log_path=log)
    return ran.returncode, log.read_text(errors="replace")


def _sandboxed(python: Path, result: Path) -> str:
    """Where ``python`` (under ``result/root``) is inside the sandbox."""
    return "/out/" + python.relative_to(result / "root").as_posix()


def _layout(result: Path) -> tuple[Path, Path]:
    """The interpreter and standard library of an install tree: ``python3.X`` or, free-threaded, ``python3.Xt``."""
    prefix = result / "root" / "opt" / "python"
    (stdlib,) = [path for path in (prefix / "lib").glob("python3.*") if (path / "os.py").is_file()]
    return prefix / "bin" / stdlib.name, stdlib


def test_the_rebuilt_interpreter_is_the_release_with_the_jit_and_tail_calls_off(
    rebuilt: tuple[str, str, Path], tmp_path: Path
) -> None:
    version, _profile, result = rebuilt
    python, stdlib = _layout(result)
    probe = (
        "import json, sys, sysconfig, ssl, sqlite3, ctypes, decimal, _ctypes, _decimal;"
        "jit = getattr(sys, '_jit', None);"
        "print(json.dumps({'version': sys.version.split()[0],"
        " 'jit': bool(jit and jit.is_available()),"
        " 'tail_calls': bool(sysconfig.get_config_var('_Py_TAIL_CALL_INTERP')),"
        " 'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
        " 'gil': sys._is_gil_enabled() if hasattr(sys, '_is_gil_enabled') else True,"
        " 'missing': sorted(k for k, v in sysconfig.get_config_vars().items()"
        "                   if k.startswith('MODULE_') and k.endswith('_STATE') and v == 'missing')}))"
    )
    status, output = _in_environment(result, [_sandboxed(python, result), "-I", "-c", probe], tmp_path / "probe.log")
    assert status == 0, output[-3000:]
    facts = json.loads([line for line in output.splitlines() if line.startswith("{")][-1])
    assert facts["version"] == version
    # configure built every stdlib extension module (3.15 on bookworm: _decimal and _zstd were missing).
    assert facts["missing"] == [], facts["missing"]
    assert facts["jit"] is False and facts["tail_calls"] is False, facts
    configure = json.loads((result / "rebuild.json").read_text())["inputs"]["recipe"]["configure"]
    free_threaded = "--disable-gil" in configure
    assert facts["free_threaded"] is free_threaded and facts["gil"] is not free_threaded, facts
    assert stdlib.name.endswith("t") is free_threaded
    pycs = list(stdlib.rglob("*.pyc"))
    assert len(pycs) > 3000
    # SOURCE_DATE_EPOCH: checked-hash headers (PEP 552 flags == 3), no mtimes.
    assert all(path.read_bytes()[4:8] == b"\x03\x00\x00\x00" for path in pycs)


def test_our_pyc_reader_loads_every_stdlib_pyc_as_the_interpreters_own_marshal(rebuilt: tuple[str, str, Path]) -> None:
    _version, _profile, result = rebuilt
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / "pyc_oracle.py"), str(result)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert ": agree" in completed.stdout, completed.stdout


def test_cpythons_own_tests_pass_on_the_rebuild_in_its_environment(
    rebuilt: tuple[str, str, Path], tmp_path: Path
) -> None:
    _version, _profile, result = rebuilt
    python, _stdlib = _layout(result)
    report = tmp_path / "report"
    report.mkdir()
    command = [_sandboxed(python, result), "-m", "test", "-j2", "--timeout=1200", "--junit-xml=/build/junit.xml",
               *CPYTHON_TESTS]  # fmt: skip
    status, output = _in_environment(result, command, tmp_path / "regrtest.log", writable=report)
    assert status == 0, output[-4000:]
    assert "Result: SUCCESS" in output, output[-4000:]
    # Every module ran tests of its own (regrtest counts a module whose import fails as skipped).
    suites = ET.parse(report / "junit.xml").getroot()  # regrtest's own report, written in our sandbox
    executed: dict[str, int] = {}
    for case in suites.iter("testcase"):
        test_id = case.get("name", "")  # unittest's id: test.test_json.test_decode.TestCDecode.test_float
        module = next((name for name in CPYTHON_TESTS if f".{name}." in f".{test_id}."), None)
        if module is not None and case.find("skipped") is None:
            executed[module] = executed.get(module, 0) + 1
    assert set(executed) == set(CPYTHON_TESTS), executed
    assert all(count >= 20 for count in executed.values()), executed


def test_audit_of_the_rebuilt_tree_is_clean_and_names_exactly_a_planted_edit(
    rebuilt: tuple[str, str, Path], cpython_fixtures: Path, tmp_path: Path
) -> None:
    version, _profile, result = rebuilt
    python, stdlib = _layout(result)
    prefix = python.parent.parent
    common = ("--from", cpython_fixtures, "--offline", "--against", result, "--json")
    pristine = run_cli("audit", version, prefix, *common, timeout=1800)
    assert pristine.returncode == 0, pristine.stdout[-3000:] + pristine.stderr
    report = json.loads(pristine.stdout)
    assert report["clean"] and report["sources"]["checked"] > 2000, report["sources"]["checked"]
    assert report["elf"]["checked"] == report["elf"]["matching"] > 70 and report["elf"]["config_args_match"]
    assert any(note.startswith(f"release {version}, as recorded by") for note in report["notes"])
    # The same tree with one stdlib module edited (hard links, the edited file a new one: the cache stays intact).
    copy = tmp_path / "opt" / "python"
    copy.parent.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(prefix), str(copy)], check=True)
    edited = copy / stdlib.relative_to(prefix) / "json" / "decoder.py"
    text = edited.read_text()
    edited.unlink()
    edited.write_text(text + "\n__import__('os').system('true')\n")
    planted = run_cli("audit", version, copy, *common, timeout=1800)
    assert planted.returncode == 1, planted.stdout[-3000:] + planted.stderr
    found = json.loads(planted.stdout)
    relative = edited.relative_to(copy).as_posix()
    assert [f["path"] for f in found["sources"]["modified"]] == [relative]
    # Its .pyc no longer matches the edited source (a checked-hash header): the only other finding.
    stale = [f["path"] for f in found["pyc"]["stale"]]
    assert found["unexplained"] == sorted([relative, *stale]), found["unexplained"]
    assert stale and all("json/__pycache__/decoder." in path for path in stale)
