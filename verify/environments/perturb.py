"""What every runner adds from the host around the sandbox: its own ``/etc/hosts``, and the variations
that need a host tool — a shifted clock (libfaketime), a 2.6 uname and ASLR off (setarch), reversed
directory order (disorderfs).

These tools run on the host (setarch and disorderfs) or are bound read-only into the sandbox from the
host (libfaketime), so the rootfs tarball — and the environment digest a result records — stays the
same; a result records the tools' versions instead (:func:`host_tool_versions`). A tool that is
missing is a one-line :class:`~verify.common.errors.ToolMissing` naming its Debian package: a variation is
never skipped silently. :func:`probe` proves, inside the sandbox, that each one is in effect.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from verify.common.errors import OperationalError, ToolMissing
from verify.common.fsutil import sha256_file
from verify.environments.interface import Bind, RootfsImage, Runner, SandboxSpec

HOSTS_PATH = "/etc/hosts"
SANDBOX_TOOLS_DIR = "/run/cpython-verify"
"""Where host files the sandbox needs (libfaketime) are bound, read-only."""
LIBFAKETIME = "libfaketime.so.1"
_LIBFAKETIME_GLOBS = ("/usr/lib/*/faketime/" + LIBFAKETIME, "/usr/lib64/faketime/" + LIBFAKETIME,
                      "/usr/lib/faketime/" + LIBFAKETIME)  # fmt: skip
ADDR_NO_RANDOMIZE = 0x0040000
"""personality(2) flag set by ``setarch -R`` (linux/personality.h)."""
_CLOCK_OFFSET = re.compile(r"^([+-])(\d{1,6})([smhdy]?)\Z")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_CLOCK_SLACK_SECONDS = 3600
"""How far the sandbox clock may be from host clock + offset: the probe takes a moment, a loaded machine longer."""


class VariationNotInEffect(OperationalError):
    """A probe inside the sandbox shows that a requested variation did not take effect."""


def hosts_file_text(hostname: str) -> str:
    """The ``/etc/hosts`` every runner provides: loopback names and the sandbox's own hostname.

    The rootfs has none (mmdebstrap writes none), and without it ``localhost`` does not resolve with
    the network cut (CPython's socket tests in a PGO training run need it). podman and docker would
    write their own, with the host's entries and a random container name: this one is the same everywhere.
    """
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"


def clock_offset_seconds(offset: str) -> int:
    """libfaketime's relative ``FAKETIME`` (``+397d``, ``-2h``, ``+30``) in seconds; anything else is refused."""
    match = _CLOCK_OFFSET.match(offset)
    if match is None:
        raise OperationalError(f"clock offset {offset!r} is not [+-]N[smhdy] (libfaketime's relative form)")
    sign, number, unit = match.groups()
    seconds = int(number) * _UNIT_SECONDS[unit]
    return -seconds if sign == "-" else seconds


def find_libfaketime() -> Path:
    """The host's ``libfaketime.so.1`` (Debian: ``/usr/lib/<multiarch>/faketime/``)."""
    for pattern in _LIBFAKETIME_GLOBS:
        for found in sorted(Path("/").glob(pattern.lstrip("/"))):
            if found.is_file():
                return found
    raise ToolMissing(LIBFAKETIME, "libfaketime")


def _program(name: str, package: str) -> Path:
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(name, package)
    return Path(found)


def _fusermount() -> Path:
    for name in ("fusermount", "fusermount3"):
        found = shutil.which(name)
        if found is not None:
            return Path(found)
    raise ToolMissing("fusermount", "fuse")


def check_host_tools(spec: SandboxSpec) -> None:
    """Raise :class:`ToolMissing` (naming the Debian package) for a tool ``spec``'s variations need."""
    if spec.clock_offset is not None:
        clock_offset_seconds(spec.clock_offset)
        find_libfaketime()
    if spec.uname_2_6 or not spec.aslr:
        _program("setarch", "util-linux")
    if spec.reversed_directory_order:
        _program("disorderfs", "disorderfs")
        _fusermount()
        if not Path("/dev/fuse").exists():
            raise ToolMissing("/dev/fuse", "fuse (and a kernel with FUSE)")


def _package_version(package: str) -> str:
    """The installed Debian version of ``package``, or ``unknown`` (not a Debian host)."""
    if shutil.which("dpkg-query") is None:
        return "unknown"
    completed = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Version}", package], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or "unknown"


def host_tool_versions(spec: SandboxSpec) -> dict[str, str]:
    """``{tool: "<Debian version>, <file> sha256 <hex>"}`` for the host tools ``spec``'s variations use."""
    check_host_tools(spec)
    tools: dict[str, tuple[str, Path]] = {}
    if spec.clock_offset is not None:
        tools["libfaketime"] = ("libfaketime", find_libfaketime())
    if spec.uname_2_6 or not spec.aslr:
        tools["setarch"] = ("util-linux", _program("setarch", "util-linux"))
    if spec.reversed_directory_order:
        tools["disorderfs"] = ("disorderfs", _program("disorderfs", "disorderfs"))
    return {
        name: f"{package} {_package_version(package)}, {path.name} sha256 {sha256_file(path.resolve())}"
        for name, (package, path) in sorted(tools.items())
    }


