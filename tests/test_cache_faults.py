"""Fault injection: the real command line killed by SIGKILL at each phase, full disks, read-only and shared
caches, and damage to every kind of cache entry. After each fault the next run must finish with the right
result and ``cache check`` must find the cache intact.

The release is the tiny test project (tests/data/tinyproject) dressed as CPython 3.13.5: a real tarball
with an ``Include/patchlevel.h``, a real detached OpenPGP signature by a key made here with gpg, and a
recipe (``--recipes``) that pins that key; it is built in the tiny rootfs tarball (conftest's
``tinyproject_image``) by the shipped bwrap runner. Everything but the release's size is what a real
release meets: the source stage, the cache, the sandbox, publication, attestation and the status site.

A process is killed at a precise point by ``$CPYTHON_VERIFY_TEST_KILL_AT`` (``verify.common.faults``): it sends
itself SIGKILL there, so no handler or ``finally`` runs, and the point does not depend on timing.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import TINYPROJECT, cli_command, cli_environment, processes_mentioning, run_cli
from httpserver import FaultyServer

from verify.environments.interface import RootfsImage
from verify.manifest import read_manifest
from verify.result import ResultDir

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

VERSION = "3.13.5"
TARBALL = f"tiny-{VERSION}.tar.gz"
MTIME = 1_700_000_000
SIGKILLED = -signal.SIGKILL
KILL_AT_SETTING = "CPYTHON_VERIFY_TEST_KILL_AT"
"""verify.common.faults.KILL_AT_SETTING, spelled out: the tests name the interface, not import it."""
LOCK_TIMEOUT_SETTING = "CPYTHON_VERIFY_LOCK_TIMEOUT"


class HeldLock:
    """A lock file held with flock(2) by this test process, as cpython-verify holds its own: its pid and
    host name in the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream = path.open("w")
        fcntl.flock(self._stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._stream.write(f"{os.getpid()} {socket.gethostname()}\n")
        self._stream.flush()

    def release(self) -> None:
        if not self._stream.closed:
            self.path.unlink(missing_ok=True)
            self._stream.close()


@dataclass(frozen=True)
class TinyRelease:
    """A signed tiny release and everything a run of the CLI needs to verify and build it."""

    distfiles: Path
    """``tiny-3.13.5.tar.gz`` and its ``.asc``."""
    recipes: Path
    rootfs: Path
    """The tiny rootfs tarball (``--rootfs``)."""
    public_key: Path
    secret_home: str
    """gpg home holding the signing key (to sign more files)."""

    def source_args(self) -> list[str]:
        """Where the source comes from and which recipe judges it."""
        return ["--recipes", str(self.recipes), "--from", str(self.distfiles), "--offline"]

    def rebuild_args(self, out: Path, *extra: object) -> list[str]:
        """``rebuild 3.13.5`` of the tiny release into ``out``."""
        return ["rebuild", VERSION, *self.source_args(), "--rootfs", str(self.rootfs), "--out", str(out),
                *map(str, extra)]  # fmt: skip


def _gpg(home: str, *args: str) -> bytes:
    completed = subprocess.run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase",
                                "", *args], capture_output=True, check=True)  # fmt: skip
    return completed.stdout


def tiny_tarball(path: Path, *, sleep: float = 0) -> bytes:
    """The tiny project as ``tiny-3.13.5/`` with a ``patchlevel.h`` saying 3.13.5; returns its bytes."""
    members = {f.name: f.read_bytes() for f in sorted(TINYPROJECT.iterdir())}
    members["Include/patchlevel.h"] = f'#define PY_VERSION "{VERSION}"\n'.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"tiny-{VERSION}/{name}")
            info.size, info.mtime, info.mode = len(data), MTIME, 0o755 if name == "configure" else 0o644
            archive.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


RECIPE = """\
schema = 1
series = "3.13"
[source]
filenames = ["tiny-{{version}}.tar.gz"]
urls = []
[signatures]
publishes = ["openpgp"]
[signatures.openpgp]
fingerprints = ["{fingerprint}"]
keys = ["keys/tiny-signer.asc"]
[build]
environment = "tinyproject-test"
[build.profiles.default]
configure = ["--prefix=/opt/tiny"]
[build.profiles.slow]
description = "make sleeps, so that a second run meets the first one building"
configure = ["--prefix=/opt/tiny", "--sleep=4"]
[build.profiles.big]
description = "installs a 6 MiB file, to fill small disks"
configure = ["--prefix=/opt/tiny", "--install-bytes=6291456"]
[build.expect.build_path]
why = "the tiny project records its build directory in its sysconfigdata"
paths = ["**/_sysconfigdata_*.py"]
changes = ["content"]
categories = ["build-path"]
"""


