"""The build sandbox's promises, checked from inside it (``cpython-verify env probe``).

Every runner promises the same four things. The probe runs one bash script in the runner's sandbox,
with the binds of a build (a writable ``/build`` and ``/out``), and judges each promise on evidence
the host gathers on its own side as well:

``network``
    Nothing outside is reachable. The host listens (TCP and UDP) on 127.0.0.1, ::1 and every other
    address it has, and on an abstract UNIX socket; the script tries each. Kept when no listener saw
    anything, every attempt failed inside, the only interface is ``lo`` and the abstract socket is
    not even listed.
``writes``
    Only the build and output directories take writes, besides the sandbox's own private tmpfs
    mounts (``/tmp``, ``/dev/shm``...: new file systems that end with the sandbox). The script tries
    to create a file in every directory two levels deep and in every mount point. Kept when each
    write that succeeded is in a writable bind or on a private file system, and the process holds no
    capability past a container engine's default set (with ``CAP_SYS_ADMIN`` a build could remount
    the read-only root writable; with ``CAP_DAC_READ_SEARCH`` open any file of a bound file system
    by handle).
``reads``
    The host's home, the cache's root and a sibling of the build's directories (another cache
    entry) hold a file with a random name that the script tries to read; none may be readable.
    Every mount inside that comes from a host file system must be the environment (``/``), one of
    the binds (from exactly its host directory), or a single file the runner provides
    (``/etc/hosts``, and podman's ``/etc/hostname``, ``/etc/passwd``...). No host process is visible.
``environment``
    The root file system is the tarball whose digest the lock names: the tarball is hashed, and every
    entry inside (type, mode, owner, size, sha256, link target), listed by ``find`` and ``sha256sum``
    in the sandbox, equals its member; nothing is missing or added outside the runner's mount points
    (``/`` itself is one: its mode is the runner's mount's). In a user namespace (bwrap's), an owner
    the namespace does not map shows as the kernel's overflow id: such entries are counted and said.

The script needs ``bash``, ``find``, ``xargs``, ``sha256sum`` and ``rm`` in the environment (every
Debian rootfs has them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from verify.common.errors import OperationalError
from verify.environments.interface import Bind, RootfsImage, Runner, SandboxSpec
from verify.environments.trees import TreeEntry, differences, runner_addition, summarize, tarball_tree

BUILD = "/build"
OUT = "/out"
CANARY_PREFIX = ".cpython-verify-probe-"
SAFE_CAPABILITIES = {
    0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 3: "CAP_FOWNER", 4: "CAP_FSETID", 5: "CAP_KILL", 6: "CAP_SETGID",
    7: "CAP_SETUID", 8: "CAP_SETPCAP", 10: "CAP_NET_BIND_SERVICE", 13: "CAP_NET_RAW", 18: "CAP_SYS_CHROOT",
    27: "CAP_MKNOD", 29: "CAP_AUDIT_WRITE", 31: "CAP_SETFCAP",
}  # fmt: skip
"""The capabilities Docker and podman grant a container by default: none reaches past its mounts."""
CAPABILITY_NAMES = {
    **SAFE_CAPABILITIES, 2: "CAP_DAC_READ_SEARCH", 9: "CAP_LINUX_IMMUTABLE", 11: "CAP_NET_BROADCAST",
    12: "CAP_NET_ADMIN", 14: "CAP_IPC_LOCK", 15: "CAP_IPC_OWNER", 16: "CAP_SYS_MODULE", 17: "CAP_SYS_RAWIO",
    19: "CAP_SYS_PTRACE", 20: "CAP_SYS_PACCT", 21: "CAP_SYS_ADMIN", 22: "CAP_SYS_BOOT", 23: "CAP_SYS_NICE",
    24: "CAP_SYS_RESOURCE", 25: "CAP_SYS_TIME", 26: "CAP_SYS_TTY_CONFIG", 28: "CAP_LEASE", 30: "CAP_AUDIT_CONTROL",
    32: "CAP_MAC_OVERRIDE", 33: "CAP_MAC_ADMIN", 34: "CAP_SYSLOG", 35: "CAP_WAKE_ALARM", 36: "CAP_BLOCK_SUSPEND",
    37: "CAP_AUDIT_READ", 38: "CAP_PERFMON", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE",
}  # fmt: skip
PRIVATE_FILESYSTEMS = frozenset({"tmpfs", "devpts", "mqueue", "proc", "sysfs", "cgroup", "cgroup2"})
"""File systems a sandbox mounts for itself: private to it unless one is the host's own (same device)."""
RUNNER_FILES = frozenset({"/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/passwd", "/etc/group",
                          "/run/.containerenv"})  # fmt: skip
