"""The sandbox's promises, checked from inside every runner's build sandbox (verify.environments.isolation).

Each runner runs the probe on conftest's tiny rootfs tarball (the host's bash, find, sha256sum...), with
real listeners on the host's addresses, real canary files in the host's home and the cache, and the
tarball's real digest. Broken sandboxes (the shipped runners with one isolation removed) show that each
promise's check can fail. The slow test probes the real pinned environment.
"""

from __future__ import annotations

import io
import ipaddress
import shutil
import socket
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import run_cli

from verify.common.errors import OperationalError
from verify.environments import bwrap
from verify.environments.bwrap import BwrapRunner, unpacked_rootfs, unpacked_rootfs_dir
from verify.environments.interface import RootfsImage, Runner, SandboxSpec
from verify.environments.isolation import ProbeReport, describe, host_addresses, probe_sandbox
from verify.environments.podman import PodmanRunner, image_tag
from verify.environments.runners import get_runner
from verify.environments.sandbox import image_layers

PROMISES = ["network", "writes", "reads", "environment"]
EXTRA_ADDRESS = "192.0.2.77"  # TEST-NET-1 (RFC 5737): never routed anywhere


def _usable(name: str) -> Runner:
    runner = get_runner(name)
    try:
        runner.check_available()
    except OperationalError:
        pytest.skip(f"{name} is not usable on this machine")
    return runner


@pytest.fixture(scope="module")
def non_loopback_address() -> Iterator[str]:
    """A non-loopback address of this host for the probe to listen on. The fast suite runs in a network
    namespace of its own with only lo (scripts/test): there lo gets a second address, removed after."""
    existing = [address for address in host_addresses() if not ipaddress.ip_address(address).is_loopback]
    if existing:
        yield existing[0]
        return
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        pytest.skip("no non-loopback address, and interfaces other than lo: not adding one to a real network")
    subprocess.run(["ip", "addr", "add", f"{EXTRA_ADDRESS}/32", "dev", "lo"], check=True)
    try:
        assert EXTRA_ADDRESS in host_addresses()
        yield EXTRA_ADDRESS
    finally:
        subprocess.run(["ip", "addr", "del", f"{EXTRA_ADDRESS}/32", "dev", "lo"], check=False)


def _probe(runner: Runner, image: RootfsImage, tmp_path: Path) -> ProbeReport:
    cache = tmp_path / "cache"
    return probe_sandbox(runner, image, work_dir=cache / "environments" / "tmp" / "probe", cache_root=cache)


@pytest.mark.parametrize("runner_name", ["bwrap", "podman"])
def test_every_runner_keeps_every_promise(
    runner_name: str, tiny_image: RootfsImage, tmp_path: Path, non_loopback_address: str
) -> None:
    report = _probe(_usable(runner_name), tiny_image, tmp_path)
    lines = describe(report)
    assert report.kept, "\n".join(lines)
    assert [check.promise for check in report.checks] == PROMISES
    assert "127.0.0.1" in report.check("network").evidence and non_loopback_address in report.check("network").evidence
    assert "interfaces inside: lo" in report.check("network").evidence
    assert "the host's home, the cache root, another cache entry, the host's /tmp unreadable" in (
        report.check("reads").evidence
    )
    assert "writes only in /build, /out (binds)" in report.check("writes").evidence
    environment = report.check("environment").evidence
    assert f"sha256 {tiny_image.sha256[:12]}" in environment and "nothing added" in environment
    assert not list((tmp_path / "cache").rglob(".cpython-verify-probe-*")), "the canaries are removed"
    assert not list(Path.home().glob(".cpython-verify-probe-*"))


# -- broken sandboxes: each promise's check can fail ------------------------------------------------------


class _EditedBwrap(BwrapRunner):
    """The shipped bwrap runner with its command line edited: one isolation removed or one exposure added."""

    def __init__(self, edit: object) -> None:
        super().__init__()
        self._edit = edit

    def sandbox_command(self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *, interactive: bool,
                        name: str) -> list[str]:  # fmt: skip
        argv = super().sandbox_command(image, command, spec, interactive=interactive, name=name)
        return self._edit(argv)  # type: ignore[operator,no-any-return]


