"""Helpers shared by the runners: user and CPU variations, bind checks, running the process.

The runners differ only in how they ask for isolation; what a variation means (which uid is
"nobody", which CPUs a limit of N selects) is decided here once, so all three agree.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from verify.common import interrupts
from verify.common.errors import OperationalError, VerificationFailed
from verify.common.fsutil import sha256_file
from verify.environments.errors import RunnerError
from verify.environments.interface import Bind, RootfsImage, Runner, RunResult, SandboxSpec
from verify.environments.perturb import (
    HOSTS_PATH,
    SANDBOX_TOOLS_DIR,
    clock_offset_seconds,
    host_side,
    personality_prefix,
)

NOBODY = (65534, 65534)
"""uid/gid of Debian's ``nobody``/``nogroup``: the unprivileged build user of the ``user`` variation."""


RUNNER_PATHS = (HOSTS_PATH, SANDBOX_TOOLS_DIR)
"""Sandbox paths every runner fills itself; a spec may not bind anything there."""


class SandboxSpecError(OperationalError):
    """A sandbox spec asks for something no runner can honour (bad user, CPU count or bind)."""


def user_ids(user: str) -> tuple[int, int]:
    """``root`` -> (0, 0); ``nobody`` -> (65534, 65534); ``UID`` or ``UID:GID`` -> those numbers."""
    if user == "root":
        return (0, 0)
    if user == "nobody":
        return NOBODY
    uid_text, _, gid_text = user.partition(":")
    try:
        uid = int(uid_text)
        gid = int(gid_text) if gid_text else uid
    except ValueError:
        raise SandboxSpecError(f"sandbox user {user!r} is not 'root', 'nobody', UID or UID:GID") from None
    if not (0 <= uid < 2**32 and 0 <= gid < 2**32):
        raise SandboxSpecError(f"sandbox user {user!r} is out of range")
    return (uid, gid)


def cpu_selection(cpus: int | None) -> list[int] | None:
    """The CPUs a limit of ``cpus`` selects: the first N of those this process may run on.

    Affinity (not a quota) is what ``nproc`` and ``os.sched_getaffinity`` inside the sandbox see,
    so a build that sizes ``make -j`` from them really sees N CPUs. ``os.cpu_count()`` still
    reports the machine's CPUs: that is a known limit of affinity-based variation.
    """
    if cpus is None:
        return None
    available = sorted(os.sched_getaffinity(0))
    if cpus < 1 or cpus > len(available):
        raise SandboxSpecError(f"cannot limit the sandbox to {cpus} CPU(s): this process may use {len(available)}")
    return available[:cpus]


def check_binds(binds: Sequence[Bind]) -> None:
    """Refuse binds a runner could misread: relative, root-covering, or comma-bearing paths."""
    for bind in binds:
        if not bind.sandbox.startswith("/") or bind.sandbox.rstrip("/") == "":
            raise SandboxSpecError(f"bind target {bind.sandbox!r} must be an absolute path other than /")
        for text in (str(bind.host), bind.sandbox):
            # podman/docker --mount options are comma-separated; bwrap would accept these, but the
            # runners must agree on what is valid.
            if "," in text or "\n" in text:
                raise SandboxSpecError(f"bind path {text!r} contains a comma or newline")
        if not bind.host.is_absolute() or not bind.host.exists():
            raise SandboxSpecError(f"bind source {bind.host} must be an existing absolute path")


def check_spec(spec: SandboxSpec) -> None:
    """Validate everything in ``spec`` the runners rely on."""
    check_binds(spec.binds)
    user_ids(spec.user)
    cpu_selection(spec.cpus)
    if not spec.cwd.startswith("/"):
        raise SandboxSpecError(f"working directory {spec.cwd!r} must be absolute")
    if spec.clock_offset is not None:
        clock_offset_seconds(spec.clock_offset)
    for bind in spec.binds:
        if bind.sandbox.rstrip("/") in RUNNER_PATHS:
            raise SandboxSpecError(f"bind target {bind.sandbox} is the runner's own ({', '.join(RUNNER_PATHS)})")
    for key in spec.env:
        if not key or "=" in key or "\0" in key:
            raise SandboxSpecError(f"environment variable name {key!r} is invalid")


