"""Ctrl-C, SIGTERM and SIGHUP sent to the real CLI in each phase: one line, 128 + signal, nothing left.

The release is the tiny project (tests/data/tinyproject) as a real signed release: a tarball with an
``Include/patchlevel.h``, signed with a key made here by real gpg and pinned by a recipe in a recipes
directory of the test's own, so the whole chain runs (source verification, unpack, sandboxed
configure / make / install, manifest, compare) on conftest's tiny rootfs in seconds. The recipe's
profiles make one phase sleep, so a signal reliably lands inside that phase: the sleeping command is
proved to be running in the sandbox (its log line is read) before the signal is sent.

After every interrupt: the exit status is 128 + the signal, stderr is exactly one line without a
traceback, no process of the run is left (no bwrap, no container, no make or sleep), no staging
directory, quarantine or partial result is left, and the cache then serves a normal run.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
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
from conftest import TINYPROJECT, cli_command, cli_environment, processes_mentioning
from httpserver import Fault, FaultyServer

from verify.environments.interface import RootfsImage

VERSION = "3.99.1"
SLEEP = "47.31"
"""How long the sleeping phase sleeps: an unusual number, so its processes can be found by their argv."""
NEEDS_BWRAP = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}

pytestmark = NEEDS_BWRAP


@dataclass(frozen=True)
class TinyRelease:
    """A signed tiny release and everything the CLI needs to verify and rebuild it offline."""

    recipes: Path
    distfiles: Path
    rootfs: Path

    def options(self, cache: Path, out: Path, *extra: object) -> list[object]:
        """``rebuild``'s options for this release (add ``--from`` or ``--mirror``)."""
        return [VERSION, "--recipes", self.recipes, "--rootfs", self.rootfs, "--cache", cache, "--out", out,
                "--quiet", *extra]  # fmt: skip


def _gpg(home: str, *args: str) -> bytes:
    completed = subprocess.run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase",
                                "", *args], capture_output=True, check=True)  # fmt: skip
    return completed.stdout


def _recipe(fingerprint: str) -> str:
    profiles = "".join(
        f'[build.profiles.sleep-{phase}]\nconfigure = ["--prefix=/opt/tiny", "--sleep={SLEEP}", "--sleep-in={phase}"]\n'
        for phase in ("configure", "make", "install")
    )
    return (
        textwrap.dedent(
            f"""\
        schema = 1
        series = "3.99"
        [source]
        filenames = ["tiny-{{version}}.tar.gz"]
        urls = []
        [signatures]
        publishes = ["openpgp"]
        [signatures.openpgp]
        fingerprints = ["{fingerprint}"]
        keys = ["keys/tiny-release.asc"]
        [build]
        environment = "tinyproject-test"
        [build.profiles.default]
        configure = ["--prefix=/opt/tiny"]
        """
        )
        + profiles
    )


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory: pytest.TempPathFactory, tinyproject_image: RootfsImage) -> Iterator[TinyRelease]:
    work = tmp_path_factory.mktemp("tiny-release")
    recipes, distfiles = work / "recipes", work / "distfiles"
    (recipes / "keys").mkdir(parents=True)
    distfiles.mkdir()
    tarball = distfiles / f"tiny-{VERSION}.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        members = {path.name: path.read_bytes() for path in sorted(TINYPROJECT.iterdir())}
        members["Include/patchlevel.h"] = f'#define PY_VERSION "{VERSION}"\n'.encode()
        for name, data in members.items():
            info = tarfile.TarInfo(f"tiny-{VERSION}/{name}")
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o755 if name == "configure" else 0o644
            archive.addfile(info, io.BytesIO(data))
    home = tempfile.mkdtemp(prefix="cv-gpgi-")  # short: gpg-agent's socket lives in the home directory
    try:
        _gpg(home, "--quick-gen-key", "Tiny Release <tiny@example.invalid>", "ed25519", "sign", "never")
        listing = _gpg(home, "--with-colons", "--list-keys").decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr"))
        (recipes / "keys" / "tiny-release.asc").write_bytes(_gpg(home, "--armor", "--export", fingerprint))
        _gpg(home, "--armor", "--detach-sign", "--output", f"{tarball}.asc", str(tarball))
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    (recipes / "cpython-3.99.toml").write_text(_recipe(fingerprint))
    yield TinyRelease(recipes, distfiles, tinyproject_image.tarball)