"""Single files a runner may mount from the host (its own generated copies)."""
MAX_SANDBOX_PROCESSES = 16
"""More processes than this visible inside means the PID namespace is the host's (the probe runs ~5)."""

PROBE_SCRIPT = r"""
set -u
token=$PROBE_TOKEN
echo "probe begin"
while read -r proto address port; do
  [ -n "${proto:-}" ] || continue
  if [ "$proto" = tcp ]; then
    if (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null; then echo "net tcp $address $port reached"
    else echo "net tcp $address $port failed"; fi
  else
    if (printf '%s\n' "$token" >"/dev/udp/$address/$port") 2>/dev/null; then echo "net udp $address $port sent"
    else echo "net udp $address $port failed"; fi
  fi
done <<<"$PROBE_NET"
while IFS= read -r line; do echo "netdev $line"; done </proc/net/dev
while IFS= read -r line; do case $line in *"$token"*) echo "unix-listed $line";; esac; done </proc/net/unix
count=0; for pid in /proc/[0-9]*; do count=$((count + 1)); done; echo "processes $count"
while read -r key value _; do [ "$key" = CapEff: ] && echo "capabilities $value"; done </proc/self/status
while read -r inside outside count; do echo "uidmap $inside $outside $count"; done </proc/self/uid_map
while read -r inside outside count; do echo "gidmap $inside $outside $count"; done </proc/self/gid_map
while IFS= read -r path; do
  [ -n "$path" ] || continue
  if (: <"$path") 2>/dev/null; then echo "read yes $path"; else echo "read no $path"; fi
done <<<"$PROBE_READ"
while IFS= read -r line; do echo "mount $line"; done </proc/self/mountinfo
probe_write() {
  local dir=$1 file
  file="${dir%/}/$PROBE_CANARY"
  if (: >"$file") 2>/dev/null; then echo "write yes ${dir%/}/"; rm -f -- "$file"; else echo "write no ${dir%/}/"; fi
}
for dir in / /*/ /*/*/; do
  case $dir in /proc/*|/sys/*) continue;; esac
  [ -d "$dir" ] && [ ! -L "${dir%/}" ] && probe_write "$dir"
done
while read -r _ _ _ _ point _; do
  point=$(printf '%b' "${point//\\/\\0}")
  if [ ! -d "$point" ]; then echo "mountfile $point"; continue; fi
  echo "mountdir $point"
  case $point in /proc|/proc/*|/sys|/sys/*) ;; *) probe_write "$point";; esac
done </proc/self/mountinfo
find / -xdev -printf '%y %m %U %G %s %p\0%l\0' >"$PROBE_OUT/tree" 2>"$PROBE_OUT/tree.errors"
find / -xdev -type f -print0 2>/dev/null | xargs -0 -r sha256sum -z >"$PROBE_OUT/sums" 2>"$PROBE_OUT/sums.errors"
echo "probe end"
"""
"""The script run in the sandbox (bash); its lines are judged on the host by :func:`judge`."""


class ProbeError(OperationalError):
    """The probe could not run (no bash in the environment, the sandbox did not start)."""


@dataclass(frozen=True, slots=True)
class PromiseCheck:
    """One promise and whether the probe found it kept, with the evidence on one line."""

    promise: str
    kept: bool
    evidence: str


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """Every promise the probe checked in one runner's sandbox."""

    runner: str
    rootfs_sha256: str
    checks: tuple[PromiseCheck, ...]

    @property
    def kept(self) -> bool:
        """True only when promises were checked and every one was kept."""
        return bool(self.checks) and all(check.kept for check in self.checks)

    def check(self, promise: str) -> PromiseCheck:
        """The check of ``promise`` (``network``, ``writes``, ``reads``, ``environment``)."""
        return next(check for check in self.checks if check.promise == promise)


