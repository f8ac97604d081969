"""The runner and environment the rebuild uses, behind two small functions.

:func:`runner_for` and :func:`image_for` are the only places the build asks for a sandbox. They use
the environments stage (``verify.environments``) when it provides ``get_runner`` /
``ensure_environment``, and otherwise this module's :class:`BwrapRunner`, which runs a rootfs tarball
(or an unpacked rootfs directory) under bubblewrap with no network, an empty environment, a private
``/tmp``, a tmpfs ``/dev/shm`` and a devpts ``/dev/ptmx``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from verify.environments.interface import Bind, RootfsImage, Runner, RunResult, SandboxSpec
from verify.errors import ToolMissing

# Top-level rootfs entries the sandbox provides itself (fresh /proc, /dev, /tmp) or must not see.
_PROVIDED_BY_SANDBOX = frozenset({"proc", "dev", "tmp", "sys", "run", "build", "out", "src"})
_NOBODY = 65534


class BwrapRunner(Runner):
    """bubblewrap, as root or unprivileged: the default runner, and the one used until H3's lands."""

    name = "bwrap"

    def __init__(self, *, rootfs_cache: Path | None = None, with_dev_shm_and_ptmx: bool = True) -> None:
        self._rootfs_cache = rootfs_cache
        # Only a test turns this off: it reproduces the measured fact that configure's results
        # (and pyconfig.h) change when the sandbox lacks POSIX semaphores and ptys.
        self._full_dev = with_dev_shm_and_ptmx

    def check_available(self) -> None:
        """Raise :class:`ToolMissing` when bwrap is not installed."""
        if shutil.which("bwrap") is None:
            raise ToolMissing("bwrap", "bubblewrap")

    def rootfs_dir(self, image: RootfsImage) -> Path:
        """The unpacked rootfs of ``image`` (unpacked once per digest; a directory is used as is)."""
        if image.tarball.is_dir():
            return image.tarball
        cache = self._rootfs_cache or image.tarball.parent / "rootfs-unpacked"
        target = cache / image.sha256
        if target.is_dir():
            return target
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=cache))
        try:
            # The rootfs is our own mmdebstrap output (trusted, digest-pinned): it holds device
            # nodes and absolute symlinks that the "data" filter would refuse, hence "fully_trusted".
            with tarfile.open(image.tarball) as archive:
                archive.extractall(staging, filter="fully_trusted")  # noqa: S202
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def command_line(self, rootfs: Path, command: Sequence[str], spec: SandboxSpec) -> list[str]:
        """The full bwrap argument vector (public so tests and logs can show it)."""
        args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--hostname", spec.hostname]
        for entry in sorted(rootfs.iterdir()):
            if entry.name in _PROVIDED_BY_SANDBOX:
                continue
            if entry.is_symlink():
                args += ["--symlink", str(entry.readlink()), "/" + entry.name]
            elif entry.is_dir():
                args += ["--ro-bind", str(entry), "/" + entry.name]
        args += ["--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108 - a private tmpfs in the sandbox
        if self._full_dev:
            # --dev gives a devpts /dev/pts with /dev/ptmx and a tmpfs /dev/shm.
            args += ["--dev", "/dev"]
        else:
            for node in ("null", "zero", "full", "random", "urandom", "tty"):
                args += ["--dev-bind", f"/dev/{node}", f"/dev/{node}"]
        for bind in spec.binds:
            args += ["--bind" if bind.writable else "--ro-bind", str(bind.host), bind.sandbox]
        if spec.user != "root":
            args += ["--unshare-user", "--uid", str(_NOBODY), "--gid", str(_NOBODY)]
        args += ["--chdir", spec.cwd, "--clearenv"]
        for key, value in sorted(spec.env.items()):
            args += ["--setenv", key, value]
        args += ["--", *command]
        if spec.cpus:
            # Affinity is inherited by everything the command starts, and nproc reads it.
            args = ["taskset", "--cpu-list", f"0-{spec.cpus - 1}", *args]
        return args

    def run(
        self,
        image: RootfsImage,
        command: Sequence[str],
        spec: SandboxSpec,
        *,
        log_path: Path | None = None,
        interactive: bool = False,
    ) -> RunResult:
        """Run ``command`` in ``image``; stdout and stderr go to ``log_path`` (or are inherited)."""
        self.check_available()
        argv = self.command_line(self.rootfs_dir(image), command, spec)
        if log_path is None or interactive:
            returncode = subprocess.run(argv, check=False, stdin=None if interactive else subprocess.DEVNULL)
            return RunResult(returncode=returncode.returncode, log_path=None)
        with log_path.open("ab") as log:
            completed = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return RunResult(returncode=completed.returncode, log_path=log_path)


def host_image() -> RootfsImage:
    """The host's own ``/`` as an image: only for fast tests, where no rootfs can be built offline."""
    return RootfsImage(name="host", tarball=Path("/"), sha256="host-" + "0" * 59, lock_sha256="")


def image_from_tarball(name: str, tarball: Path) -> RootfsImage:
    """A :class:`RootfsImage` for a rootfs tarball made outside the environments stage."""
    digest = hashlib.sha256()
    with tarball.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256")
    return RootfsImage(name=name, tarball=tarball, sha256=digest.hexdigest(), lock_sha256="")


def runner_for(name: str) -> Runner:
    """The environments stage's runner called ``name`` (``bwrap``, ``podman`` or ``docker``)."""
    from verify.environments import get_runner

    return get_runner(name)


def image_for(name: str, *, cache_dir: Path | None = None, rootfs: Path | None = None) -> RootfsImage:
    """The environment ``name``: a given rootfs tarball, or the pinned one ``ensure_environment`` builds."""
    if rootfs is not None:
        return image_from_tarball(name, rootfs)
    from verify.environments import ensure_environment

    return ensure_environment(name, cache_dir=cache_dir)


__all__ = ["Bind", "BwrapRunner", "host_image", "image_for", "image_from_tarball", "runner_for"]
