"""The runner registry: one name per sandbox implementation, ``bwrap`` by default."""

from __future__ import annotations

from verify.common.errors import OperationalError
from verify.environments.bwrap import BwrapRunner
from verify.environments.docker import DockerRunner
from verify.environments.interface import Runner
from verify.environments.podman import PodmanRunner

DEFAULT_RUNNER = "bwrap"
RUNNERS: dict[str, type[Runner]] = {"bwrap": BwrapRunner, "podman": PodmanRunner, "docker": DockerRunner}


def get_runner(name: str = DEFAULT_RUNNER) -> Runner:
    """A new runner by name (``bwrap``, ``podman``, ``docker``)."""
    try:
        return RUNNERS[name]()
    except KeyError:
        raise OperationalError(f"unknown runner {name!r}; choose one of {', '.join(RUNNERS)}") from None


def known_runners() -> tuple[str, ...]:
    """The runner names ``--runner`` accepts, sorted."""
    return tuple(sorted(RUNNERS))