def _insert_after(flag: str, *extra: str) -> object:
    def edit(argv: list[str]) -> list[str]:
        index = argv.index(flag) + 1
        return [*argv[:index], *extra, *argv[index:]]

    return edit


def _without(*flags: str) -> object:
    def edit(argv: list[str]) -> list[str]:
        index = argv.index(flags[0])
        assert argv[index : index + len(flags)] == list(flags), argv
        return [*argv[:index], *argv[index + len(flags) :]]

    return edit


def _root_from(directory: Path) -> object:
    def edit(argv: list[str]) -> list[str]:
        index = argv.index("--ro-bind")
        return [*argv[: index + 1], str(directory), *argv[index + 2 :]]

    return edit


def _broken(report: ProbeReport) -> dict[str, str]:
    return {check.promise: check.evidence for check in report.checks if not check.kept}


def test_a_sandbox_sharing_the_hosts_network_breaks_the_network_promise(
    tiny_image: RootfsImage, tmp_path: Path, non_loopback_address: str
) -> None:
    _usable("bwrap")
    report = _probe(_EditedBwrap(_insert_after("--unshare-all", "--share-net")), tiny_image, tmp_path)
    broken = _broken(report)
    assert list(broken) == ["network"], describe(report)
    assert "from inside" in broken["network"] and "the host's listener got tcp" in broken["network"]
    assert f"{non_loopback_address}" in broken["network"]


def test_a_sandbox_that_sees_the_whole_cache_breaks_the_reads_promise(tiny_image: RootfsImage, tmp_path: Path) -> None:
    """A runner that binds the cache root (not just the build's own directories) exposes every entry."""
    _usable("bwrap")
    cache = str(tmp_path / "cache")
    report = _probe(_EditedBwrap(_insert_after("--clearenv", "--ro-bind", cache, cache)), tiny_image, tmp_path)
    broken = _broken(report)
    assert list(broken) == ["reads"], describe(report)
    assert "the cache root is readable" in broken["reads"] and "another cache entry is readable" in broken["reads"]
    assert f"{cache} is mounted at {cache}" in broken["reads"]


def test_a_sandbox_that_keeps_roots_capabilities_breaks_the_writes_promise(
    tiny_image: RootfsImage, tmp_path: Path
) -> None:
    """bwrap run as root keeps root's capabilities unless told otherwise: the sandbox before this check."""
    _usable("bwrap")
    report = _probe(_EditedBwrap(_without("--cap-drop", "ALL")), tiny_image, tmp_path)
    broken = _broken(report)
    assert list(broken) == ["writes"], describe(report)
    assert "CAP_SYS_ADMIN" in broken["writes"] and "CAP_DAC_READ_SEARCH" in broken["writes"]


def test_a_sandbox_with_a_writable_root_breaks_the_writes_promise(tiny_image: RootfsImage, tmp_path: Path) -> None:
    _usable("bwrap")
    root = tmp_path / "root-copy"
    # unpacked_rootfs unpacks it if no earlier test has (run alone, this test found no tree to copy).
    subprocess.run(["cp", "-a", str(unpacked_rootfs(tiny_image)), str(root)], check=True)

    def writable_root(argv: list[str]) -> list[str]:
        index = argv.index("--ro-bind")
        return [*argv[:index], "--bind", str(root), *argv[index + 2 :]]

    report = _probe(_EditedBwrap(writable_root), tiny_image, tmp_path)
    assert "/ took a write" in _broken(report)["writes"], describe(report)


def test_a_sandbox_on_a_changed_rootfs_breaks_the_environment_promise(tiny_image: RootfsImage, tmp_path: Path) -> None:
    _usable("bwrap")
    root = tmp_path / "root-copy"
    subprocess.run(["cp", "-a", str(unpacked_rootfs(tiny_image)), str(root)], check=True)
    with (root / "usr" / "bin" / "cat").open("ab") as changed:
        changed.write(b"\0")
    (root / "usr" / "bin" / "extra-tool").write_text("#!/bin/sh\n")
    report = _probe(_EditedBwrap(_root_from(root)), tiny_image, tmp_path)
    broken = _broken(report)
    assert list(broken) == ["environment"], describe(report)
    assert "inside, /usr/bin/cat differs: size" in broken["environment"] and "sha256" in broken["environment"]
    assert "inside, /usr/bin/extra-tool is not in the tarball" in broken["environment"]