def run_process(
    argv: Sequence[str], *, log_path: Path | None, interactive: bool, stop: Callable[[], None] | None = None
) -> RunResult:
    """Run a runner's command line; output goes to ``log_path`` (or the terminal), stdin is closed
    unless interactive so a build can never wait on the user.

    Interrupted (Ctrl-C, SIGTERM), ``stop`` stops the sandbox first (a container outlives the
    engine's client process), then the command line gets SIGTERM and, after a grace period, SIGKILL;
    the interrupt goes on only once it has ended. Interactive, Ctrl-C belongs to the shell inside.
    """

    def stopping(process: subprocess.Popen[bytes]) -> None:
        if stop is not None:
            stop()
        interrupts.terminate(process)

    if interactive:
        with interrupts.ignoring(signal.SIGINT):
            return RunResult(returncode=interrupts.run_child(argv, stop=stopping, own_group=False), log_path=None)
    if log_path is None:
        return RunResult(returncode=interrupts.run_child(argv, stop=stopping, stdin=subprocess.DEVNULL), log_path=None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        returncode = interrupts.run_child(
            argv, stop=stopping, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    return RunResult(returncode=returncode, log_path=log_path)


def sandbox_name() -> str:
    """A name for one sandbox run, unique on this host: ``cpython-verify-<pid>-<random>``."""
    return f"cpython-verify-{os.getpid()}-{secrets.token_hex(4)}"


class CommandLineRunner(Runner):
    """A runner whose sandbox is one host command line: every check and the run itself are shared,
    each runner says only how it builds that command line."""

    def run(  # the Runner interface, implemented once for every command-line sandbox
        self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *,
        log_path: Path | None = None, interactive: bool = False,
    ) -> RunResult:  # fmt: skip
        """Run ``command`` in ``image`` under ``spec`` (tools and spec checked first).

        The host side (:func:`verify.environments.perturb.host_side`: ``/etc/hosts``, libfaketime,
        disorderfs mounts) exists for exactly the duration of the run; ``setarch`` wraps the whole
        command line when the kernel or ASLR is varied.
        """
        self.check_available()
        check_spec(spec)
        name = sandbox_name()
        with host_side(spec) as prepared:
            argv = self.sandbox_command(image, command, prepared, interactive=interactive, name=name)
            return run_process([*personality_prefix(spec), *argv], log_path=log_path, interactive=interactive,
                               stop=lambda: self.stop_sandbox(name))  # fmt: skip

    @abstractmethod
    def sandbox_command(
        self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *, interactive: bool, name: str
    ) -> list[str]:
        """The host command line running ``command`` in ``image`` (preparing the image if needed);
        ``name`` identifies this run's sandbox to :meth:`stop_sandbox`."""

    def stop_sandbox(self, name: str) -> None:
        """Stop the sandbox ``name`` and everything in it, when ending its command line is not enough
        (a container engine's client can die and leave the container running). Default: nothing to do."""


def import_rootfs_image(engine: str, image: RootfsImage, tag: str, *, exists: Sequence[str]) -> str:
    """Import ``image``'s tarball into a container engine (podman, docker) as ``tag``, unless present.

    ``exists`` is the engine's command that succeeds when ``tag`` is already there. The tarball's
    digest is checked before import, so a tampered tarball never becomes an image. An image already
    tagged ``tag`` is used only if its one layer is that tarball (``import`` keeps the tarball as the
    layer, so the layer's digest is the environment digest); a tag on anything else (another image
    tagged so, by mistake or on purpose) is removed and the tarball imported again.
    """
    if subprocess.run([engine, *exists, tag], capture_output=True, check=False).returncode == 0:
        if image_layers(engine, tag) == [f"sha256:{image.sha256}"]:
            return tag
        untag = ["untag", tag, tag] if engine == "podman" else ["rmi", tag]
        subprocess.run([engine, *untag], capture_output=True, check=False)
    actual = sha256_file(image.tarball)
    if actual != image.sha256:
        raise VerificationFailed(f"rootfs tarball {image.tarball} has sha256 {actual}, expected {image.sha256}")
    import_argv = [engine, "import", *(["--quiet"] if engine == "podman" else []), str(image.tarball), tag]
    imported = subprocess.run(import_argv, capture_output=True, check=False)
    if imported.returncode != 0:
        message = imported.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise RunnerError(f"{engine} import of {image.tarball} failed: {message[0]}")
    return tag


def image_layers(engine: str, tag: str) -> list[str] | None:
    """The layer digests (``sha256:...``) of the image ``tag`` in ``engine``, or None if it cannot say."""
    inspected = subprocess.run(
        [engine, "image", "inspect", "--format", "{{json .RootFS.Layers}}", tag], capture_output=True, check=False
    )
    if inspected.returncode != 0:
        return None
    try:
        layers = json.loads(inspected.stdout)
    except ValueError:
        return None
    return [str(layer) for layer in layers] if isinstance(layers, list) else None
