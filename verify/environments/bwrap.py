"""The bubblewrap runner: the default, and the lightest sandbox (no daemon, no image store).

bwrap needs a directory, not a tarball, so the verified tarball is unpacked once into
``<digest>.unpacked/root/`` beside it (with the tree's manifest), checked against that manifest once per
run, and bound read-only as ``/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from verify.common import faults, progress
from verify.common.errors import OperationalError, ToolMissing, VerificationFailed
from verify.common.fsutil import sha256_file
from verify.common.limits import BUILD_LOCK_TIMEOUT_SECONDS
from verify.common.locking import (
    LOCK_SUFFIX,
    Staging,
    StagingError,
    TargetLock,
    lock_timeout,
    remove_path,
    sweep_abandoned,
)
from verify.environments.errors import EnvironmentBuildError
from verify.environments.interface import RootfsImage, SandboxSpec
from verify.environments.perturb import SANDBOX_TOOLS_DIR
from verify.environments.sandbox import RUNNER_PATHS, CommandLineRunner, cpu_selection, user_ids
from verify.manifest import Manifest, ManifestError, read_manifest, scan_tree, verify_tree, write_manifest

STAGING_PREFIX = ".staging-"


def bwrap_command(rootfs: Path, command: Sequence[str], spec: SandboxSpec, *, interactive: bool = False) -> list[str]:
    """The full command line running ``command`` in the unpacked ``rootfs`` under ``spec``."""
    argv: list[str] = []
    cpus = cpu_selection(spec.cpus)
    if cpus is not None:
        argv += ["taskset", "--cpu-list", ",".join(map(str, cpus))]
    argv += [
        "bwrap",
        "--unshare-all",  # net, ipc, pid, uts, cgroup (and user when possible): no network at all
        "--die-with-parent",
        # Run as root, bwrap would keep root's capabilities: with CAP_SYS_ADMIN the build could remount
        # the read-only root writable (and write into the cached rootfs every later build uses), with
        # CAP_DAC_READ_SEARCH open any file of that file system by handle. The build needs none.
        "--cap-drop",
        "ALL",
    ]
    if not interactive:
        argv.append("--new-session")  # no access to the caller's terminal (TIOCSTI)
    argv += ["--hostname", spec.hostname, "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev"]
    # CPython's configure probes POSIX semaphores and ptys: a tmpfs /dev/shm and bwrap's devpts
    # /dev/ptmx keep pyconfig.h identical to a normal machine's.
    argv += ["--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]  # noqa: S108 (paths inside the sandbox, private tmpfs)
    for bind in spec.binds:
        argv += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.sandbox]
    argv.append("--clearenv")
    for key in sorted(spec.env):
        argv += ["--setenv", key, spec.env[key]]
    uid, gid = user_ids(spec.user)
    if (uid, gid) != (0, 0):
        argv += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    argv += ["--chdir", spec.cwd, "--", *command]
    return argv


def ensure_mount_points(rootfs: Path) -> None:
    """Create, in the unpacked rootfs, the empty mount points of the files every runner provides.

    bwrap binds the rootfs read-only before anything else, so it cannot create a mount point
    itself (podman and runc create theirs in a private layer). An empty ``/etc/hosts`` and
    ``/run/cpython-verify`` are never seen as such: the runner always mounts over the first, and over the
    second whenever it binds tools. The tarball, and so the environment digest, is unchanged.
    """
    for path in RUNNER_PATHS:
        target = rootfs / path.lstrip("/")
        if os.path.lexists(target):
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if path == SANDBOX_TOOLS_DIR:
            target.mkdir(mode=0o755, exist_ok=True)
        else:
            target.touch(mode=0o644, exist_ok=True)


UNPACKED_SUFFIX = ".unpacked"
"""``<digest>.unpacked/``, beside the tarball: ``root/`` (the unpacked tree) and ``manifest.json`` (its manifest)."""
_checked_this_run: set[Path] = set()
"""Unpacked rootfs directories this process has checked against their manifests (once per run is enough:
the tree is bound read-only into every sandbox)."""


def unpacked_rootfs_dir(image: RootfsImage) -> Path:
    """Where the unpacked rootfs of ``image`` is cached: ``<digest>.unpacked/`` beside its tarball."""
    return image.tarball.with_name(f"{image.sha256}{UNPACKED_SUFFIX}")


def check_unpacked_rootfs(directory: Path, sha256: str) -> list[str]:
    """What keeps ``directory`` from being the intact unpacked rootfs of the tarball ``sha256`` (empty: nothing).

    Its ``manifest.json`` must name that tarball, and ``root/`` must be exactly the manifest's tree (every
    path's type, mode, target, size and sha256: hash speed).
    """
    try:
        manifest = read_manifest(directory / "manifest.json")
    except ManifestError as error:
        return [error.message]
    if manifest.inputs.get("rootfs_sha256") != sha256:
        return [f"{directory / 'manifest.json'} is not the manifest of the rootfs {sha256}"]
    if not (directory / "root").is_dir():
        return [f"{directory / 'root'} is missing"]
    return [f"root/{problem}" for problem in verify_tree(directory / "root", manifest.entries)]


def unpacked_rootfs(image: RootfsImage) -> Path:
    """The rootfs tree of ``image``, unpacked on first use (after re-checking the tarball's digest) and
    checked against its manifest once per run before it is used; a damaged one is unpacked again.

    The unpacked directory is a cache entry like any other: staged beside the tarball, renamed into place
    when complete, under a lock (``.<digest>.unpacked.lock``) so two runs never unpack it at once.
    """
    directory = unpacked_rootfs_dir(image)
    tree = directory / "root"
    if directory in _checked_this_run:
        ensure_mount_points(tree)
        return tree
    lock = TargetLock(
        directory.with_name(f".{directory.name}{LOCK_SUFFIX}"),
        what=f"the unpacked rootfs {directory.name}",
        timeout=lock_timeout(BUILD_LOCK_TIMEOUT_SECONDS),
        on_wait=progress.note,
    )
    with lock:
        if lock.held:
            sweep_abandoned(directory.parent, f"{STAGING_PREFIX}{image.sha256}{UNPACKED_SUFFIX}-")
        if directory.exists():
            problems = check_unpacked_rootfs(directory, image.sha256)
            if not problems:
                _checked_this_run.add(directory)
                return tree
            if not lock.held:
                raise OperationalError(f"the unpacked rootfs {directory} is damaged and read-only: {problems[0]}")
            progress.note(f"the unpacked rootfs {directory} failed its check ({problems[0]}): unpacking it again")
            remove_path(directory)
        if not lock.held:
            raise StagingError(f"cannot unpack the rootfs into {directory.parent}: read-only")
        _unpack(image, directory)
        _checked_this_run.add(directory)
    return tree


def _unpack(image: RootfsImage, directory: Path) -> None:
    actual = sha256_file(image.tarball)
    if actual != image.sha256:
        raise VerificationFailed(f"rootfs tarball {image.tarball} has sha256 {actual}, expected {image.sha256}")
    staging = Staging.directory(directory.parent, f"{STAGING_PREFIX}{image.sha256}{UNPACKED_SUFFIX}-")
    try:
        tree = staging.path / "root"
        tree.mkdir()
        # GNU tar as root keeps owners, modes and device nodes exactly as mmdebstrap wrote them.
        extract = ["tar", "--extract", "--numeric-owner", "--preserve-permissions"]
        completed = subprocess.run(
            [*extract, "-C", str(tree), "-f", str(image.tarball)], capture_output=True, check=False
        )
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise EnvironmentBuildError(f"cannot unpack {image.tarball}: {message[0]}")
        faults.reached("rootfs-unpack")
        ensure_mount_points(tree)
        manifest = Manifest(inputs={"rootfs_sha256": image.sha256}, entries=scan_tree(tree))
        write_manifest(manifest, staging.path / "manifest.json")
        staging.path.rename(directory)
        staging.committed()
    except BaseException:
        staging.discard()
        raise


class BwrapRunner(CommandLineRunner):
    """Runs commands with bubblewrap (``bwrap --unshare-all --clearenv``)."""

    name = "bwrap"

    def check_available(self) -> None:
        """bwrap must be on PATH."""
        if shutil.which("bwrap") is None:
            raise ToolMissing("bwrap", "bubblewrap")
        if shutil.which("taskset") is None:
            raise ToolMissing("taskset", "util-linux")

    def sandbox_command(
        self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *, interactive: bool, name: str
    ) -> list[str]:
        """``bwrap`` over the unpacked rootfs (unpacked on first use). No name is needed to stop it:
        ``--die-with-parent`` and the PID namespace end every process inside when bwrap ends."""
        rootfs = unpacked_rootfs(image)
        with contextlib.suppress(OSError):
            os.utime(rootfs)  # mark as recently used, for whoever prunes the cache
        return bwrap_command(rootfs, command, spec, interactive=interactive)