def personality_prefix(spec: SandboxSpec) -> list[str]:
    """``setarch`` in front of the runner's command line, when the kernel or ASLR is varied.

    A personality is inherited by every child and kept across exec, so the sandbox (bwrap, or podman
    -> conmon -> runc) and everything the build runs see it.
    """
    if not spec.uname_2_6 and spec.aslr:
        return []
    argv = ["setarch", platform.machine()]
    if spec.uname_2_6:
        argv.append("--uname-2.6")
    if not spec.aslr:
        argv.append("--addr-no-randomize")
    return argv


@contextlib.contextmanager
def host_side(spec: SandboxSpec) -> Iterator[SandboxSpec]:
    """Prepare on the host what ``spec`` needs besides the rootfs; yield the spec a runner turns into a
    command line (extra binds and environment), and undo it all afterwards.

    - ``/etc/hosts``: a generated file bound read-only (see :func:`hosts_file_text`);
    - ``clock_offset``: a copy of the host's libfaketime bound at :data:`SANDBOX_TOOLS_DIR` and preloaded;
    - ``reversed_directory_order``: each bound directory is mounted through disorderfs first.
    """
    check_host_tools(spec)
    scratch = Path(tempfile.mkdtemp(prefix="cpython-verify-sandbox-"))
    mounted: list[Path] = []
    try:
        binds = list(spec.binds)
        if spec.reversed_directory_order:
            for index, bind in enumerate(binds):
                if bind.host.is_dir():
                    mountpoint = scratch / f"disordered-{index}"
                    mountpoint.mkdir()
                    _mount_disorderfs(bind.host, mountpoint)
                    mounted.append(mountpoint)
                    binds[index] = replace(bind, host=mountpoint)
        hosts = scratch / "hosts"
        hosts.write_text(hosts_file_text(spec.hostname))
        hosts.chmod(0o644)
        binds.append(Bind(hosts, HOSTS_PATH))
        env = dict(spec.env)
        if spec.clock_offset is not None:
            tools = scratch / "tools"
            tools.mkdir()
            shutil.copyfile(find_libfaketime(), tools / LIBFAKETIME)
            binds.append(Bind(tools, SANDBOX_TOOLS_DIR))
            preload = f"{SANDBOX_TOOLS_DIR}/{LIBFAKETIME}"
            env["LD_PRELOAD"] = f"{preload}:{env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else preload
            env["FAKETIME"] = spec.clock_offset
            # The wall clock is what a build machine with a wrong clock gets wrong; its monotonic clock
            # (timeouts, durations) would still run normally.
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        yield dataclasses.replace(spec, binds=tuple(binds), env=env)
    finally:
        for mountpoint in reversed(mounted):
            _unmount(mountpoint)
        _remove_scratch(scratch, mounted)


def _mount_disorderfs(source: Path, mountpoint: Path) -> None:
    # --multi-user: allow_other, so the sandbox's processes (another user namespace, or uid) may enter.
    argv = ["disorderfs", "--quiet", "--multi-user=yes", "--reverse-dirents=yes", "--sort-dirents=no",
            str(source), str(mountpoint)]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not os.path.ismount(mountpoint):
        message = (completed.stderr.strip().splitlines() or ["no mount appeared"])[-1]
        raise OperationalError(f"disorderfs could not mount {source}: {message}")


