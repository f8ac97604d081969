"""The audit refuses an installation of another release than VERSION, in one line, before comparing anything.

The planted trees carry what a real installation records about its release: ``build-details.json`` as
``make install`` writes it from 3.14 on (and as Debian names it), ``patchlevel.h``, and the ``name
version`` of the Debian packages an installation was unpacked from. The real Debian packages are in the
slow test below (``apt-get download`` of a newer 3.14.x than the 3.14.4 tarball at hand).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import run_cli

from verify.audit import AuditError, audit_installation
from verify.audit.release import (
    ReleaseMismatch,
    ReleaseWitness,
    _from_debian_version,
    check_release,
    release_witnesses,
)
from verify.source.releases import Version


def build_details(micro: int, level: str = "final", serial: int = 0, series: tuple[int, int] = (3, 14)) -> str:
    """A ``build-details.json`` in PEP 739's shape, as CPython's generate-build-details.py writes it."""
    info = {"major": series[0], "minor": series[1], "micro": micro, "releaselevel": level, "serial": serial}
    return json.dumps({
        "schema_version": "1.0",
        "base_prefix": "/opt/python",
        "language": {"version": f"{series[0]}.{series[1]}", "version_info": info},
        "implementation": {"name": "cpython", "version": info, "cache_tag": f"cpython-{series[0]}{series[1]}"},
    }, indent=2)  # fmt: skip


def planted_prefix(root: Path, *, details: str | None, patchlevel: str | None, series: str = "3.14") -> Path:
    """A prefix with a few stdlib files and the given release records (None: that file is absent)."""
    stdlib = root / "lib" / f"python{series}"
    stdlib.mkdir(parents=True)
    (stdlib / "os.py").write_text("# os\n")
    (stdlib / "abc.py").write_text("# abc\n")
    if details is not None:
        (stdlib / "build-details.json").write_text(details)
    if patchlevel is not None:
        include = root / "include" / f"python{series}"
        include.mkdir(parents=True)
        (include / "patchlevel.h").write_text(f'#define PY_MAJOR_VERSION 3\n#define PY_VERSION      "{patchlevel}"\n')
    return root


def test_each_witness_is_read(tmp_path: Path) -> None:
    prefix = planted_prefix(tmp_path, details=build_details(10), patchlevel="3.14.10")
    witnesses = release_witnesses(
        prefix, prefix / "lib/python3.14", "3.14", ["libpython3.14-stdlib 3.14.10-1", "unrelated-tool 3.14.4-1"]
    )
    assert witnesses == (
        ReleaseWitness("3.14.10", "lib/python3.14/build-details.json"),
        ReleaseWitness("3.14.10", "include/python3.14/patchlevel.h"),
        ReleaseWitness("3.14.10", "Debian package libpython3.14-stdlib 3.14.10-1"),
    )


@pytest.mark.parametrize(
    ("debian", "release"),
    [
        ("3.14.10-1", "3.14.10"),
        ("3.15.0~rc1-1", "3.15.0rc1"),
        ("3.15.2-1+b1", "3.15.2"),
        ("1:3.11.2-6+deb12u9", "3.11.2"),
        ("3.13.5", "3.13.5"),
        ("3.14.0~a5-2", "3.14.0a5"),
        ("not-a-version", None),
        ("3.14", None),
    ],
)
def test_debian_versions_name_the_upstream_release(debian: str, release: str | None) -> None:
    assert _from_debian_version(debian) == release


def test_a_prerelease_in_build_details_is_spelled_as_cpython_does(tmp_path: Path) -> None:
    prefix = planted_prefix(tmp_path, details=build_details(0, "candidate", 1, (3, 15)), patchlevel=None, series="3.15")
    assert [w.release for w in release_witnesses(prefix, prefix / "lib/python3.15", "3.15")] == ["3.15.0rc1"]


def test_unreadable_or_hostile_witnesses_are_not_witnesses(tmp_path: Path) -> None:
    prefix = planted_prefix(tmp_path, details="{not json", patchlevel=None)
    stdlib = prefix / "lib/python3.14"
    (stdlib / "build-details.x86_64.json").write_text(json.dumps({"language": {"version_info": [1, 2]}}))
    (stdlib / "build-details.huge.json").write_text(build_details(9) + " " * (1 << 17))
    os.mkfifo(stdlib / "build-details.fifo.json")  # opening a FIFO must not wait for a writer
    assert release_witnesses(prefix, stdlib, "3.14") == ()


def test_the_same_release_everywhere_passes_and_none_is_allowed() -> None:
    check_release(Version.parse("3.14.4"), [ReleaseWitness("3.14.4", "a"), ReleaseWitness("3.14.4", "b")])
    check_release(Version.parse("3.14.4"), [])


def test_another_release_is_one_line_naming_it_and_where_it_is_recorded() -> None:
    with pytest.raises(ReleaseMismatch) as caught:
        check_release(Version.parse("3.14.4"), [ReleaseWitness("3.14.10", "lib/python3.14/build-details.json")])
    message = str(caught.value)
    assert "\n" not in message
    assert "is Python 3.14.10, not 3.14.4" in message and "cpython-verify audit 3.14.10 ..." in message
    assert isinstance(caught.value, AuditError)


def test_witnesses_that_disagree_among_themselves_are_refused_too() -> None:
    with pytest.raises(ReleaseMismatch, match=r"several releases.*patchlevel\.h says 3\.14\.10"):
        check_release(
            Version.parse("3.14.4"),
            [
                ReleaseWitness("3.14.4", "lib/python3.14/build-details.json"),
                ReleaseWitness("3.14.10", "include/python3.14/patchlevel.h"),
            ],
        )


def test_audit_installation_refuses_before_comparing(tmp_path: Path, source_tree: Path) -> None:
    prefix = planted_prefix(tmp_path / "newer", details=None, patchlevel="3.11.4", series="3.11")
    with pytest.raises(ReleaseMismatch, match=r"is Python 3\.11\.4, not 3\.11\.2"):
        audit_installation(prefix, Version.parse("3.11.2"), source_tree)
    same = planted_prefix(tmp_path / "same", details=None, patchlevel="3.11.2", series="3.11")
    report = audit_installation(same, Version.parse("3.11.2"), source_tree)
    assert "release 3.11.2, as recorded by include/python3.11/patchlevel.h" in report.notes
    silent = planted_prefix(tmp_path / "silent", details=None, patchlevel=None, series="3.11")
    report = audit_installation(silent, Version.parse("3.11.2"), source_tree)
    assert any("nothing in the installation records its release" in note for note in report.notes)


def test_the_command_refuses_a_planted_3_14_tree_of_another_release(tmp_path: Path, cpython_fixtures: Path) -> None:
    prefix = planted_prefix(tmp_path / "opt/python", details=build_details(10), patchlevel="3.14.10")
    completed = run_cli("audit", "3.14.4", prefix, "--from", cpython_fixtures, "--offline")
    assert completed.returncode == 2, completed
    assert completed.stdout == ""
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr
    assert lines[0].startswith("cpython-verify: error: the installation is Python 3.14.10, not 3.14.4")


# -- a real Debian binary package of a newer release ----------------------------------------------------------


def _debian_sid_sources() -> str | None:
    """A deb822 sources entry for Debian sid on the host's own Debian mirror (from its apt configuration)."""
    configured = Path("/etc/apt/sources.list.d/debian.sources")
    if not configured.is_file():
        return None
    for line in configured.read_text().splitlines():
        if line.startswith("URIs:") and "security" not in line:
            mirror = line.split(None, 1)[1].strip()
            return (
                f"Types: deb\nURIs: {mirror}\nSuites: sid\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            )
    return None


def _apt_download(scratch: Path, packages: list[str]) -> list[Path]:
    """``apt-get download`` from Debian sid with a private apt state (the host's configuration is untouched)."""
    sources = _debian_sid_sources()
    if sources is None or shutil.which("apt-get") is None:
        pytest.skip("no Debian apt configuration on this host to take the mirror from")
    (scratch / "lists/partial").mkdir(parents=True)
    (scratch / "cache/archives/partial").mkdir(parents=True)
    (scratch / "sid.sources").write_text(sources)
    options = [
        "-o", f"Dir::Etc::SourceList={scratch / 'sid.sources'}", "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::State::Lists={scratch / 'lists'}", "-o", f"Dir::Cache={scratch / 'cache'}",
        "-o", "Dir::State::Status=/dev/null", "-o", "APT::Architecture=amd64", "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip
    subprocess.run(["apt-get", *options, "update"], check=True, capture_output=True, timeout=600)
    debs = scratch / "debs"
    debs.mkdir()
    subprocess.run(["apt-get", *options, "download", *packages], check=True, capture_output=True, cwd=debs, timeout=600)
    return sorted(debs.glob("*.deb"))


@pytest.mark.slow
def test_a_real_debian_package_of_a_newer_3_14_is_refused_against_3_14_4(cpython_fixtures: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="cpython-verify-apt-") as scratch:
        debs = _apt_download(Path(scratch), ["libpython3.14-minimal", "libpython3.14-stdlib"])
        versions = {deb.name.split("_")[1] for deb in debs}
        assert len(debs) == 2 and len(versions) == 1, debs
        (debian_version,) = versions
        release = _from_debian_version(debian_version)
        assert release is not None
        if release == "3.14.4":
            pytest.skip("Debian serves 3.14.4 itself: no newer release to refuse")
        completed = run_cli("audit", "3.14.4", *debs, "--from", cpython_fixtures, "--offline")
    assert completed.returncode == 2, completed
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and completed.stdout == ""
    assert f"the installation is Python {release}, not 3.14.4" in lines[0]
    assert f"cpython-verify audit {release} ..." in lines[0]