# -- the tarball and the tree inside ----------------------------------------------------------------------


def inside_tree(tree: bytes, sums: bytes) -> dict[str, TreeEntry]:
    """The entries ``find -printf '%y %m %U %G %s %p\\0%l\\0'`` and ``sha256sum -z`` listed inside."""
    digests: dict[str, str] = {}
    for record in sums.split(b"\0"):
        if record:
            digest, _, name = record.decode("utf-8", "surrogateescape").partition("  ")
            digests[name] = digest
    fields = tree.split(b"\0")
    entries: dict[str, TreeEntry] = {}
    for header, target in zip(fields[0::2], fields[1::2], strict=False):
        if not header:
            continue
        kind, mode, uid, gid, size, path = header.decode("utf-8", "surrogateescape").split(" ", 5)
        entries[path] = TreeEntry(
            kind=kind,
            mode=int(mode, 8),
            uid=int(uid),
            gid=int(gid),
            size=int(size) if kind == "f" else None,
            sha256=digests.get(path) if kind == "f" else None,
            target=target.decode("utf-8", "surrogateescape") if kind == "l" else None,
        )
    return entries


# -- mounts -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of ``/proc/<pid>/mountinfo``."""

    device: str
    root: str
    point: str
    options: frozenset[str]
    fstype: str


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a ``mountinfo`` file (octal escapes in paths undone)."""
    mounts = []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 6 or not tail:
            continue
        mounts.append(Mount(device=fields[2], root=_unescape(fields[3]), point=_unescape(fields[4]),
                            options=frozenset(fields[5].split(",")), fstype=tail[0]))  # fmt: skip
    return mounts


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount ``path`` lies on: the deepest mount point above it (the last mounted wins a tie)."""
    best: Mount | None = None
    for mount in mounts:
        if _is_within(path, mount.point) and (best is None or len(mount.point) >= len(best.point)):
            best = mount
    return best


