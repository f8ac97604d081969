"""The interface every sandbox runner (bubblewrap, podman, docker) implements.

All runners take the same rootfs tarball, so the environment digest recorded in a result does not
depend on which runner was used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RootfsImage:
    """A built environment: the rootfs tarball, its sha256 (the environment digest) and its lock."""

    name: str
    tarball: Path
    sha256: str
    lock_sha256: str
    notes: tuple[str, ...] = ()
    """What the environment cache met getting it (a damaged tarball removed and built again)."""


@dataclass(frozen=True, slots=True)
class Bind:
    """A host directory made visible inside the sandbox."""

    host: Path
    sandbox: str
    writable: bool = False


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a command sees inside the sandbox. Everything not listed here is absent.

    The network is always unreachable, the environment starts empty (only ``env`` is set), the
    hostname is fixed, and only binds marked writable can be written (plus a private ``/tmp``).
    """

    binds: Sequence[Bind] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    hostname: str = "build"
    cwd: str = "/"
    user: str = "root"
    """``root`` or ``nobody``-style unprivileged uid inside the sandbox (a reprotest variation)."""
    cpus: int | None = None
    """Limit the CPUs the command may use (None: all)."""
    # Variations applied from the host (verify.environments.perturb): the tools run outside the
    # rootfs, so they are not part of the environment's digest; a result records their versions.
    clock_offset: str | None = None
    """libfaketime's ``FAKETIME`` (``+397d``): the host's libfaketime is preloaded inside the sandbox."""
    uname_2_6: bool = False
    """``uname`` reports a 2.6 kernel (``setarch --uname-2.6`` around the sandbox)."""
    aslr: bool = True
    """False: address space layout randomisation off (``setarch -R`` around the sandbox)."""
    reversed_directory_order: bool = False
    """Every bind is seen through disorderfs, which lists directory entries in reverse order."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a sandboxed command ended."""

    returncode: int
    log_path: Path | None
    """Combined stdout/stderr, when it was captured to a file."""


class Runner(ABC):
    """Runs a command inside a rootfs with no network."""

    name: str

    @abstractmethod
    def check_available(self) -> None:
        """Raise :class:`verify.common.errors.ToolMissing` (naming the Debian package) when this runner cannot run."""

    @abstractmethod
    def run(
        self,
        image: RootfsImage,
        command: Sequence[str],
        spec: SandboxSpec,
        *,
        log_path: Path | None = None,
        interactive: bool = False,
    ) -> RunResult:
        """Run ``command`` in ``image`` under ``spec``; capture output to ``log_path`` when given."""