@pytest.fixture(scope="session")
def tiny_release(tinyproject_image: RootfsImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TinyRelease]:
    work = tmp_path_factory.mktemp("tiny-release")
    home = tempfile.mkdtemp(prefix="cv-gpgf-")  # short: gpg-agent's socket lives there
    try:
        _gpg(home, "--quick-gen-key", "Tiny Release Manager <tiny@example.invalid>", "ed25519", "sign", "never")
        listing = _gpg(home, "--with-colons", "--list-keys").decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
        recipes = work / "recipes"
        (recipes / "keys").mkdir(parents=True)
        public_key = recipes / "keys" / "tiny-signer.asc"
        public_key.write_bytes(_gpg(home, "--armor", "--export", fingerprint))
        (recipes / "cpython-3.13.toml").write_text(RECIPE.format(fingerprint=fingerprint))
        distfiles = work / "distfiles"
        distfiles.mkdir()
        tiny_tarball(distfiles / TARBALL)
        (distfiles / f"{TARBALL}.asc").write_bytes(
            _gpg(home, "--armor", "--detach-sign", "--output", "-", str(distfiles / TARBALL))
        )
        yield TinyRelease(distfiles, recipes, tinyproject_image.tarball, public_key, home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def reference(tiny_release: TinyRelease, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The manifest sha256 of an undisturbed build of the tiny release (what every recovered run must give)."""
    work = tmp_path_factory.mktemp("reference")
    completed = run_cli(*tiny_release.rebuild_args(work / "out"), cache=work / "cache", cwd=work)
    assert completed.returncode == 0, completed.stderr
    return ResultDir(work / "out").read_record().manifest_sha256


def assert_one_line_error(completed: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    """Exit ``code``, one ``cpython-verify: error:`` line containing ``fragment``, no traceback."""
    combined = completed.stdout + completed.stderr
    assert completed.returncode == code, combined
    assert "Traceback" not in combined, combined
    errors = [line for line in completed.stderr.splitlines() if line.startswith("cpython-verify: error:")]
    assert len(errors) == 1 and fragment in errors[0], combined


def cache_check(cache: Path) -> dict[str, object]:
    """``cache check --json`` of ``cache``: it must pass (exit 0)."""
    completed = run_cli("cache", "check", "--cache", cache, "--json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report: dict[str, object] = json.loads(completed.stdout)
    assert report["ok"] is True
    return report


def full_check(cache: Path) -> None:
    """What ``cache check`` checks, in this process (the command itself is run by the tests about it): every
    entry of every kind intact, nothing removed, nothing in use."""
    from verify.common.cachecheck import CacheCheck
    from verify.environments.rootfs import EnvironmentCache
    from verify.rebuild.cache import RebuildCache
    from verify.source.locations.cache import Cache

    environments = EnvironmentCache.at(cache)
    kinds = [*Cache(cache).check_all(), environments.debs.check_all(), environments.check_all(),
             RebuildCache(cache / "rebuilds").check_all()]  # fmt: skip
    result = CacheCheck(tuple(kinds))
    assert result.ok and not any(kind.removed or kind.in_use for kind in kinds), result.text()


def leftovers(*directories: Path) -> list[str]:
    """Staging areas and lock files anywhere below ``directories``: what a run may never leave once it ended."""
    found = []
    for directory in directories:
        if directory.exists():
            found += [str(path) for path in directory.rglob("*") if ".staging-" in path.name
                      or path.name.endswith(".lock") or path.name.startswith("partial-")]  # fmt: skip
    return found


def assert_finished(out: Path, reference: str) -> None:
    """``out`` is a finished, intact result whose tree is the reference build's."""
    from verify.result.integrity import open_finished

    result = open_finished(out)
    assert result.read_record().manifest_sha256 == reference


# --- SIGKILL at each phase -------------------------------------------------------------------------------

REBUILD_POINTS = ["download", "verify", "rootfs-unpack", "unpack", "configure", "make", "install", "manifest",
                  "commit", "publish"]  # fmt: skip


@pytest.mark.parametrize("point", REBUILD_POINTS)
def test_a_rebuild_killed_at_each_phase_leaves_nothing_half_made_and_the_next_run_finishes(
    point: str, tiny_release: TinyRelease, reference: str, tmp_path: Path
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    with FaultyServer(tiny_release.distfiles.parent) as server:
        # The download point needs a download: the tarball comes from a mirror then, not --from. The
        # rootfs-unpack point needs a rootfs tarball not yet unpacked: a copy of its own.
        rootfs = tiny_release.rootfs
        if point == "rootfs-unpack":
            rootfs = tmp_path / "rootfs" / rootfs.name
            rootfs.parent.mkdir()
            shutil.copyfile(tiny_release.rootfs, rootfs)
        args = [*tiny_release.rebuild_args(out), "--rootfs", str(rootfs)]
        if point == "download":
            args = ["rebuild", VERSION, "--recipes", str(tiny_release.recipes), "--mirror", f"{server.url}/mirror",
                    "--rootfs", str(rootfs), "--out", str(out)]  # fmt: skip
            mirror = tiny_release.distfiles.parent / "mirror" / VERSION
            mirror.mkdir(parents=True, exist_ok=True)
            for name in (TARBALL, f"{TARBALL}.asc"):
                shutil.copyfile(tiny_release.distfiles / name, mirror / name)
        killed = run_cli(*args, cache=cache, cwd=tmp_path, env={KILL_AT_SETTING: point})
        assert killed.returncode == SIGKILLED, killed.stdout + killed.stderr
        # Nothing half-made is presented as made: no entry in the cache, no result where the result goes.
        entries = [p.name for p in (cache / "rebuilds").glob("*") if len(p.name) == 64]
        assert entries == [] or point == "publish", "no entry before the commit"
        assert not out.exists()
        rerun = run_cli(*args, cache=cache, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_finished(out, reference)
    full_check(cache)
    assert leftovers(cache, tmp_path / "out", rootfs.parent) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "nothing left beside the result"


def test_a_rebuild_killed_while_make_runs_takes_its_sandbox_down_and_the_rerun_removes_its_staging(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    """What test_cache_faults_real checks on a real 3.13.5 build (release tier), here in CI: SIGKILL (no
    handler runs) while the sandboxed make is still running (the ``slow`` profile's make sleeps), and the
    sandbox dies with the run; the next run removes the killed run's staging directory and finishes."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = tiny_release.rebuild_args(out, "--profile", "slow")
    killed = run_cli(*args, cache=cache, cwd=tmp_path, env={KILL_AT_SETTING: "make"})
    assert killed.returncode == SIGKILLED, killed.stdout + killed.stderr
    assert "make ..." in killed.stderr and "make done" not in killed.stderr, killed.stderr
    staging = sorted((cache / "rebuilds").glob(".staging-*"))
    assert staging and all(path.name.endswith(".lock") or (path / "build").is_dir() for path in staging)
    # The kernel ends the sandbox as the run dies; allow it a second to finish dying (make sleeps 4 s, so a
    # sandbox that outlived the run is still there after it).
    deadline = time.monotonic() + 1
    while processes_mentioning(str(cache)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes_mentioning(str(cache)), "the sandbox outlived the killed run"
    assert not out.exists()

    rerun = run_cli(*args, cache=cache, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert not list((cache / "rebuilds").glob(".staging-*")), "the killed run's staging directory was removed"
    full_check(cache)


def test_a_publication_killed_between_its_two_renames_loses_nothing(
    tiny_release: TinyRelease, reference: str, tmp_path: Path
) -> None:
    """The old result is renamed aside before the new one takes its place: a kill in between leaves no
    result under the name for a moment, and the next run that publishes there puts the old one back first."""
    cache, out = tmp_path / "cache", tmp_path / "out"
    assert run_cli(*tiny_release.rebuild_args(out), cache=cache, cwd=tmp_path).returncode == 0
    first = (out / "rebuild.json").read_bytes()
    killed = run_cli(*tiny_release.rebuild_args(out), cache=cache, cwd=tmp_path, env={KILL_AT_SETTING: "publish"})
    assert killed.returncode == SIGKILLED
    assert not out.exists(), "killed between the renames: the old result is aside"
    # A reader meanwhile finds no result, never a half-made one.
    assert_one_line_error(run_cli("attest", out, "--signing-key", tmp_path / "k.pem"), 2, str(out))
    rerun = run_cli(*tiny_release.rebuild_args(out), cache=cache, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_finished(out, reference)
    assert (out / "rebuild.json").read_bytes() != first or True  # replaced or restored: both are whole
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_check_killed_while_attesting_leaves_no_verdict_and_the_rerun_attests(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    from test_attest_support import openssl_keypair

    private, public = openssl_keypair(tmp_path, "rebuilder")
    cache, out = tmp_path / "cache", tmp_path / "out"
    assert run_cli(*tiny_release.rebuild_args(out), cache=cache, cwd=tmp_path).returncode == 0
    killed = run_cli("attest", out, "--signing-key", private, env={KILL_AT_SETTING: "attest"})
    assert killed.returncode == SIGKILLED
    assert not (out / "attestation.intoto.json").exists(), "no verdict signed"
    # The result itself is untouched: still finished and intact.
    from verify.result.integrity import open_finished

    open_finished(out)
    again = run_cli("attest", out, "--signing-key", private)
    assert again.returncode == 0, again.stderr
    verified = run_cli("verify-attestation", out / "attestation.intoto.json", "--public-key", public, "--result", out)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    full_check(cache)


def _attest_into(tiny_release: TinyRelease, out: Path, private: Path, directory: Path, rebuilder: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    signed = run_cli("attest", out, "--signing-key", private, "--rebuilder-id", rebuilder, "--out",
                     directory / f"{rebuilder}.intoto.json")  # fmt: skip
    assert signed.returncode == 0, signed.stderr


def _site_runs(site: Path) -> list[str]:
    """Every attestation the site shows, current rows and history."""
    status = json.loads((site / "status.json").read_text())
    return sorted(item["attestation"] for item in [*status["rows"], *status["history"]])


def test_merge_killed_between_its_two_renames_keeps_the_previous_site_and_its_history(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    from test_attest_support import openssl_keypair

    private, public = openssl_keypair(tmp_path, "rebuilder")
    out, site = tmp_path / "out", tmp_path / "site"
    assert run_cli(*tiny_release.rebuild_args(out), cache=tmp_path / "cache", cwd=tmp_path).returncode == 0
    _attest_into(tiny_release, out, private, tmp_path / "night-1", "night-1")
    _attest_into(tiny_release, out, private, tmp_path / "night-2", "night-2")
    assert run_cli("merge", tmp_path / "night-1", "--out", site, "--public-key", public).returncode == 0
    first = _site_runs(site)
    killed = run_cli(
        "merge", tmp_path / "night-2", "--out", site, "--public-key", public, env={KILL_AT_SETTING: "merge"}
    )
    assert killed.returncode == SIGKILLED
    assert not site.exists(), "killed between the renames: the previous site is aside"
    rerun = run_cli("merge", tmp_path / "night-2", "--out", site, "--public-key", public)
    assert rerun.returncode == 0, rerun.stderr
    runs = _site_runs(site)
    assert len(runs) == 2 and set(first) <= set(runs), "the first night's row is in the history, not lost"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".site")]


# --- two runs on one cache at once ---------------------------------------------------------------------


def _start(args: list[str], cache: Path, cwd: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cli_command(*args), env=cli_environment(cache=cache, extra=env), cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_rebuilds_of_one_release_on_one_cache_build_once_and_give_the_same_bytes(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = _start([*tiny_release.rebuild_args(tmp_path / "a"), "--profile", "slow"], cache, tmp_path)
    try:
        # The first run is in make (it sleeps there), holding the entry's key.
        _wait_for(lambda: any(cache.glob("rebuilds/.staging-*/logs/make.log")), "the first build to reach make")
        second = run_cli(*tiny_release.rebuild_args(tmp_path / "b"), "--profile", "slow", cache=cache, cwd=tmp_path)
        _out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "waiting for the rebuild cache entry" in second.stderr and f"pid {first.pid} on " in second.stderr
    assert "cached result" in second.stderr and "make ..." not in second.stderr, "the second run did not build"
    a, b = (ResultDir(tmp_path / name).read_record() for name in ("a", "b"))
    assert a.manifest_sha256 == b.manifest_sha256
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    full_check(cache)
    assert leftovers(cache) == []


def test_source_beside_a_rebuild_on_one_cache_both_succeed(tiny_release: TinyRelease, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    building = _start([*tiny_release.rebuild_args(tmp_path / "a"), "--profile", "slow"], cache, tmp_path)
    try:
        _wait_for(lambda: any(cache.glob("rebuilds/.staging-*/logs/make.log")), "the build to reach make")
        source = run_cli("source", VERSION, *tiny_release.source_args(), cache=cache, cwd=tmp_path)
        _out, err = building.communicate(timeout=300)
    finally:
        if building.poll() is None:
            building.kill()
    assert source.returncode == 0, source.stdout + source.stderr
    assert building.returncode == 0, err
    full_check(cache)


def test_two_merges_into_one_site_take_turns_and_lose_no_row(tiny_release: TinyRelease, tmp_path: Path) -> None:
    from test_attest_support import openssl_keypair

    private, public = openssl_keypair(tmp_path, "rebuilder")
    out, site = tmp_path / "out", tmp_path / "site"
    assert run_cli(*tiny_release.rebuild_args(out), cache=tmp_path / "cache", cwd=tmp_path).returncode == 0
    _attest_into(tiny_release, out, private, tmp_path / "job-1", "job-1")
    _attest_into(tiny_release, out, private, tmp_path / "job-2", "job-2")
    # Hold the site's lock while both start, so that they really meet; then let go.
    lock = HeldLock(tmp_path / ".site.lock")
    logs = [tmp_path / f"merge-{n}.log" for n in (1, 2)]
    merges = []
    try:
        for n, log in zip((1, 2), logs, strict=True):
            with log.open("w") as stderr:
                merges.append(subprocess.Popen(
                    cli_command("merge", tmp_path / f"job-{n}", "--out", site, "--public-key", public),
                    env=cli_environment(cache=tmp_path / "cache"), cwd=tmp_path, stdout=subprocess.DEVNULL,
                    stderr=stderr))  # fmt: skip
        _wait_for(lambda: all("waiting for the status site" in log.read_text() for log in logs), "both to wait")
        assert all(merge.poll() is None for merge in merges)
        lock.release()
        for merge in merges:
            merge.wait(timeout=120)
    finally:
        lock.release()
        for merge in merges:
            if merge.poll() is None:
                merge.kill()
    for merge, log in zip(merges, logs, strict=True):
        assert merge.returncode == 0, log.read_text()
        assert f"waiting for the status site {site}: pid {os.getpid()} on " in log.read_text()
    assert len(_site_runs(site)) == 2, "the second merge added to the first one's site"


def test_a_lock_held_too_long_is_one_line_naming_its_holder(tiny_release: TinyRelease, tmp_path: Path) -> None:
    out = tmp_path / "out"
    lock = HeldLock(tmp_path / ".out.lock")
    try:
        completed = run_cli(*tiny_release.rebuild_args(out), cache=tmp_path / "cache", cwd=tmp_path,
                            env={LOCK_TIMEOUT_SETTING: "1"})  # fmt: skip
    finally:
        lock.release()
    assert_one_line_error(completed, 2, f"gave up after 1 s waiting for the result directory {out}: pid {os.getpid()}")
    assert not out.exists()
    full_check(tmp_path / "cache")


# --- full disks and read-only caches ------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs: full long before a CPython tarball (22 MB) or the big tiny build (6 MiB) fits."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _tree(path: Path) -> dict[str, bytes | None]:
    """Every path below ``path`` with its bytes (None for directories): to see that nothing changed."""
    return {str(p.relative_to(path)): (None if p.is_dir() else p.read_bytes()) for p in sorted(path.rglob("*"))}


@NEEDS_ROOT
def test_a_full_cache_disk_while_copying_the_source_is_one_line_and_leaves_the_cache_as_it_was(
    cpython_fixtures: Path, small_disk: Path
) -> None:
    cache = small_disk / "cache"
    (cache / "names").mkdir(parents=True)  # an existing cache, with one file in it
    (cache / "names" / "README").write_text("kept\n")
    before = _tree(cache)
    completed = run_cli("source", VERSION, "--from", cpython_fixtures, "--offline", cache=cache)
    assert_one_line_error(completed, 2, "No space left on device")
    line = completed.stderr.strip()
    assert str(cache / "quarantine") in line and "needs 21.8 MiB" in line, line
    assert _tree(cache) == before, "the cache is as it was: no quarantine, no partial file"


@NEEDS_ROOT
def test_a_full_cache_disk_during_the_build_is_one_line_and_leaves_no_staging(
    tiny_release: TinyRelease, small_disk: Path, tmp_path: Path
) -> None:
    cache = small_disk / "cache"
    completed = run_cli(*tiny_release.rebuild_args(tmp_path / "out"), "--profile", "big", cache=cache, cwd=tmp_path)
    assert_one_line_error(completed, 2, "the install phase failed (exit status 2): no space left on device")
    assert str(cache / "rebuilds") in completed.stderr
    assert not (tmp_path / "out").exists()
    assert leftovers(cache) == [] and not [p for p in (cache / "rebuilds").iterdir() if len(p.name) == 64]
    full_check(cache)


@NEEDS_ROOT
def test_a_full_output_disk_is_one_line_and_leaves_neither_output_nor_damage(
    tiny_release: TinyRelease, small_disk: Path, tmp_path: Path
) -> None:
    cache, out = tmp_path / "cache", small_disk / "out"
    completed = run_cli(*tiny_release.rebuild_args(out), "--profile", "big", cache=cache, cwd=tmp_path)
    assert_one_line_error(completed, 2, "No space left on device (publishing the result of CPython 3.13.5 big")
    assert "free there" in completed.stderr
    assert list(small_disk.iterdir()) == [], "no result, no staging, no lock file"
    report = cache_check(cache)
    assert any(kind["kind"] == "rebuilds" and kind["checked"] == 1 for kind in report["kinds"])  # type: ignore[index, union-attr]


@pytest.fixture
def cache_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs for a cache, which the test can make read-only (``mount -o remount,ro``)."""
    mount_point = tmp_path / "cache"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _remount(mount_point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)


@NEEDS_ROOT
def test_a_read_only_cache_serves_its_intact_entries_and_refuses_to_build(
    tiny_release: TinyRelease, reference: str, cache_disk: Path, tmp_path: Path
) -> None:
    cache = cache_disk
    assert run_cli(*tiny_release.rebuild_args(tmp_path / "first"), cache=cache, cwd=tmp_path).returncode == 0
    before = _tree(cache)
    _remount(cache, "ro")
    served = run_cli(*tiny_release.rebuild_args(tmp_path / "second"), cache=cache, cwd=tmp_path)
    assert served.returncode == 0, served.stderr
    assert "cached result" in served.stderr
    assert_finished(tmp_path / "second", reference)
    checked = run_cli("cache", "check", "--cache", cache)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A damaged entry in a read-only cache is never used, and it cannot be removed: one line, exit 2.
    _remount(cache, "rw")
    entry = next(p for p in (cache / "rebuilds").iterdir() if len(p.name) == 64)
    hello = entry / "root" / "opt" / "tiny" / "bin" / "hello"
    hello.write_bytes(hello.read_bytes() + b"\n")
    _remount(cache, "ro")
    refused = run_cli(*tiny_release.rebuild_args(tmp_path / "third"), cache=cache, cwd=tmp_path)
    assert_one_line_error(refused, 2, "is read-only: it serves the builds it holds, and it holds no intact entry")
    assert not (tmp_path / "third").exists()
    damaged = run_cli("cache", "check", "--cache", cache)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert "not removed: the cache is read-only" in damaged.stdout
    _remount(cache, "rw")
    assert set(_tree(cache)) == set(before), "nothing was added or removed while it was read-only"


# --- damage to each kind of cache entry -----------------------------------------------------------------


def _rewrite_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}, indent=2, sort_keys=True) + "\n")


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def _append(path: Path, text: str) -> None:
    with path.open("a") as stream:
        stream.write(text)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


TREE = "root/opt/tiny"
ENTRY_DAMAGE = {
    "a line appended to an installed file": lambda e: _append(e / TREE / "lib/tiny/_sysconfigdata_tiny.py",
                                                              "import os; os.system('id')\n"),
    "one bit flipped in the installed binary": lambda e: _flip(e / TREE / "bin/hello"),
    "an installed file truncated": lambda e: _truncate(e / TREE / "bin/hello"),
    "an installed file removed": lambda e: (e / TREE / "share/tiny/build-info.txt").unlink(),
    "a file added to the install tree": lambda e: (e / TREE / "bin/extra").write_text("#!/bin/sh\n"),
    "an installed file made setuid": lambda e: (e / TREE / "bin/hello").chmod(0o4755),
    "a build log edited": lambda e: _append(e / "logs/make.log", "all good\n"),
    "a build log added": lambda e: (e / "logs/extra.log").write_text("written later\n"),
    "the source verdict edited": lambda e: _rewrite_json(e / "source-verdict.json", version="3.13.6"),
    "the record edited": lambda e: _rewrite_json(e / "rebuild.json", pip="edited"),
    "the record truncated": lambda e: _truncate(e / "rebuild.json"),
    "the manifest rewritten to match an edited tree": lambda e: (
        (e / TREE / "bin/extra").write_text("#!/bin/sh\n"),
        __import__("verify.rebuild.outputs", fromlist=["x"]).write_manifest_for(
            e / "root", read_manifest(e / "manifest.json").inputs, e / "manifest.json")),
    "the seal removed (killed before sealing, or an older version's entry)": lambda e: (e / "seal.json").unlink(),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(ENTRY_DAMAGE))
def test_a_damaged_rebuild_entry_is_removed_noted_and_built_again_never_served(
    damage: str, tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    from test_rebuild import CountingRunner, build_in, make_tarball

    from verify.rebuild import RebuildCache

    tiny, cache = make_tarball(tmp_path / "tiny-1.0.tar.gz"), RebuildCache(tmp_path / "cache")
    first = build_in(tinyproject_image, tiny, cache)
    genuine = first.record.manifest_sha256
    ENTRY_DAMAGE[damage](first.result_dir)
    runner = CountingRunner()
    again = build_in(tinyproject_image, tiny, RebuildCache(tmp_path / "cache"), runner=runner)
    assert not again.from_cache and len(runner.commands) == 3, "built again"
    assert len(again.notes) == 1 and "failed its check and was removed, never used" in again.notes[0]
    assert again.record.manifest_sha256 == genuine
    from verify.result.integrity import check_result

    assert check_result(again.result, require_seal=True) == []


def test_the_issues_tampered_rebuild_is_noted_in_the_output_and_the_result(
    tiny_release: TinyRelease, reference: str, tmp_path: Path
) -> None:
    """The reported case, through the command line: a line appended to an installed ``.py`` in the cache."""
    cache = tmp_path / "cache"
    assert run_cli(*tiny_release.rebuild_args(tmp_path / "first"), cache=cache, cwd=tmp_path).returncode == 0
    entry = next(p for p in (cache / "rebuilds").iterdir() if len(p.name) == 64)
    _append(entry / TREE / "lib/tiny/_sysconfigdata_tiny.py", "import os; os.system('id')\n")
    again = run_cli(*tiny_release.rebuild_args(tmp_path / "second"), cache=cache, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    notes = [line for line in again.stdout.splitlines() if line.startswith("note: the cached rebuild")]
    assert len(notes) == 1 and "never used: root/opt/tiny/lib/tiny/_sysconfigdata_tiny.py: " in notes[0], again.stdout
    assert "configure ..." in again.stderr, "built again"
    record = ResultDir(tmp_path / "second").read_record()
    assert record.manifest_sha256 == reference and len(record.cache_notes) == 1
    assert_finished(tmp_path / "second", reference)
    assert b"os.system" not in (tmp_path / "second" / TREE / "lib/tiny/_sysconfigdata_tiny.py").read_bytes()


def test_a_truncated_pgo_profile_in_the_cache_is_detected_and_the_build_redone(
    tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    from test_rebuild import CountingRunner, build_in, make_tarball

    from verify.rebuild import RebuildCache

    tiny, cache = make_tarball(tmp_path / "tiny-1.0.tar.gz"), RebuildCache(tmp_path / "cache")
    first = build_in(tinyproject_image, tiny, cache, "--enable-optimizations")
    profile = first.result.pgo_profile_path
    assert profile.is_file()
    _truncate(profile)
    report = RebuildCache(tmp_path / "cache").check_all()
    assert report.checked == 1 and len(report.damaged) == 1 and "pgo-profile.tar" in report.damaged[0][1]
    assert not first.result_dir.exists(), "removed"
    runner = CountingRunner()
    again = build_in(tinyproject_image, tiny, RebuildCache(tmp_path / "cache"), "--enable-optimizations",
                     runner=runner)  # fmt: skip
    assert not again.from_cache and again.record.pgo_profile is not None
    from verify.result.integrity import check_result

    assert check_result(again.result, require_seal=True) == []


@pytest.mark.parametrize("damage", ["truncated", "one bit flipped"])
def test_a_damaged_rootfs_tarball_in_the_cache_is_rebuilt_and_noted(damage: str, tmp_path: Path) -> None:
    from test_env_rootfs import GOOD, CountingBuilder, _write_lock

    from verify.environments.rootfs import EnvironmentCache, ensure_environment

    _write_lock(tmp_path / "locks", GOOD)
    builder = CountingBuilder(GOOD)
    image = ensure_environment("demo", cache_dir=tmp_path / "cache", locks_dir=tmp_path / "locks", builder=builder)
    (_truncate if damage == "truncated" else _flip)(image.tarball)
    check = EnvironmentCache.at(tmp_path / "cache").check_all()
    assert len(check.damaged) == 1 and not image.tarball.exists()
    rebuilt = ensure_environment("demo", cache_dir=tmp_path / "cache", locks_dir=tmp_path / "locks", builder=builder)
    assert builder.calls == 2 and rebuilt.tarball.read_bytes() == GOOD and rebuilt.notes == ()
    _flip(rebuilt.tarball)
    noted = ensure_environment("demo", cache_dir=tmp_path / "cache", locks_dir=tmp_path / "locks", builder=builder)
    assert builder.calls == 3 and noted.tarball.read_bytes() == GOOD
    assert len(noted.notes) == 1 and "damaged" in noted.notes[0]


def test_a_rootfs_build_killed_midway_leaves_no_tarball_and_the_next_build_finishes(tmp_path: Path) -> None:
    """mmdebstrap itself needs the Debian mirror (slow tests); here the builder writes half a tarball and the
    process is killed right after it, at the rootfs-build point, exactly where an mmdebstrap build would be."""
    from test_env_rootfs import GOOD, _write_lock

    _write_lock(tmp_path / "locks", GOOD)
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from verify.environments.rootfs import ensure_environment
        def half(lock, path):
            path.write_bytes({GOOD!r}[:10])
        ensure_environment("demo", cache_dir=Path({str(tmp_path / "cache")!r}),
                           locks_dir=Path({str(tmp_path / "locks")!r}), builder=half)
    """)  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ, KILL_AT_SETTING: "rootfs-build"},
                            cwd=Path(__file__).parent.parent, capture_output=True, text=True, check=False)  # fmt: skip
    assert killed.returncode == SIGKILLED, killed.stderr
    rootfs_dir = tmp_path / "cache" / "environments" / "rootfs"
    assert not [p for p in rootfs_dir.iterdir() if p.name.endswith(".tar")], "no tarball under a digest"
    assert leftovers(rootfs_dir), "the killed build's staging file is there, unheld"
    from test_env_rootfs import CountingBuilder

    from verify.environments.rootfs import ensure_environment

    image = ensure_environment("demo", cache_dir=tmp_path / "cache", locks_dir=tmp_path / "locks",
                               builder=CountingBuilder(GOOD))  # fmt: skip
    assert image.tarball.read_bytes() == GOOD
    assert sorted(p.name for p in rootfs_dir.iterdir()) == [image.tarball.name], "the staging file was swept"
    full_check(tmp_path / "cache")


def test_a_damaged_unpacked_rootfs_is_unpacked_again_before_any_sandbox_uses_it(
    tinyproject_image: RootfsImage, tmp_path: Path
) -> None:
    from dataclasses import replace

    from verify.environments import bwrap

    tarball = tmp_path / tinyproject_image.tarball.name
    shutil.copyfile(tinyproject_image.tarball, tarball)
    image = replace(tinyproject_image, tarball=tarball)
    tree = bwrap.unpacked_rootfs(image)
    shell = tree / "usr" / "bin" / "sh"
    genuine = shell.read_bytes()
    _flip(shell, 100)
    bwrap._checked_this_run.clear()  # a new run: it checks the unpacked tree before its first sandbox
    assert bwrap.unpacked_rootfs(image) == tree
    assert shell.read_bytes() == genuine, "unpacked again from the verified tarball"
    _truncate(shell)
    assert bwrap.check_unpacked_rootfs(tree.parent, image.sha256), "a truncation is found too"


def test_cache_check_finds_and_removes_damage_in_every_kind_of_entry(tiny_release: TinyRelease, tmp_path: Path) -> None:
    """Downloads, name records, rootfs tarball and its unpacked tree, a rebuild entry: each damaged once."""
    from test_env_lock import build_deb

    cache = tmp_path / "cache"
    rootfs_dir = cache / "environments" / "rootfs"
    rootfs_dir.mkdir(parents=True)
    rootfs = rootfs_dir / f"{hashlib.sha256(tiny_release.rootfs.read_bytes()).hexdigest()}.tar"
    shutil.copyfile(tiny_release.rootfs, rootfs)  # a cached rootfs tarball, named by its digest
    built = run_cli(*tiny_release.rebuild_args(tmp_path / "out"), "--rootfs", rootfs, cache=cache, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    deb = build_deb(tmp_path, "demo-tool", "1.0-1")
    debs = cache / "environments" / "debs"
    debs.mkdir(parents=True)
    deb_entry = debs / f"{hashlib.sha256(deb.read_bytes()).hexdigest()}.deb"
    shutil.copyfile(deb, deb_entry)
    assert cache_check(cache)["checked"] == 8  # 2 downloads, 2 names, 1 .deb, the rootfs tarball and tree, 1 rebuild
    download = next((cache / "sha256").iterdir())
    _flip(download)
    (cache / "names" / "garbage").write_text("not a digest\n")
    _truncate(deb_entry)
    unpacked = rootfs.with_name(rootfs.name.replace(".tar", ".unpacked"))
    _flip(unpacked / "root" / "usr" / "bin" / "sh", 200)
    entry = next(p for p in (cache / "rebuilds").iterdir() if len(p.name) == 64)
    (entry / TREE / "bin" / "hello").chmod(0o777)
    completed = run_cli("cache", "check", "--cache", cache, "--json")
    assert completed.returncode == 1, completed.stdout + completed.stderr
    report = json.loads(completed.stdout)
    damaged = {kind["kind"]: [item["path"] for item in kind["damaged"]] for kind in report["kinds"]}
    assert damaged == {"downloads": [str(download)], "names": [str(cache / "names" / "garbage")],
                       "quarantine": [], "debs": [str(deb_entry)], "rootfs": [str(unpacked)],
                       "rebuilds": [str(entry)]}  # fmt: skip
    assert not download.exists() and not unpacked.exists() and not entry.exists()
    assert cache_check(cache)["ok"] is True, "what failed is gone; the rest is intact"
    text = run_cli("cache", "check", "--cache", cache)
    assert text.returncode == 0 and "CACHE OK" in text.stdout


# --- readers never take an unfinished or damaged result for a finished one ----------------------------


@pytest.fixture(scope="module")
def finished(tiny_release: TinyRelease, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished result of the tiny release (tests change copies of it)."""
    work = tmp_path_factory.mktemp("finished")
    out = work / "finished"
    assert run_cli(*tiny_release.rebuild_args(out), cache=work / "cache", cwd=work).returncode == 0
    return out


UNFINISHED = {
    "killed while copying: half the tree": lambda r: [p.unlink() for p in sorted((r / TREE / "bin").iterdir())[:1]],
    "killed before the record was written": lambda r: (r / "rebuild.json").unlink(),
    "an installed file truncated": lambda r: _truncate(r / TREE / "bin" / "hello"),
    "the manifest edited": lambda r: (r / "manifest.json").write_bytes((r / "manifest.json").read_bytes()[:-3] + b"\n"),
    "a log changed after sealing": lambda r: (r / "logs" / "make.log").write_text("rewritten\n"),
}  # fmt: skip


@pytest.mark.parametrize("state", list(UNFINISHED))
def test_attest_compare_and_peers_refuse_a_result_that_is_unfinished_or_damaged(
    state: str, finished: Path, tmp_path: Path
) -> None:
    from test_attest_support import openssl_keypair

    private, public = openssl_keypair(tmp_path, "rebuilder")
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy, symlinks=True)
    UNFINISHED[state](copy)
    attest = run_cli("attest", copy, "--signing-key", private)
    assert attest.returncode == 2 and "Traceback" not in attest.stderr, attest.stderr
    assert not (copy / "attestation.intoto.json").exists()
    compare = run_cli("compare", copy, finished)
    assert compare.returncode == 2 and "Traceback" not in compare.stderr, compare.stdout + compare.stderr
    assert str(copy) in compare.stderr
    peers = run_cli("peers", VERSION, "--ours", copy, "--attestation", tmp_path / "none.intoto.json",
                    "--public-key", public)  # fmt: skip
    assert peers.returncode == 2 and str(copy) in peers.stderr, peers.stdout + peers.stderr


def test_two_checks_of_one_release_into_one_result_with_a_new_key_both_pass(
    tiny_release: TinyRelease, reference: str, tmp_path: Path
) -> None:
    """The same command twice at once (a retried CI job beside the first attempt): one cache, one ``--out``,
    one key to create. Both pass, and what is left is one consistent, attested result."""
    cache, out, key = tmp_path / "cache", tmp_path / "out", tmp_path / "keys" / "rebuilder.pem"
    args = ["check", VERSION, *tiny_release.source_args(), "--rootfs", str(tiny_release.rootfs), "--out", str(out),
            "--signing-key", str(key), "--create-key", "--json"]  # fmt: skip
    runs = [_start(args, cache, tmp_path) for _ in range(2)]
    try:
        results = [run.communicate(timeout=600) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    for run, (stdout, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stdout + stderr
        assert json.loads(stdout)["ok"] is True
    assert_finished(out, reference)
    check = json.loads((out / "check.json").read_text())
    assert check["ok"] is True and check["rebuild"]["manifest_sha256"] == reference
    verified = run_cli(
        "verify-attestation", out / "attestation.intoto.json", "--public-key", f"{key}.pub", "--result", out
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    full_check(cache)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
