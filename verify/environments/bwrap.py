"""The bubblewrap runner: the default, and the lightest sandbox (no daemon, no image store).

bwrap needs a directory, not a tarball, so the verified tarball is unpacked once into
``<digest>.rootfs/`` beside it and bound read-only as ``/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from verify import progress
from verify.environments.errors import EnvironmentBuildError
from verify.environments.interface import RootfsImage, SandboxSpec
from verify.environments.perturb import SANDBOX_TOOLS_DIR
from verify.environments.sandbox import RUNNER_PATHS, CommandLineRunner, cpu_selection, user_ids
from verify.environments.trees import differences, directory_tree, runner_addition, summarize, tarball_tree
from verify.errors import ToolMissing, VerificationFailed
from verify.fsutil import sha256_file


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


def unpacked_rootfs(image: RootfsImage, *, verified: set[Path] | None = None) -> Path:
    """The rootfs directory of ``image``: unpacked (after re-checking the tarball's digest) on first use,
    and checked against the tarball before its first use in each process (``verified`` remembers it).

    The directory is a copy of the pinned environment in a cache others may write: one that differs from
    its tarball in any entry (a changed, added or missing file, a mode, an owner) is set aside, with a
    note, and unpacked again; it is never used.
    """
    target = image.tarball.with_name(f"{image.sha256}.rootfs")
    if target.is_dir():
        if verified is not None and target in verified:
            ensure_mount_points(target)
            return target
        problems = unpacked_differences(target, image)
        if not problems:
            ensure_mount_points(target)
            if verified is not None:
                verified.add(target)
            return target
        progress.note(f"{target} differs from its rootfs tarball ({'; '.join(summarize(problems, 2))}): "
                      "unpacking it again")  # fmt: skip
        _set_aside(target)
    actual = sha256_file(image.tarball)
    if actual != image.sha256:
        raise VerificationFailed(f"rootfs tarball {image.tarball} has sha256 {actual}, expected {image.sha256}")
    scratch = Path(tempfile.mkdtemp(dir=image.tarball.parent, prefix=f".{image.sha256[:12]}-"))
    try:
        # GNU tar as root keeps owners, modes and device nodes exactly as mmdebstrap wrote them.
        extract = ["tar", "--extract", "--numeric-owner", "--preserve-permissions"]
        completed = subprocess.run(
            [*extract, "-C", str(scratch), "-f", str(image.tarball)],
            capture_output=True,
            check=False,
        )
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise EnvironmentBuildError(f"cannot unpack {image.tarball}: {message[0]}")
        ensure_mount_points(scratch)
        try:
            scratch.rename(target)
        except OSError:
            if not target.is_dir():  # lost a race with another unpacker: theirs is as good as ours
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    if verified is not None:
        verified.add(target)
    return target


def unpacked_differences(directory: Path, image: RootfsImage) -> list[str]:
    """How ``directory`` differs from ``image``'s tarball (empty when it is an exact copy); raises
    :class:`VerificationFailed` when the tarball itself is not the one with ``image``'s digest."""
    digest, expected = tarball_tree(image.tarball)
    if digest != image.sha256:
        raise VerificationFailed(f"rootfs tarball {image.tarball} has sha256 {digest}, expected {image.sha256}")
    return differences(expected, directory_tree(directory), allowed_extra=runner_addition)


def _set_aside(directory: Path) -> None:
    """Move a bad unpacked rootfs out of the way, then delete it. A rename first: a sandbox still running
    on it keeps its mount, and no later run can pick it up while it is being deleted."""
    aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name[:12]}-bad-"))
    directory.rename(aside / directory.name)
    shutil.rmtree(aside, ignore_errors=True)


class BwrapRunner(CommandLineRunner):
    """Runs commands with bubblewrap (``bwrap --unshare-all --clearenv``)."""

    name = "bwrap"

    def __init__(self) -> None:
        self._verified: set[Path] = set()
        """Unpacked rootfs directories this runner checked against their tarballs (once per process)."""

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
        rootfs = unpacked_rootfs(image, verified=self._verified)
        with contextlib.suppress(OSError):
            os.utime(rootfs)  # mark as recently used, for whoever prunes the cache
        return bwrap_command(rootfs, command, spec, interactive=interactive)