def test_a_podman_sandbox_on_the_hosts_network_breaks_the_network_promise(
    tiny_image: RootfsImage, tmp_path: Path
) -> None:
    _usable("podman")

    class HostNetworkPodman(PodmanRunner):
        def sandbox_command(self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *,
                            interactive: bool, name: str) -> list[str]:  # fmt: skip
            argv = super().sandbox_command(image, command, spec, interactive=interactive, name=name)
            return [("--network=host" if word == "--network=none" else word) for word in argv]

    report = _probe(HostNetworkPodman(), tiny_image, tmp_path)
    assert list(_broken(report)) == ["network"], describe(report)


# -- the environment a runner finds in its cache is the pinned one ------------------------------------------


def _private_copy(image: RootfsImage, directory: Path, name: str) -> RootfsImage:
    """``image``'s tarball in a directory of the test's own (so its unpacked copy is the test's too)."""
    directory.mkdir()
    tarball = directory / "rootfs.tar"
    shutil.copyfile(image.tarball, tarball)
    return RootfsImage(name=name, tarball=tarball, sha256=image.sha256, lock_sha256=image.lock_sha256)


def test_a_changed_unpacked_rootfs_is_never_used_bwrap_unpacks_it_again(
    tiny_image: RootfsImage, tmp_path: Path
) -> None:
    _usable("bwrap")
    image = _private_copy(tiny_image, tmp_path / "environments", "tiny-changed")
    assert BwrapRunner().run(image, ["bash", "-c", ":"], SandboxSpec(env={"PATH": "/usr/bin"})).returncode == 0
    unpacked = unpacked_rootfs_dir(image) / "root"
    with (unpacked / "usr" / "bin" / "cat").open("ab") as changed:
        changed.write(b"#")
    (unpacked / "usr" / "bin" / "intruder").write_text("#!/bin/sh\n")
    (unpacked / "usr" / "bin" / "ls").chmod(0o4755)
    bwrap._checked_this_run.clear()  # a new run: it checks the unpacked tree before its first sandbox
    report = _probe(BwrapRunner(), image, tmp_path)
    assert report.kept, describe(report)
    assert not (unpacked / "usr" / "bin" / "intruder").exists()
    assert (unpacked / "usr" / "bin" / "ls").stat().st_mode & 0o7777 == 0o755
    visible = sorted(path.name for path in image.tarball.parent.iterdir() if not path.name.startswith("."))
    assert visible == sorted(["rootfs.tar", unpacked.parent.name]), "nothing but the tarball and its checked copy"


def test_podman_never_runs_another_image_tagged_as_the_environment(tiny_image: RootfsImage, tmp_path: Path) -> None:
    runner = _usable("podman")
    image = _private_copy(tiny_image, tmp_path / "environments", "tiny-retagged")
    tag = image_tag(image)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as archive:
        info = tarfile.TarInfo("etc/not-the-environment")
        archive.addfile(info, io.BytesIO(b""))
    subprocess.run(["podman", "import", "--quiet", str(other), tag], check=True, capture_output=True)
    try:
        report = _probe(runner, image, tmp_path)
        assert report.kept, describe(report)
        assert image_layers("podman", tag) == [f"sha256:{image.sha256}"]
    finally:
        subprocess.run(["podman", "rmi", "--force", tag], check=False, capture_output=True)


# -- the real pinned environment (slow) -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("runner_name", ["bwrap", "podman"])
def test_env_probe_of_the_real_environment_passes_for_every_runner(runner_name: str, real_image: RootfsImage) -> None:
    get_runner(runner_name).check_available()  # both must work here: a skip would hide a broken runner
    cache = real_image.tarball.parents[2]  # <cache>/environments/rootfs/<digest>.tar
    completed = run_cli("env", "probe", "bookworm-cpython", "--runner", runner_name, "--cache", cache,
                        "--no-progress", timeout=900)  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == PROMISES
    assert all(": kept: " in line for line in lines[:4]), completed.stdout
    assert lines[4] == f"PROBE PASSED: the {runner_name} sandbox of bookworm-cpython (rootfs {real_image.sha256})"
    assert "entries equal inside" in lines[3] and "the pinned one" in lines[3]
    assert completed.stderr == ""
