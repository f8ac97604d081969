"""``cpython-verify env``: lock, build, enter and use the pinned build environments."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from verify.commands.aliases import renamed
from verify.commands.options import RUNNER_CHOICE, F
from verify.commands.output import Report, output_options
from verify.common import progress
from verify.common.errors import EXIT_FAILED, EXIT_OK, OperationalError
from verify.environments.interface import Bind, SandboxSpec
from verify.environments.lock import EnvironmentLock, environments_dir, load_lock, load_spec, parse_lock
from verify.environments.rootfs import ensure_environment, resolve_lock, write_lock
from verify.environments.runners import DEFAULT_RUNNER, get_runner

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_mirror_option = click.option(
    "--mirror",
    metavar="URL",
    envvar="CPYTHON_VERIFY_DEBIAN_MIRROR",
    help="Debian mirror (default: the one the host's apt configuration uses for the suite).",
)
_CACHE_TYPE = click.Path(file_okay=False, path_type=Path)


def _cache_option(function: F) -> F:
    """``--cache`` as in every other command; ``--cache-dir``, its old spelling here, for one release."""
    function = renamed("--cache-dir", "--cache", "cache_dir", type=_CACHE_TYPE)(function)
    option = click.option(
        "--cache",
        "cache_dir",
        type=_CACHE_TYPE,
        envvar="CPYTHON_VERIFY_CACHE",
        help="Cache root; .deb files and rootfs tarballs go in environments/ "
        "(default: $XDG_CACHE_HOME/cpython-verify).",
    )
    return option(function)


_runner_option = click.option(
    "--runner", type=RUNNER_CHOICE, default=DEFAULT_RUNNER, show_default=True, help="Sandbox to use."
)


def _progress(message: str) -> None:
    progress.note(f"env: {message}")


@click.group()
def env() -> None:
    """Pinned Debian build environments: lock files, reproducible rootfs tarballs, sandboxes.

    \b
    Examples:
      cpython-verify env list
      cpython-verify env build bookworm-cpython
      cpython-verify env probe bookworm-cpython --runner podman
      cpython-verify env run bookworm-cpython --src . --out out -- make -C /src
      cpython-verify env lock bookworm-cpython --mirror http://deb.example/debian
    """


@env.command(name="list")
@output_options
def list_environments() -> None:
    """List the environments that have a lock, with their rootfs digests."""
    report = Report.current()
    for path in sorted(environments_dir().glob("*.lock")):
        lock = load_lock(path.stem)
        packages = f"{len(lock.packages)} packages"
        report.echo(f"{lock.name}\t{lock.suite}/{lock.architecture}\t{packages}\t{lock.rootfs_sha256}")
    report.close()


@env.command()
@click.argument("name")
@_mirror_option
@_cache_option
@output_options
def lock(name: str, mirror: str | None, cache_dir: Path | None) -> None:
    """Resolve NAME.toml against the mirror and (re)write NAME.lock.

    Runs mmdebstrap once against the mirror to learn the exact package set, then builds the rootfs
    from the pinned packages to record its digest. The lock changes only where the pins changed.
    """
    spec = load_spec(name)
    old: EnvironmentLock | None = None
    try:
        old = load_lock(name)
    except OperationalError:
        old = None
    report = Report.current()
    with progress.phase(f"env lock {name}: resolving and building the rootfs once"):
        new = resolve_lock(spec, cache_dir=cache_dir, mirror=mirror, progress=_progress)
    path = write_lock(new)
    for line in describe_changes(old, parse_lock(path.read_bytes(), name)):
        report.echo(line)
    report.echo(f"{path}: {len(new.packages)} packages, rootfs sha256 {new.rootfs_sha256}")
    report.close()


def describe_changes(old: EnvironmentLock | None, new: EnvironmentLock) -> list[str]:
    """One line per package added, removed or changed, and for a changed rootfs digest."""
    if old is None:
        return [f"new lock: {len(new.packages)} packages"]
    before = {package.name: package for package in old.packages}
    after = {package.name: package for package in new.packages}
    lines = [f"+ {name} {after[name].version}" for name in sorted(after.keys() - before.keys())]
    lines += [f"- {name} {before[name].version}" for name in sorted(before.keys() - after.keys())]
    for name in sorted(before.keys() & after.keys()):
        if before[name] != after[name]:
            lines.append(f"~ {name} {before[name].version} -> {after[name].version}")
    if old.rootfs_sha256 != new.rootfs_sha256:
        lines.append(f"rootfs sha256 {old.rootfs_sha256} -> {new.rootfs_sha256}")
    return lines or ["unchanged"]


@env.command()
@click.argument("name")
@_mirror_option
@click.option(
    "--snapshot",
    metavar="URL",
    envvar="CPYTHON_VERIFY_DEBIAN_SNAPSHOT",
    help="Snapshot archive URL to fetch pinned .deb files the mirror no longer serves.",
)
@_cache_option
@output_options
def build(name: str, mirror: str | None, snapshot: str | None, cache_dir: Path | None) -> None:
    """Build (or take from the cache) NAME's rootfs and check it against the lock's digest.

    Prints the tarball's path and sha256 (the environment digest); exit 1 if it does not match the lock.
    """
    report = Report.current()
    with progress.phase(f"env build {name}: rootfs (built if not cached)"):
        image = ensure_environment(name, cache_dir=cache_dir, mirror=mirror, snapshot=snapshot, progress=_progress)
    report.echo(f"{image.tarball}\nsha256 {image.sha256} (matches {name}.lock)")
    report.close()


@env.command()
@click.argument("name")
@_runner_option
@_cache_option
@output_options
def probe(name: str, runner: str, cache_dir: Path | None) -> None:
    """Check, from inside, that NAME's build sandbox keeps its promises.

    No network (not even the host's services on 127.0.0.1), writes only in the build and output
    directories, no read of the host's home or of the cache's other entries, and a root file system
    equal, entry by entry, to the rootfs tarball whose digest NAME.lock names. One line per promise;
    exit 0 when every one is kept, 1 when one is broken.
    """
    from verify.environments.isolation import describe, probe_environment

    report = Report.current()
    with progress.phase(f"env probe {name}: the {runner} sandbox (the rootfs is built if not cached)"):
        result = probe_environment(name, get_runner(runner), cache_dir=cache_dir)
    for line in describe(result):
        report.echo(line)
    verdict = "PROBE PASSED" if result.kept else "PROBE FAILED"
    report.echo(f"{verdict}: the {runner} sandbox of {name} (rootfs {result.rootfs_sha256})")
    report.close()
    sys.exit(EXIT_OK if result.kept else EXIT_FAILED)


@dataclass(frozen=True)
class SandboxArguments:
    """What ``env shell`` and ``env run`` share: the sandbox spec's options, the runner and the cache."""

    src: Path | None
    out: Path | None
    hostname: str
    user: str
    cpus: int | None
    env_pairs: tuple[str, ...]
    runner: str
    cache_dir: Path | None

    def spec(self, extra_env: Sequence[str] = ()) -> SandboxSpec:
        """The sandbox spec; a malformed ``--env`` is refused here, before anything is built or run."""
        binds = []
        if self.src is not None:
            binds.append(Bind(host=self.src.resolve(), sandbox="/src"))
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            binds.append(Bind(host=self.out.resolve(), sandbox="/out", writable=True))
        # HOME is the sandbox's private tmpfs /tmp: the read-only root has no writable home.
        variables = {"PATH": _DEFAULT_PATH, "HOME": "/tmp", "LC_ALL": "C.UTF-8", "TZ": "UTC"}  # noqa: S108
        for pair in (*self.env_pairs, *extra_env):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--env")
            variables[key] = value
        return SandboxSpec(binds=tuple(binds), env=variables, hostname=self.hostname, user=self.user, cpus=self.cpus)

    def run(self, name: str, command: Sequence[str], *, extra_env: Sequence[str] = (), **how: Any) -> NoReturn:
        """Check every argument, then build (or reuse) NAME's rootfs and run ``command``; exit with its status."""
        spec = self.spec(extra_env)
        runner = get_runner(self.runner)
        runner.check_available()
        with progress.phase(f"env {name}: rootfs (built if not cached)"):
            image = ensure_environment(name, cache_dir=self.cache_dir, progress=_progress)
        sys.exit(runner.run(image, list(command), spec, **how).returncode)


def _sandbox_options(function: Callable[..., None]) -> Callable[..., None]:
    """Add the sandbox options; the command receives them as one ``sandbox: SandboxArguments``."""
    options = [
        click.option(
            "--src", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Bound read-only at /src."
        ),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Bound writable at /out."),
        click.option("--hostname", default="build", show_default=True),
        click.option("--user", default="root", show_default=True, help="root, nobody, UID or UID:GID."),
        click.option("--cpus", type=click.IntRange(min=1), help="Limit the CPUs the command may use (affinity)."),
        click.option("--env", "env_pairs", multiple=True, metavar="KEY=VALUE", help="Set a variable. Repeatable."),
        _runner_option,
        _cache_option,
    ]
    fields = ("src", "out", "hostname", "user", "cpus", "env_pairs", "runner", "cache_dir")

    @functools.wraps(function)
    def collect(**params: Any) -> None:
        sandbox = SandboxArguments(**{name: params.pop(name) for name in fields})
        function(sandbox=sandbox, **params)

    wrapped: Callable[..., None] = collect
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


@env.command()
@click.argument("name")
@_sandbox_options
def shell(name: str, sandbox: SandboxArguments) -> None:
    """Open an interactive shell in NAME (no network, read-only root, writable /out)."""
    prompt = ("TERM=xterm", "PS1=[env " + name + "] \\w# ")
    sandbox.run(name, ["/bin/bash", "--norc", "-i"], extra_env=prompt, interactive=True)


@env.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@_sandbox_options
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), help="Write output here.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(name: str, sandbox: SandboxArguments, log_path: Path | None, command: tuple[str, ...]) -> None:
    """Run COMMAND in NAME's sandbox; exits with the command's exit status."""
    sandbox.run(name, command, log_path=log_path)