def _unmount(mountpoint: Path) -> None:
    fusermount = str(_fusermount())
    for _attempt in range(20):
        if not os.path.ismount(mountpoint):
            return
        if subprocess.run([fusermount, "-u", "-q", str(mountpoint)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)  # a process of the sandbox may still be leaving the mount
    # Still busy: detach it lazily so the build tree can be removed; the kernel finishes the unmount.
    subprocess.run([fusermount, "-u", "-z", "-q", str(mountpoint)], capture_output=True, check=False)


def _remove_scratch(scratch: Path, mountpoints: list[Path]) -> None:
    """Remove the scratch directory without ever descending into a mount (that would be the build tree)."""
    for mountpoint in mountpoints:
        with contextlib.suppress(OSError):
            mountpoint.rmdir()  # refuses (EBUSY/ENOTEMPTY) if anything is still mounted there
    if any(mountpoint.exists() for mountpoint in mountpoints):
        return  # left for the operator rather than risk deleting through a mount
    shutil.rmtree(scratch, ignore_errors=True)


# -- probes: proof inside the sandbox that each variation is in effect -----------------------------------

PROBE_SCRIPT = (
    'echo "clock $(date +%s)"; echo "uname $(uname -r)"; echo "personality $(cat /proc/self/personality)"; ls -f -a'
)
"""Run in the sandbox's working directory: the clock, uname, personality and that directory's order."""


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What the probe saw inside the sandbox, and one line per variation it proved."""

    clock: int
    uname: str
    personality: int
    listing: tuple[str, ...]
    proofs: Mapping[str, str]


def needs_probe(spec: SandboxSpec) -> bool:
    """True when ``spec`` asks for a variation a host tool applies (and so could fail silently)."""
    return spec.clock_offset is not None or spec.uname_2_6 or not spec.aslr or spec.reversed_directory_order


def host_directory(spec: SandboxSpec, sandbox_path: str) -> Path | None:
    """The host directory a sandbox path is bound from, when it lies under one of ``spec``'s binds."""
    target = PurePosixPath(sandbox_path)
    for bind in sorted(spec.binds, key=lambda b: -len(b.sandbox)):
        root = PurePosixPath(bind.sandbox)
        if target == root or root in target.parents:
            return bind.host / target.relative_to(root)
    return None


def parse_probe(output: str, spec: SandboxSpec, *, host_clock: int, host_listing: list[str] | None) -> ProbeReport:
    """Check the probe's output against ``spec``; raise :class:`VariationNotInEffect` for any variation
    that did not take effect (and for a baseline that shows one it did not ask for)."""
    lines = output.splitlines()
    fields: dict[str, str] = {}
    listing: list[str] = []
    for line in lines:
        key, _, value = line.partition(" ")
        if key in ("clock", "uname", "personality") and key not in fields:
            fields[key] = value.strip()
        elif line not in (".", ".."):
            listing.append(line)
    try:
        clock = int(fields["clock"])
        personality = int(fields["personality"], 16)
        uname = fields["uname"]
    except (KeyError, ValueError):
        message = f"the variation probe printed no clock/uname/personality: {output[-300:]!r}"
        raise VariationNotInEffect(message) from None
    proofs: dict[str, str] = {}
    shift = clock - host_clock
    if spec.clock_offset is not None:
        wanted = clock_offset_seconds(spec.clock_offset)
        if abs(shift - wanted) > _CLOCK_SLACK_SECONDS:
            raise VariationNotInEffect(
                f"time: the clock inside the sandbox is {shift} s from the host's, not {wanted} s "
                f"(FAKETIME={spec.clock_offset}): libfaketime was not preloaded"
            )
        proofs["time"] = f"date +%s inside: {clock}, host: {host_clock} ({shift / 86400:+.2f} days)"
    if spec.uname_2_6 != uname.startswith("2.6."):
        raise VariationNotInEffect(f"kernel: uname -r inside the sandbox is {uname!r} (2.6 wanted: {spec.uname_2_6})")
    if spec.uname_2_6:
        proofs["kernel"] = f"uname -r inside: {uname}"
    no_randomize = bool(personality & ADDR_NO_RANDOMIZE)
    if no_randomize == spec.aslr:
        raise VariationNotInEffect(
            f"aslr: /proc/self/personality inside the sandbox is {personality:#010x} (ASLR wanted: {spec.aslr})"
        )
    if not spec.aslr:
        proofs["aslr"] = f"/proc/self/personality inside: {personality:#010x} (ADDR_NO_RANDOMIZE)"
    if spec.reversed_directory_order:
        if host_listing is None or len(host_listing) < 2:
            raise VariationNotInEffect(
                f"fileordering: cannot prove the order in {spec.cwd}: it must be a bound directory with 2+ entries"
            )
        if listing != list(reversed(host_listing)):
            raise VariationNotInEffect(
                f"fileordering: {spec.cwd} lists {listing[:5]}... inside the sandbox, not the host's order reversed"
            )
        proofs["fileordering"] = f"ls -f {spec.cwd} inside: the host's {len(listing)} entries in reverse order"
    return ProbeReport(clock, uname, personality, tuple(listing), proofs)


def probe(runner: Runner, image: RootfsImage, spec: SandboxSpec, log_path: Path) -> ProbeReport:
    """Run :data:`PROBE_SCRIPT` in the sandbox ``spec`` describes and check every host-applied variation.

    The directory order is compared with the host's own listing of the directory bound at ``spec.cwd``
    (read before the run: disorderfs reverses exactly that order).
    """
    directory = host_directory(spec, spec.cwd)
    # os.listdir, not Path.iterdir: the order readdir returns is the point.
    host_listing = os.listdir(directory) if directory is not None and directory.is_dir() else None  # noqa: PTH208
    host_clock = int(time.time())
    result = runner.run(image, ["/bin/sh", "-c", PROBE_SCRIPT], spec, log_path=log_path)
    output = log_path.read_text(errors="replace")
    if result.returncode != 0:
        raise VariationNotInEffect(f"the variation probe failed (exit status {result.returncode}): {output[-300:]!r}")
    return parse_probe(output, spec, host_clock=host_clock, host_listing=host_listing)