# -- running and interrupting the CLI ----------------------------------------------------------------


def _default_signal_dispositions() -> None:
    # The CLI keeps a signal its caller ignores (a background job's SIGINT, nohup's SIGHUP), as it
    # should; a test suite started that way must not pass that on to the CLI under test.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start(*args: object) -> subprocess.Popen[str]:
    # A fresh session: a signal the test sends reaches the CLI alone, as `kill` from a CI runner does
    # (a terminal's Ctrl-C would reach its children too; the CLI must not depend on that).
    return subprocess.Popen(cli_command(*args), env=cli_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_signal_dispositions)  # fmt: skip


def _wait_until(condition: object, child: subprocess.Popen[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if child.poll() is not None:
            raise AssertionError(f"the CLI ended (status {child.returncode}) before {what}: {child.stderr.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.05)


def _handles_signals(child: subprocess.Popen[str]) -> bool:
    """True once the CLI catches SIGTERM (``SigCgt`` in /proc): its interrupt handling is installed.
    Before that, the interpreter is still starting and Python's own defaults apply."""
    try:
        status = Path(f"/proc/{child.pid}/status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def _interrupt(child: subprocess.Popen[str], signum: signal.Signals) -> tuple[int, str, float]:
    """Send ``signum`` to the CLI alone; its exit status, stderr, and seconds until it ended."""
    sent = time.monotonic()
    child.send_signal(signum)
    try:
        _, stderr = child.communicate(timeout=120)  # a bound, not a speed claim
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode, stderr, time.monotonic() - sent


def _containers_of(pid: int) -> list[str]:
    if shutil.which("podman") is None:
        return []
    listed = subprocess.run(["podman", "ps", "--all", "--format", "{{.Names}}", "--filter",
                             f"name=cpython-verify-{pid}-"], capture_output=True, text=True, check=False)  # fmt: skip
    return listed.stdout.split()


def _leftovers(cache: Path) -> list[str]:
    """What an interrupted run must never leave in the cache: staging directories and quarantines."""
    left = [f"rebuilds/{path.name}" for path in cache.glob("rebuilds/.staging-*")]
    return left + [f"quarantine/{path.name}" for path in cache.glob("quarantine/run-*")]


def _rebuild_entries(cache: Path) -> list[str]:
    """The rebuild cache's entries (its hidden files, staging or locks, aside)."""
    rebuilds = cache / "rebuilds"
    if not rebuilds.is_dir():
        return []
    return sorted(path.name for path in rebuilds.iterdir() if not path.name.startswith("."))


def assert_clean_exit(status: int, stderr: str, signum: signal.Signals) -> None:
    assert status == EXIT[signum], (status, stderr)
    assert stderr == f"cpython-verify: interrupted by {signum.name}\n", stderr


def _runner_usable(name: str) -> bool:
    from verify.common.errors import OperationalError
    from verify.environments.runners import get_runner

    try:
        get_runner(name).check_available()
    except OperationalError:
        return False
    return True


# -- the mechanism ---------------------------------------------------------------------------------------


def test_an_interrupted_child_and_its_whole_group_are_stopped_even_if_they_ignore_sigterm(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, threading, time
        from verify.common import interrupts
        interrupts.install()
        started = time.monotonic()  # before the timer starts, so that 1.0 s + 1.5 s of grace is a lower bound
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        try:
            interrupts.run_child(["sh", "-c", "trap '' TERM; sleep 36.91 & sleep 36.92; wait"], grace=1.5)
        except interrupts.Interrupted as interrupt:
            print(interrupt.name, interrupt.exit_code, time.monotonic() - started)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                               cwd=Path(__file__).parent.parent, check=False,
                               preexec_fn=_default_signal_dispositions)  # fmt: skip
    name, code, seconds = completed.stdout.split()
    assert (name, code) == ("SIGTERM", "143"), completed.stderr
    assert 2.5 <= float(seconds) < 20, "SIGTERM to the group, 1.5 s of grace, then SIGKILL to the group"
    assert processes_mentioning("36.91", "36.92") == [], "the child's group outlived the interrupt"


def test_the_cli_run_in_process_leaves_its_callers_signal_handlers_as_they_were(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from verify.cli import main

    before = [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)]
    with pytest.raises(SystemExit):
        main(["--version"])
    assert [signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)] == before


# -- the build phases, in the sandbox ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("runner", "phase", "signum"),
    [
        ("bwrap", "configure", signal.SIGINT),
        ("bwrap", "configure", signal.SIGTERM),
        ("bwrap", "make", signal.SIGINT),
        ("bwrap", "make", signal.SIGTERM),
        ("bwrap", "make", signal.SIGHUP),
        ("bwrap", "install", signal.SIGINT),
        ("bwrap", "install", signal.SIGTERM),
        ("podman", "make", signal.SIGINT),
        ("podman", "install", signal.SIGTERM),
    ],
)
def test_interrupt_in_a_build_phase_stops_the_sandbox_and_leaves_nothing(
    tiny_release: TinyRelease, tmp_path: Path, runner: str, phase: str, signum: signal.Signals
) -> None:
    if not _runner_usable(runner):
        pytest.skip(f"{runner} is not usable on this machine")
    cache, out = tmp_path / "cache", tmp_path / "out"
    child = _start("rebuild", *tiny_release.options(cache, out, "--from", tiny_release.distfiles, "--offline",
                                                   "--profile", f"sleep-{phase}", "--runner", runner))  # fmt: skip

    def sleeping_in_the_sandbox() -> bool:
        return any(f"sleeping {SLEEP} s" in log.read_text(errors="replace")
                   for log in cache.glob(f"rebuilds/.staging-*/logs/{phase}.log"))  # fmt: skip

    _wait_until(sleeping_in_the_sandbox, child, f"{phase} sleeping in the sandbox")
    staging = [str(path) for path in cache.glob("rebuilds/.staging-*")]
    status, stderr, _ = _interrupt(child, signum)
    assert_clean_exit(status, stderr, signum)
    assert processes_mentioning(SLEEP, *staging) == [], "a process of the interrupted build is still running"
    assert _containers_of(child.pid) == [], "the interrupted build's container is still there"
    assert _leftovers(cache) == []
    assert _rebuild_entries(cache) == [], "no entry either"
    assert not out.exists(), "no partial result"
    # The cache serves the next run: the release rebuilds with its verified source from the cache alone.
    empty = tmp_path / "empty"
    empty.mkdir()
    again = subprocess.run(cli_command("rebuild", *tiny_release.options(cache, out, "--from", empty, "--offline",
                                                                        "--runner", runner)),
                           env=cli_environment(), capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert (out / "manifest.json").is_file() and (out / "root" / "opt" / "tiny" / "bin" / "hello").is_file()


# -- downloading --------------------------------------------------------------------------------------


def test_interrupt_while_a_mirror_drips_the_tarball_leaves_no_quarantine(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    cache, out = tmp_path / "cache", tmp_path / "out"
    path = f"/mirror/{VERSION}/tiny-{VERSION}.tar.gz"
    with FaultyServer() as server:
        server.add(path, (tiny_release.distfiles / f"tiny-{VERSION}.tar.gz").read_bytes())
        server.always(path, Fault(drip=0.05))  # minutes for the whole tarball
        child = _start("rebuild", *tiny_release.options(cache, out, "--mirror", server.url + "/mirror"))
        _wait_until(lambda: server.requests_for(path) and any(cache.glob("quarantine/run-*/*")), child,
                    "the download under way in the quarantine")  # fmt: skip
        time.sleep(0.5)
        status, stderr, seconds = _interrupt(child, signal.SIGTERM)
    assert_clean_exit(status, stderr, signal.SIGTERM)
    assert seconds < 10, seconds
    assert _leftovers(cache) == []
    assert not (cache / "sha256").exists() or list((cache / "sha256").iterdir()) == [], "nothing unverified kept"
    assert not out.exists()


# -- anywhere in a whole run ---------------------------------------------------------------------------


def test_interrupt_at_any_moment_of_a_run_twice_leaves_a_complete_result_or_nothing(
    tiny_release: TinyRelease, tmp_path: Path
) -> None:
    """``rebuild --twice`` (verify, unpack, configure, make, install, manifest, twice, then compare),
    interrupted at moments spread over a whole run: each time, either it had finished (exit 0, a
    complete result) or it stops cleanly with nothing left behind. No phase is special."""
    cache = tmp_path / "cache"
    arguments = ["rebuild", *tiny_release.options(cache, tmp_path / "reference", "--from", tiny_release.distfiles,
                                                  "--offline", "--twice", "--vary", "hostname", "--force")]  # fmt: skip
    started = time.monotonic()
    reference = subprocess.run(cli_command(*arguments), env=cli_environment(), capture_output=True, text=True,
                               timeout=300, check=False)  # fmt: skip
    whole_run = time.monotonic() - started
    assert reference.returncode == 0, reference.stderr
    moments = 8
    seen: set[int] = set()
    for attempt in range(moments):
        out = tmp_path / f"out{attempt}"
        shutil.rmtree(cache / "rebuilds", ignore_errors=True)
        child = _start(*[out if value == tmp_path / "reference" else value for value in arguments])
        _wait_until(lambda: _handles_signals(child), child, "the CLI's interrupt handling")  # noqa: B023
        moment = whole_run * attempt / moments
        time.sleep(moment)
        status, stderr, _ = _interrupt(child, signal.SIGINT)
        seen.add(status)
        if status == 0:
            assert (out / "manifest.json").is_file() and (out / "rebuild.json").is_file()
            continue
        assert_clean_exit(status, stderr, signal.SIGINT)
        assert not out.exists(), f"a partial result after an interrupt at {moment:.1f} s"
        assert _leftovers(cache) == [], moment
        assert processes_mentioning(str(cache)) == [], moment
    assert EXIT[signal.SIGINT] in seen, "no moment fell inside the run: the test proved nothing"


# -- building the pinned rootfs (slow: the real environment, mmdebstrap) --------------------------------


def _seed_debs(cache: Path) -> None:
    """Hard-link the pinned .deb files other caches on this machine hold (the test then needs no
    download); whatever is missing, ``env build`` downloads as usual."""
    debs = cache / "environments" / "debs"
    debs.mkdir(parents=True)
    from verify.common.fsutil import cache_root

    candidates = [Path(os.environ["CPYTHON_VERIFY_TEST_CACHE"])] if os.environ.get("CPYTHON_VERIFY_TEST_CACHE") else []
    for source in [*candidates, cache_root()]:
        for deb in source.glob("environments/debs/*.deb"):
            if not (debs / deb.name).exists():
                try:
                    os.link(deb, debs / deb.name)
                except OSError:
                    shutil.copyfile(deb, debs / deb.name)


@pytest.mark.slow
def test_interrupt_while_mmdebstrap_builds_the_rootfs_stops_it_and_leaves_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _seed_debs(cache)
    before = set(Path("/tmp").glob("cpython-verify-rootfs-*"))
    child = _start("env", "build", "bookworm-cpython", "--cache", cache, "--quiet")

    def mmdebstrap_running() -> bool:
        mine = set(Path("/tmp").glob("cpython-verify-rootfs-*")) - before
        return any(processes_mentioning(f"{work}/mmdebstrap.") for work in mine)

    _wait_until(mmdebstrap_running, child, "mmdebstrap installing packages", timeout=600)
    [work] = set(Path("/tmp").glob("cpython-verify-rootfs-*")) - before
    time.sleep(5)  # into apt and dpkg's work in the chroot
    status, stderr, seconds = _interrupt(child, signal.SIGTERM)
    assert_clean_exit(status, stderr, signal.SIGTERM)
    assert processes_mentioning(str(work), str(cache)) == [], "mmdebstrap or its apt/dpkg outlived the build"
    assert not work.exists(), "the build's scratch directory (its chroot, its repository) is left"
    assert str(work) not in Path("/proc/self/mountinfo").read_text(), "a mount of the chroot is left"
    assert list((cache / "environments" / "rootfs").glob("*")) == [], "a partial rootfs tarball is left"
    assert seconds < 60, seconds
    # The cache is as usable as before: every pinned .deb is still there and passes its digest check
    # (a second build from them is what every slow rebuild test does; not repeated here, to save minutes).
    from verify.environments.fetch import DebCache
    from verify.environments.lock import load_lock

    debs = DebCache(cache / "environments" / "debs")
    assert all(debs.lookup(package) is not None for package in load_lock("bookworm-cpython").packages)