def _is_within(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


# -- what the host sets up around the run ---------------------------------------------------------------


def host_addresses() -> list[str]:
    """Every address of this host to listen on: 127.0.0.1, and every other local IPv4 address (from the
    kernel's routing table, secondary addresses included) and non-link-local IPv6 address."""
    found = ["127.0.0.1"]
    with contextlib.suppress(OSError):
        last = None
        for line in Path("/proc/net/fib_trie").read_text().splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == "|--":
                last = words[1]
            elif words[:3] == ["/32", "host", "LOCAL"] and last is not None:
                found.append(last)
    with contextlib.suppress(OSError), Path("/proc/net/if_inet6").open() as table:
        for line in table:
            address = ipaddress.IPv6Address(int(line.split()[0], 16))
            if not address.is_link_local:
                found.append(str(address))
    return sorted(set(found), key=found.index)


@dataclass
class _HostServices:
    """TCP and UDP listeners on every host address and an abstract UNIX socket; records any contact."""

    token: str
    sockets: list[socket.socket] = field(default_factory=list)
    targets: list[tuple[str, str, int]] = field(default_factory=list)
    contacts: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> _HostServices:
        for address in host_addresses():
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            for kind, proto in ((socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")):
                try:
                    listener = socket.socket(family, kind)
                    listener.bind((address, 0))
                except OSError:
                    continue
                if proto == "tcp":
                    listener.listen(8)
                listener.setblocking(False)
                self.sockets.append(listener)
                self.targets.append((proto, address, listener.getsockname()[1]))
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(f"\0{CANARY_PREFIX}{self.token}")
        unix.listen(8)
        unix.setblocking(False)
        self.sockets.append(unix)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        import selectors

        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    self._record(key.fileobj)  # type: ignore[arg-type]

    def _record(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if sock.type == socket.SOCK_DGRAM:
                _, sender = sock.recvfrom(4096)
                self.contacts.append(f"udp {sock.getsockname()[0]}:{sock.getsockname()[1]} from {sender}")
            else:
                connection, sender = sock.accept()
                connection.close()
                where = sock.getsockname()
                self.contacts.append(f"{'unix' if sock.family == socket.AF_UNIX else 'tcp'} {where} from {sender}")

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


@contextlib.contextmanager
def _canaries(places: Mapping[str, Path], token: str) -> Iterator[dict[str, Path]]:
    """A file holding ``token`` in each place (``what -> directory``); all removed afterwards."""
    made: dict[str, Path] = {}
    try:
        for what, directory in places.items():
            with contextlib.suppress(OSError):  # a read-only or missing home is simply not a place to check
                path = directory / f"{CANARY_PREFIX}{token}"
                path.write_text(token)
                made[what] = path
        yield made
    finally:
        for path in made.values():
            with contextlib.suppress(OSError):
                path.unlink()


# -- running and judging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the host knows, to judge the script's output against."""

    spec: SandboxSpec
    canaries: Mapping[str, str]
    """what -> host path of each canary file."""
    targets: tuple[tuple[str, str, int], ...]
    contacts: tuple[str, ...]
    host_devices: frozenset[str]
    host_processes: int
    tarball_sha256: str
    pinned_sha256: str
    tarball: Mapping[str, TreeEntry]
    inside: Mapping[str, TreeEntry]
    overflow_id: int = 65534
    """The kernel's overflow uid/gid (``/proc/sys/kernel/overflowuid``): what an unmapped owner shows as."""


def probe_sandbox(
    runner: Runner,
    image: RootfsImage,
    *,
    work_dir: Path,
    cache_root: Path,
    pinned_sha256: str | None = None,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProbeReport:
    """Run the probe in ``runner``'s sandbox of ``image`` and judge every promise.

    ``work_dir`` (created, and removed afterwards) holds the build and output directories bound into
    the sandbox; canaries go in its parent (a sibling entry), in ``cache_root`` and in ``home``
    (default: this user's). ``pinned_sha256`` is the digest the lock names (default: the image's).
    """
    token = secrets.token_hex(8)
    pinned = pinned_sha256 or image.sha256
    tarball_sha256, tarball = tarball_tree(image.tarball)
    build, out = work_dir / "build", work_dir / "out"
    build.mkdir(parents=True)
    out.mkdir()
    places = {
        "the host's home": home or Path.home(),
        "the cache root": cache_root,
        "another cache entry": work_dir.parent,
        "the host's /tmp": Path("/tmp"),  # noqa: S108 - the host's own, probed from inside
    }
    try:
        with _canaries(places, token) as canaries, _HostServices(token) as services:
            spec = SandboxSpec(
                binds=(Bind(build, BUILD, writable=True), Bind(out, OUT, writable=True)),
                env={
                    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LC_ALL": "C",
                    **(env or {}),
                    "PROBE_TOKEN": token,
                    "PROBE_CANARY": f"{CANARY_PREFIX}{token}",
                    "PROBE_OUT": OUT,
                    "PROBE_NET": "\n".join(f"{proto} {address} {port}" for proto, address, port in services.targets),
                    "PROBE_READ": "\n".join(str(path) for path in canaries.values()),
                },
                cwd=BUILD,
            )
            devices_before = _host_devices()
            host_processes = sum(1 for entry in Path("/proc").iterdir() if entry.name.isdigit())
            log = work_dir / "probe.log"
            result = runner.run(image, ["bash", "-c", PROBE_SCRIPT], spec, log_path=log)
            # A device number is the host's only if it was mounted on the host both before and after the
            # run: anonymous device numbers are reused, and one freed by another container meanwhile may
            # be the number of this sandbox's own new tmpfs.
            host_devices = devices_before & _host_devices()
            output = log.read_text(errors="replace")
            if result.returncode != 0 or "probe end" not in output:
                tail = " | ".join(output.strip().splitlines()[-3:])
                raise ProbeError(
                    f"the probe did not run to its end in the {runner.name} sandbox (exit status "
                    f"{result.returncode}; it needs bash, find, xargs, sha256sum and rm): {tail[:300]}"
                )
            facts = HostFacts(
                spec=spec,
                canaries={what: str(path) for what, path in canaries.items()},
                targets=tuple(services.targets),
                contacts=tuple(services.contacts),
                host_devices=host_devices,
                host_processes=host_processes,
                tarball_sha256=tarball_sha256,
                pinned_sha256=pinned,
                tarball=tarball,
                inside=inside_tree((out / "tree").read_bytes(), (out / "sums").read_bytes()),
                overflow_id=_overflow_id(),
            )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return ProbeReport(runner=runner.name, rootfs_sha256=image.sha256, checks=judge(output, facts))


def _overflow_id() -> int:
    try:
        return int(Path("/proc/sys/kernel/overflowuid").read_text())
    except (OSError, ValueError):
        return 65534


def _host_devices() -> frozenset[str]:
    return frozenset(mount.device for mount in parse_mountinfo(Path("/proc/self/mountinfo").read_text()))


def judge(output: str, facts: HostFacts) -> tuple[PromiseCheck, ...]:
    """Each promise, judged from the script's ``output`` and the host's ``facts`` (pure)."""
    lines = output.splitlines()
    mounts = parse_mountinfo("\n".join(line[6:] for line in lines if line.startswith("mount ")))
    return (
        _judge_network(lines, facts),
        _judge_writes(lines, mounts, facts),
        _judge_reads(lines, mounts, facts),
        _judge_environment(lines, mounts, facts),
    )


def _judge_network(lines: Sequence[str], facts: HostFacts) -> PromiseCheck:
    attempts = [line.split() for line in lines if line.startswith("net ")]
    problems = [f"{proto} {address}:{port} {verdict} from inside" for _, proto, address, port, verdict in attempts
                if verdict in ("reached", "sent") and not (proto == "udp" and _loopback(address))]  # fmt: skip
    problems += [f"the host's listener got {contact}" for contact in facts.contacts]
    interfaces = sorted({line.split()[1].rstrip(":") for line in lines
                         if line.startswith("netdev ") and ":" in line.split()[1]})  # fmt: skip
    if interfaces != ["lo"]:
        problems.append(f"interfaces inside: {', '.join(interfaces) or 'none listed'}")
    if any(line.startswith("unix-listed ") for line in lines):
        problems.append("the host's abstract UNIX socket is listed inside (the host's network namespace)")
    if len(attempts) != len(facts.targets):
        problems.append(f"only {len(attempts)} of {len(facts.targets)} host services were tried")
    addresses = sorted({address for _, address, _ in facts.targets}, key=lambda a: (":" in a, a))
    evidence = (f"{len(facts.targets)} host services (TCP and UDP on {', '.join(addresses)}) and an abstract "
                f"UNIX socket unreachable; interfaces inside: {', '.join(interfaces)}")  # fmt: skip
    return _check("network", problems, evidence)


def _loopback(address: str) -> bool:
    # A datagram to a loopback address is "sent" by the sandbox's own lo; whether it reached the host
    # is what the host's listener says.
    return ipaddress.ip_address(address).is_loopback


def _judge_writes(lines: Sequence[str], mounts: Sequence[Mount], facts: HostFacts) -> PromiseCheck:
    writable_binds = [bind.sandbox for bind in facts.spec.binds if bind.writable]
    written = [line.split(" ", 2)[2].rstrip("/") or "/" for line in lines if line.startswith("write yes ")]
    refused = [line for line in lines if line.startswith("write no ")]
    problems, private = [], set()
    for directory in written:
        if any(_is_within(directory, bind) for bind in writable_binds):
            continue
        mount = _mount_of(directory, mounts)
        if mount is not None and mount.fstype in PRIVATE_FILESYSTEMS and mount.device not in facts.host_devices:
            private.add(mount.point)
            continue
        where = f"{mount.fstype} {mount.device}" if mount else "no mount"
        problems.append(f"{directory} took a write ({where}, not private to the sandbox)")
    for bind in writable_binds:
        if bind not in written:
            problems.append(f"the writable bind {bind} refused a write: the probe cannot tell")
    capabilities = [line.split()[1] for line in lines if line.startswith("capabilities ")]
    held = _capability_names(int(capabilities[0], 16)) if capabilities else ["unknown (not reported)"]
    beyond = [name for name in held if name not in SAFE_CAPABILITIES.values()]
    if beyond:
        problems.append(f"the build holds {', '.join(beyond)} (past a container's default capabilities)")
    evidence = (f"writes only in {', '.join(writable_binds)} (binds) and the sandbox's private "
                f"{', '.join(sorted(private)) or 'nothing else'}; {len(refused)} other directories refused; "
                f"capabilities: {', '.join(held) or 'none'}")  # fmt: skip
    return _check("writes", problems, evidence)


def _capability_names(mask: int) -> list[str]:
    return [CAPABILITY_NAMES.get(bit, f"capability {bit}") for bit in range(64) if mask >> bit & 1]


def _judge_reads(lines: Sequence[str], mounts: Sequence[Mount], facts: HostFacts) -> PromiseCheck:
    problems = []
    read = {line.split(" ", 2)[2] for line in lines if line.startswith("read yes ")}
    tried = {line.split(" ", 2)[2] for line in lines if line.startswith(("read yes ", "read no "))}
    for what, path in facts.canaries.items():
        if path in read:
            problems.append(f"{what} is readable ({path})")
        elif path not in tried:
            problems.append(f"{what} was not tried")
    files = {line.split(" ", 1)[1] for line in lines if line.startswith("mountfile ")}
    binds = {bind.sandbox: str(bind.host) for bind in facts.spec.binds}
    host_paths: list[str] = []
    devices: list[str] = []
    for mount in mounts:
        if mount.fstype in PRIVATE_FILESYSTEMS and mount.device not in facts.host_devices:
            continue
        if mount.point == "/":
            host_paths.append("/ (the environment)")
        elif mount.point in binds and (mount.root == binds[mount.point] or mount.fstype.startswith("fuse")):
            host_paths.append(f"{mount.point} (bind)")
        elif mount.point in files and mount.point in RUNNER_FILES:
            host_paths.append(f"{mount.point} (the runner's file)")
        elif mount.point in files and mount.fstype == "devtmpfs" and f"/dev{mount.root}" == mount.point:
            devices.append(mount.point)  # the same device node (/dev/null, /dev/urandom...), not a file of the host
        elif mount.fstype in PRIVATE_FILESYSTEMS and mount.point.startswith(("/proc", "/sys")):
            continue  # the runner masks /proc and /sys paths with the kernel's own file systems
        else:
            problems.append(f"host {mount.fstype} {mount.root} is mounted at {mount.point}")
    processes = [int(line.split()[1]) for line in lines if line.startswith("processes ")]
    if not processes or processes[0] > MAX_SANDBOX_PROCESSES:
        problems.append(f"{processes[0] if processes else 'an unknown number of'} processes visible inside "
                        f"(the host runs {facts.host_processes}): not the sandbox's own PID namespace")  # fmt: skip
    if devices:
        host_paths.append(f"{len(devices)} device nodes")
    evidence = (
        f"{', '.join(facts.canaries)} unreadable; host file systems mounted: {', '.join(host_paths)}; "
        f"{processes[0] if processes else '?'} processes visible (the host runs {facts.host_processes})"
    )
    return _check("reads", problems, evidence)


def _judge_environment(lines: Sequence[str], mounts: Sequence[Mount], facts: HostFacts) -> PromiseCheck:
    problems = []
    if facts.tarball_sha256 != facts.pinned_sha256:
        problems.append(f"the rootfs tarball has sha256 {facts.tarball_sha256}, the lock names {facts.pinned_sha256}")
    points = [mount.point for mount in mounts if mount.point != "/"]

    def hidden(path: str) -> bool:
        # "/" is the runner's root mount: its own mode and owner are the mount's (podman shows 0555).
        return path == "/" or any(_is_within(path, point) for point in points)

    # In a user namespace (bwrap's), owners it does not map show as the overflow id: the same file,
    # seen without its owner. Counted and said, not taken for a difference in the environment.
    uids, gids = _id_map(lines, "uidmap"), _id_map(lines, "gidmap")
    expected = {path: _as_seen(entry, uids, gids, facts.overflow_id) for path, entry in facts.tarball.items()}
    unmapped = sum(1 for path, entry in facts.tarball.items() if not hidden(path) and expected[path] != entry)
    found = differences(expected, facts.inside, hidden=hidden, allowed_extra=runner_addition)
    problems += [f"inside, {problem}" for problem in summarize(found)]
    if not facts.tarball:
        problems.append("the tarball has no entries: nothing was compared")
    compared = sum(1 for path in facts.tarball if not hidden(path))
    added = sorted(path for path, entry in facts.inside.items()
                   if path not in facts.tarball and not hidden(path) and runner_addition(path, entry))  # fmt: skip
    covered = sorted({point for point in points for path in facts.tarball if _is_within(path, point)})
    owners = (f" ({unmapped} with an owner the sandbox's user namespace does not map, shown as "
              f"{facts.overflow_id})" if unmapped else "")  # fmt: skip
    evidence = (
        f"rootfs tarball sha256 {facts.tarball_sha256[:12]}… (the pinned one); {compared} of its "
        f"{len(facts.tarball)} entries equal inside in type, mode, owner, size, sha256 and link target"
        f"{owners}; nothing added{' but the runner' + chr(39) + 's ' + ', '.join(added) if added else ''}; "
        f"{len(facts.tarball) - compared} lie under the runner's mounts ({', '.join(covered) or 'none'})"
    )
    return _check("environment", problems, evidence)


def _id_map(lines: Sequence[str], key: str) -> list[tuple[int, int, int]] | None:
    """The sandbox's ``uid_map`` or ``gid_map`` as (inside, outside, count) ranges; None when the script
    printed none (then ids are taken as the host's)."""
    ranges = [tuple(int(word) for word in line.split()[1:4]) for line in lines if line.startswith(f"{key} ")]
    return [(inside, outside, count) for inside, outside, count in ranges] or None


def _as_seen(entry: TreeEntry, uids: list[tuple[int, int, int]] | None, gids: list[tuple[int, int, int]] | None,
             overflow: int) -> TreeEntry:  # fmt: skip
    """``entry`` as a process in a user namespace with these maps sees it: unmapped owners as ``overflow``."""
    return dataclasses.replace(entry, uid=_seen_id(entry.uid, uids, overflow), gid=_seen_id(entry.gid, gids, overflow))


def _seen_id(host_id: int, ranges: list[tuple[int, int, int]] | None, overflow: int) -> int:
    if ranges is None:
        return host_id
    for inside, outside, count in ranges:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return overflow


def _check(promise: str, problems: Sequence[str], evidence: str) -> PromiseCheck:
    if problems:
        return PromiseCheck(promise, False, "; ".join(problems))
    return PromiseCheck(promise, True, evidence)


def probe_environment(name: str, runner: Runner, *, cache_dir: Path | None = None) -> ProbeReport:
    """Probe ``runner``'s build sandbox of the pinned environment ``name`` (built if not cached), with
    the build's directories in the environment cache's scratch space, as a build has them in the cache."""
    from verify.common.fsutil import cache_root
    from verify.environments.lock import load_lock
    from verify.environments.rootfs import EnvironmentCache, ensure_environment

    runner.check_available()
    image = ensure_environment(name, cache_dir=cache_dir)
    scratch = EnvironmentCache.at(cache_dir).scratch()
    work = Path(tempfile.mkdtemp(dir=scratch, prefix="probe-"))
    return probe_sandbox(runner, image, work_dir=work, cache_root=cache_root(cache_dir),
                         pinned_sha256=load_lock(name).rootfs_sha256)  # fmt: skip


def describe(report: ProbeReport) -> list[str]:
    """One line per promise: ``network: kept: ...`` or ``writes: BROKEN: ...``."""
    return [f"{check.promise}: {'kept' if check.kept else 'BROKEN'}: {check.evidence}" for check in report.checks]


__all__ = [
    "PROBE_SCRIPT",
    "HostFacts",
    "Mount",
    "ProbeError",
    "ProbeReport",
    "PromiseCheck",
    "describe",
    "host_addresses",
    "inside_tree",
    "judge",
    "parse_mountinfo",
    "probe_environment",
    "probe_sandbox",
]
