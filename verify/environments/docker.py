"""The docker runner, for users with a Docker engine: ``docker import`` of the same rootfs tarball.

No Docker engine runs on the machine this project is developed on, so only the command
construction and the availability checks are tested here (see the README).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from verify.common.errors import ToolMissing
from verify.environments.errors import RunnerError
from verify.environments.interface import RootfsImage, SandboxSpec
from verify.environments.podman import container_run_options, image_tag, remove_container
from verify.environments.sandbox import CommandLineRunner, import_rootfs_image


def docker_run_command(
    tag: str, command: Sequence[str], spec: SandboxSpec, *, interactive: bool = False, name: str | None = None
) -> list[str]:
    """The full ``docker run`` command line.

    Docker has no ``--read-only-tmpfs``: ``/tmp`` and ``/run`` are private tmpfs mounts explicitly.
    Docker adds ``HOSTNAME`` and, when the image has none, ``PATH`` and ``HOME`` to the environment.
    """
    return [
        "docker",
        "run",
        "--pull=never",
        "--tmpfs",
        # Docker mounts a --tmpfs noexec by default; bwrap's and podman's /tmp allow exec, and the PGO
        # trainer executes its copy of the build's interpreter from there.
        "/tmp:exec",  # noqa: S108 (a private tmpfs inside the container)
        "--tmpfs",
        "/run",
        *container_run_options(spec, interactive=interactive, name=name),
        tag,
        *command,
    ]


class DockerRunner(CommandLineRunner):
    """Runs commands in a Docker container made from the rootfs tarball."""

    name = "docker"

    def check_available(self) -> None:
        """The docker client must be installed and an engine must answer."""
        if shutil.which("docker") is None:
            raise ToolMissing("docker", "docker.io")
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode != 0:
            raise RunnerError("no Docker engine answers (docker version failed); use --runner bwrap or podman")

    def ensure_image(self, image: RootfsImage) -> str:
        """Import the tarball as an image tagged with its digest, unless already present."""
        return import_rootfs_image("docker", image, image_tag(image, engine="docker"), exists=("image", "inspect"))

    def sandbox_command(
        self, image: RootfsImage, command: Sequence[str], spec: SandboxSpec, *, interactive: bool, name: str
    ) -> list[str]:
        """``docker run`` of the imported image (imported on first use), as container ``name``."""
        return docker_run_command(self.ensure_image(image), command, spec, interactive=interactive, name=name)

    def stop_sandbox(self, name: str) -> None:
        """Kill and remove container ``name``: the engine keeps it running when the client dies."""
        remove_container("docker", name)
