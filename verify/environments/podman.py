"""The podman runner: ``podman import`` of the same rootfs tarball, ``podman run --network=none``.

The image tag is derived from the tarball's sha256, so one tarball is one image, and the rebuild's
environment digest is the same as with bwrap. On this kind of host (Debian podman 4.3, hybrid
cgroups) crun cannot set rlimits, so runc is used and the ulimits are capped at the host's hard limits.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import resource
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify.common.errors import ToolMissing
from verify.common.fsutil import write_atomic
from verify.environments.interface import RootfsImage, SandboxSpec
from verify.environments.sandbox import CommandLineRunner, cpu_selection, import_rootfs_image, user_ids

NOFILE = 20000
NPROC = 8192
REMOVE_TIMEOUT_SECONDS = 60.0
"""How long removing an interrupted build's container may take before the interrupt goes on without it."""


def image_tag(image: RootfsImage, engine: str = "podman") -> str:
    """The local image reference of a rootfs: its name and full digest."""
    prefix = "localhost/" if engine == "podman" else ""
    return f"{prefix}cpython-verify-env/{image.name}:{image.sha256}"


ADDR_NO_RANDOMIZE = 0x0040000
UNAME26 = 0x0020000
ASLR_OFF_PERSONALITIES = (ADDR_NO_RANDOMIZE, ADDR_NO_RANDOMIZE | UNAME26)
"""The personality(2) values a process in the container may set on top of the default profile's: ASLR off,
alone or with the 2.6 uname the ``kernel`` variation sets (``setarch -R`` and cpython-verify's PGO trainer
ask for the current personality plus ``ADDR_NO_RANDOMIZE``). Nothing else is granted."""


def seccomp_granting_aslr_off(default: dict[str, Any]) -> dict[str, Any]:
    """``default`` (a container engine's seccomp profile) with exactly one more thing allowed: turning
    ASLR off with personality(2), which default profiles (podman's, docker's) deny."""
    grant = [
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}],
        }
        for value in ASLR_OFF_PERSONALITIES
    ]
    return {**default, "syscalls": [*default.get("syscalls", []), *grant]}


@functools.cache
def podman_default_seccomp() -> Path | None:
    """The seccomp profile podman applies by default (``podman info``), or None when seccomp is off or
    the profile cannot be found (then nothing is granted, and a training that needs ASLR off refuses)."""
    info = subprocess.run(["podman", "info", "--format", "json"], capture_output=True, check=False, timeout=60)
    if info.returncode != 0:
        return None
    try:
        security = json.loads(info.stdout)["host"]["security"]
    except (ValueError, KeyError, TypeError):
        return None
    path = security.get("seccompProfilePath") if security.get("seccompEnabled") else None
    return Path(path) if path and Path(path).is_file() else None


def aslr_off_seccomp_file(default: Path, directory: Path) -> Path:
    """The profile of :func:`seccomp_granting_aslr_off` as a file in ``directory`` (named by its digest, so
    written once and never half-written)."""
    profile = seccomp_granting_aslr_off(json.loads(default.read_bytes()))
    data = json.dumps(profile, indent=1, sort_keys=True).encode()
    path = directory / f"seccomp-aslr-off-{hashlib.sha256(data).hexdigest()[:16]}.json"
    if not path.is_file():
        write_atomic(path, data)
    return path


def capped_ulimits() -> dict[str, int]:
    """nofile/nproc limits for the container, never above this host's hard limits (runc refuses those)."""

    def cap(wanted: int, which: int) -> int:
        hard = resource.getrlimit(which)[1]
        return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)

    return {"nofile": cap(NOFILE, resource.RLIMIT_NOFILE), "nproc": cap(NPROC, resource.RLIMIT_NPROC)}


def container_run_options(spec: SandboxSpec, *, interactive: bool, name: str | None = None) -> list[str]:
    """The ``run`` options podman and docker share: no network, read-only root, fixed hostname, binds, env;
    ``name`` names the container, so that it can be stopped when the client is interrupted."""
    options = ["--rm", "--network=none", "--read-only", "--hostname", spec.hostname, "--workdir", spec.cwd]
    if name is not None:
        options += ["--name", name]
    if interactive:
        options += ["--interactive", "--tty"]
    uid, gid = user_ids(spec.user)
    options += ["--user", f"{uid}:{gid}"]
    cpus = cpu_selection(spec.cpus)
    if cpus is not None:
        options += ["--cpuset-cpus", ",".join(map(str, cpus))]
    for bind in spec.binds:
        readonly = "" if bind.writable else ",readonly"
        options += ["--mount", f"type=bind,source={bind.host},target={bind.sandbox}{readonly}"]
    for key in sorted(spec.env):
        options += ["--env", f"{key}={spec.env[key]}"]
    return options


def identity_maps(uid: int, gid: int) -> list[str]:
    """For an unprivileged sandbox user, map it to the invoking user, as bwrap's ``--uid`` does.

    The build user is then unprivileged inside (no capabilities, cannot write the read-only
    root), yet can write the writable binds, and its files land on the host as the invoking user.
    Every other id keeps a distinct mapping so the rootfs' owners stay distinct.
    """
    if (uid, gid) == (0, 0):
        return []
    options = []
    for flag, sandbox_id in (("--uidmap", uid), ("--gidmap", gid)):
        options += [flag, f"{sandbox_id}:0:1", flag, f"0:1:{sandbox_id}"]
        if sandbox_id < 65535:
            options += [flag, f"{sandbox_id + 1}:{sandbox_id + 1}:{65535 - sandbox_id}"]
    return options


def podman_run_command(
    tag: str,
    command: Sequence[str],
    spec: SandboxSpec,
    *,
    ulimits: dict[str, int],
    interactive: bool = False,
    name: str | None = None,
    seccomp: Path | None = None,
) -> list[str]:
    """The full ``podman run`` command line (``seccomp``: a profile replacing podman's default)."""
    # --no-hosts: podman's own /etc/hosts copies the host's entries and a random container name; the
    # runner binds its own (verify.environments.perturb.hosts_file_text) instead.
    argv = ["podman", "run", "--runtime", "runc", "--pull=never", "--unsetenv-all", "--no-hosts"]
    argv += identity_maps(*user_ids(spec.user))
    for limit, value in sorted(ulimits.items()):
        argv += ["--ulimit", f"{limit}={value}:{value}"]
    if seccomp is not None:
        argv += ["--security-opt", f"seccomp={seccomp}"]
    # /tmp, /var/tmp and /run are private tmpfs under --read-only (podman's --read-only-tmpfs default);
    # /dev/shm is a tmpfs and /dev/ptmx a devpts in every podman container.
    argv += ["--read-only-tmpfs", *container_run_options(spec, interactive=interactive, name=name), tag, *command]
    return argv


class PodmanRunner(CommandLineRunner):
    """Runs commands in a podman container made from the rootfs tarball."""

    name = "podman"

    def check_available(self) -> None:
        """podman and runc must be on PATH."""
        if shutil.which("podman") is None:
            raise ToolMissing("podman", "podman")
        if shutil.which("runc") is None:
            raise ToolMissing("runc", "runc")

    def ensure_image(self, image: RootfsImage) -> str:
        """Import the tarball as an image tagged with its digest, unless already present."""
        return import_rootfs_image("podman", image, image_tag(image), exists=("image", "exists"))

    def sandbox_command(
        self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *, interactive: bool, name: str
    ) -> list[str]:
        """``podman run`` of the imported image (imported on first use), as container ``name``, under podman's
        default seccomp profile plus the one grant a deterministic PGO training needs
        (:func:`seccomp_granting_aslr_off`)."""
        default = podman_default_seccomp()
        seccomp = aslr_off_seccomp_file(default, image.tarball.parent) if default is not None else None
        return podman_run_command(
            self.ensure_image(image),
            command,
            spec,
            ulimits=capped_ulimits(),
            interactive=interactive,
            name=name,
            seccomp=seccomp,
        )

    def stop_sandbox(self, name: str) -> None:
        """Kill and remove container ``name`` at once: killing ``podman run`` would leave it running."""
        remove_container("podman", name)


def remove_container(engine: str, name: str) -> None:
    """``ENGINE rm --force`` of container ``name`` (its processes get SIGKILL), bounded in time.

    podman waits for a stop signal first unless told not to (``--time 0``): the build's PID 1 is a
    shell, which ignores SIGTERM.
    """
    argv = [engine, "rm", "--force", *(["--time", "0"] if engine == "podman" else []), name]
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(argv, capture_output=True, check=False, timeout=REMOVE_TIMEOUT_SECONDS)
