"""Every runner available here, for real: no network, read-only except /out, clean env, fixed hostname.

Fast tests use a tiny rootfs tarball made from this host's own bash and coreutils (conftest's
``tiny_image``; the runners treat it exactly like the real one: same tarball -> digest check ->
unpack/import -> run path). Slow tests repeat the isolation checks in the real bookworm-cpython rootfs.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from verify.common.errors import OperationalError, ToolMissing, VerificationFailed
from verify.environments.bwrap import BwrapRunner, bwrap_command
from verify.environments.docker import DockerRunner, docker_run_command
from verify.environments.errors import RunnerError
from verify.environments.interface import Bind, RootfsImage, Runner, SandboxSpec
from verify.environments.podman import PodmanRunner, capped_ulimits, image_tag, podman_run_command
from verify.environments.runners import get_runner
from verify.environments.sandbox import SandboxSpecError, cpu_selection, user_ids

SPEC_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LC_ALL": "C", "REPRO": "1"}
# What each runner adds on its own: constants or values from the spec, never from the host.
RUNNER_EXTRA_ENV = {"bwrap": {"PWD": "/"}, "podman": {"container": "podman", "HOSTNAME": "reprobuild"}}


def _available(runner: Runner) -> bool:
    try:
        runner.check_available()
    except OperationalError:
        return False
    return True


@pytest.fixture(params=["bwrap", "podman"])
def runner(request: pytest.FixtureRequest, tiny_image: RootfsImage) -> Iterator[Runner]:
    chosen = get_runner(request.param)
    if not _available(chosen):
        pytest.skip(f"{request.param} is not usable on this machine")
    yield chosen


def _run(
    runner: Runner, image: RootfsImage, script: str | list[str], spec: SandboxSpec, tmp_path: Path
) -> tuple[int, str]:
    log = tmp_path / f"{runner.name}.log"
    command = ["bash", "-c", script] if isinstance(script, str) else script
    result = runner.run(image, command, spec, log_path=log)
    assert result.log_path == log
    return result.returncode, log.read_text()


def _spec(tmp_path: Path, **changes: object) -> SandboxSpec:
    src = tmp_path / "src"
    out = tmp_path / "out"
    src.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    (src / "input.txt").write_text("source\n")
    values: dict[str, object] = {
        "binds": (Bind(src, "/src"), Bind(out, "/out", writable=True)),
        "env": SPEC_ENV,
        "hostname": "reprobuild",
    }
    values.update(changes)
    return SandboxSpec(**values)  # type: ignore[arg-type]


def _probe_listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    return listener


PROBE = "exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED || echo REFUSED"


def check_network_unreachable(runner: Runner, image: RootfsImage, tmp_path: Path) -> None:
    with _probe_listener() as listener:
        port = listener.getsockname()[1]
        # Control: the same probe from the host does connect, so a failure inside means isolation.
        host = subprocess.run(["bash", "-c", PROBE.format(port=port)], capture_output=True, text=True, check=False)
        assert "CONNECTED" in host.stdout
        listener.accept()[0].close()
        code, output = _run(runner, image, PROBE.format(port=port) + "; cat /proc/net/dev", _spec(tmp_path), tmp_path)
        assert code == 0, output
        assert "REFUSED" in output and "CONNECTED" not in output
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing from inside the sandbox ever reached the host's listener
        # /proc/net/dev rows are "  NAME: counters..."; stderr lines may interleave anywhere.
        interfaces = set(re.findall(r"^\s*([\w.-]+):\s+\d+\s+\d+", output, flags=re.MULTILINE))
        assert "lo" in interfaces
        assert interfaces <= {"lo"}, interfaces


def check_writes_confined(runner: Runner, image: RootfsImage, tmp_path: Path) -> None:
    script = (
        "for p in /out/made /src/no /etc/no /usr/no /no /tmp/private /dev/shm/sem; do "
        'touch "$p" 2>/dev/null && echo "$p yes" || echo "$p no"; done; cat /src/input.txt'
    )
    code, output = _run(runner, image, script, _spec(tmp_path), tmp_path)
    assert code == 0, output
    verdicts = dict(line.split() for line in output.splitlines() if line.startswith("/"))
    assert verdicts == {
        "/out/made": "yes",
        "/src/no": "no",
        "/etc/no": "no",
        "/usr/no": "no",
        "/no": "no",
        "/tmp/private": "yes",
        "/dev/shm/sem": "yes",
    }
    assert "source" in output  # the read-only source is readable
    assert (tmp_path / "out" / "made").is_file()
    assert not (tmp_path / "src" / "no").exists()


def check_environment_clean(
    runner: Runner, image: RootfsImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPYTHON_VERIFY_LEAK_CANARY", "host-secret")
    code, output = _run(runner, image, ["env"], _spec(tmp_path), tmp_path)  # no shell: it would add PWD, SHLVL
    assert code == 0, output
    seen = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert "host-secret" not in output
    for key, value in SPEC_ENV.items():
        assert seen[key] == value
    extra = {key: value for key, value in seen.items() if key not in SPEC_ENV}
    assert extra.items() <= RUNNER_EXTRA_ENV[runner.name].items(), extra


def check_hostname_and_devices(runner: Runner, image: RootfsImage, tmp_path: Path) -> None:
    script = "cat /proc/sys/kernel/hostname; test -c /dev/ptmx && echo PTMX; cat /proc/mounts"
    code, output = _run(runner, image, script, _spec(tmp_path), tmp_path)
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "reprobuild" != socket.gethostname()
    assert "PTMX" in lines
    mounts = {fields[1]: fields[2] for fields in (line.split() for line in lines) if len(fields) >= 3}
    assert mounts.get("/dev/shm") == "tmpfs"  # POSIX semaphores: CPython's configure checks
    assert mounts.get("/tmp") == "tmpfs"
    assert mounts.get("/dev/pts") == "devpts"


def test_network_is_unreachable(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    check_network_unreachable(runner, tiny_image, tmp_path)


def test_writes_outside_out_fail(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    check_writes_confined(runner, tiny_image, tmp_path)


def test_host_environment_does_not_leak(
    runner: Runner, tiny_image: RootfsImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_environment_clean(runner, tiny_image, tmp_path, monkeypatch)


def test_hostname_is_fixed_and_dev_is_complete(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    check_hostname_and_devices(runner, tiny_image, tmp_path)


def test_user_and_cpu_variations(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    code, output = _run(
        runner,
        tiny_image,
        "id -u; id -g; nproc; touch /out/as-nobody && echo WROTE",
        _spec(tmp_path, user="nobody", cpus=1),
        tmp_path,
    )
    assert code == 0, output
    assert output.splitlines() == ["65534", "65534", "1", "WROTE"]
    assert (tmp_path / "out" / "as-nobody").stat().st_uid == os.getuid()  # lands as the invoking user
    code, output = _run(runner, tiny_image, "id -u; nproc", _spec(tmp_path), tmp_path)
    assert output.splitlines() == ["0", str(len(os.sched_getaffinity(0)))]


def test_exit_status_is_the_commands(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    code, _ = _run(runner, tiny_image, "exit 7", _spec(tmp_path), tmp_path)
    assert code == 7


def test_tampered_tarball_is_never_unpacked_or_imported(tiny_image: RootfsImage, tmp_path: Path) -> None:
    tarball = tmp_path / f"{tiny_image.sha256}.tar"
    data = bytearray(tiny_image.tarball.read_bytes())
    data[-1000] ^= 1
    tarball.write_bytes(bytes(data))
    bad = RootfsImage(name="tampered-test", tarball=tarball, sha256=tiny_image.sha256, lock_sha256="0" * 64)
    with pytest.raises(VerificationFailed, match="expected"):
        BwrapRunner().run(bad, ["true"], _spec(tmp_path))
    assert not tarball.with_name(f"{tiny_image.sha256}.unpacked").exists()
    if _available(PodmanRunner()):
        with pytest.raises(VerificationFailed, match="expected"):
            PodmanRunner().ensure_image(bad)


# -- things that need no sandbox -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runner_class", "program", "package"),
    [(BwrapRunner, "bwrap", "bubblewrap"), (PodmanRunner, "podman", "podman"), (DockerRunner, "docker", "docker.io")],
)
def test_missing_runner_binary_names_the_package(
    runner_class: type[Runner], program: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is installed
    with pytest.raises(ToolMissing) as error:
        runner_class().check_available()
    assert error.value.message == f"{program} is not installed; install the Debian package '{package}'"


def test_podman_without_runc_names_runc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman is not installed")
    (tmp_path / "podman").symlink_to(podman)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="'runc'"):
        PodmanRunner().check_available()


def test_docker_client_without_engine_is_an_operational_error() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client installed")
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, check=False)
    if probe.returncode == 0:
        pytest.skip("a Docker engine answers here")
    with pytest.raises(RunnerError, match="no Docker engine"):
        DockerRunner().check_available()


def test_unknown_runner_is_refused() -> None:
    with pytest.raises(OperationalError, match="bwrap, podman, docker"):
        get_runner("lxc")


def test_container_command_lines(tiny_image: RootfsImage, tmp_path: Path) -> None:
    spec = _spec(tmp_path, user="nobody", cpus=1)
    tag = image_tag(tiny_image, engine="docker")
    docker = docker_run_command(tag, ["make", "-j1"], spec)
    assert docker[:2] == ["docker", "run"]
    assert docker[-3:] == [tag, "make", "-j1"]
    for expected in (
        ["--network=none"],
        ["--read-only"],
        ["--rm"],
        ["--hostname", "reprobuild"],
        ["--user", "65534:65534"],
        ["--cpuset-cpus", str(cpu_selection(1)[0])],  # type: ignore[index]
        ["--tmpfs", "/tmp:exec"],
        ["--pull=never"],
        ["--mount", f"type=bind,source={tmp_path / 'src'},target=/src,readonly"],
        ["--mount", f"type=bind,source={tmp_path / 'out'},target=/out"],
        ["--env", "REPRO=1"],
    ):
        assert _contains(docker, expected), expected
    assert "--interactive" not in docker and "--tty" in docker_run_command(tag, ["bash"], spec, interactive=True)
    podman = podman_run_command(image_tag(tiny_image), ["true"], spec, ulimits={"nofile": 1024, "nproc": 512})
    for expected in (
        ["--runtime", "runc"],
        ["--network=none"],
        ["--unsetenv-all"],
        ["--ulimit", "nofile=1024:1024"],
        ["--ulimit", "nproc=512:512"],
        ["--read-only"],
    ):
        assert _contains(podman, expected), expected
    bwrap = bwrap_command(Path("/rootfs"), ["true"], spec)
    assert bwrap[:3] == ["taskset", "--cpu-list", str(cpu_selection(1)[0])]  # type: ignore[index]
    for expected in (
        ["--unshare-all"],
        ["--clearenv"],
        ["--ro-bind", "/rootfs", "/"],
        ["--tmpfs", "/dev/shm"],
        ["--ro-bind", str(tmp_path / "src"), "/src"],
        ["--bind", str(tmp_path / "out"), "/out"],
        ["--uid", "65534"],
        ["--hostname", "reprobuild"],
    ):
        assert _contains(bwrap, expected), expected


def _contains(argv: list[str], expected: list[str]) -> bool:
    return any(argv[i : i + len(expected)] == expected for i in range(len(argv)))


def test_ulimits_never_exceed_the_hosts_hard_limits() -> None:
    import resource

    limits = capped_ulimits()
    for name, which in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(which)[1]
        assert limits[name] > 0 and (hard == resource.RLIM_INFINITY or limits[name] <= hard)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user": "bob"}, "not 'root'"),
        ({"cpus": 0}, "CPU"),
        ({"cpus": 10_000}, "CPU"),
        ({"cwd": "relative"}, "absolute"),
        ({"binds": (Bind(Path("/nonexistent-dir-xyz"), "/src"),)}, "existing"),
        ({"binds": (Bind(Path("/usr"), "/"),)}, "other than /"),
        ({"binds": (Bind(Path("/usr"), "/a,b"),)}, "comma"),
        ({"env": {"A=B": "x"}}, "invalid"),
    ],
)
def test_bad_sandbox_specs_are_refused_before_running(
    tiny_image: RootfsImage, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(SandboxSpecError, match=message):
        BwrapRunner().run(tiny_image, ["true"], _spec(tmp_path, **changes))


def test_user_names() -> None:
    assert user_ids("root") == (0, 0)
    assert user_ids("nobody") == (65534, 65534)
    assert user_ids("1000:100") == (1000, 100)
    assert user_ids("1000") == (1000, 1000)


# -- the real environment (slow) --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("runner_name", ["bwrap", "podman"])
def test_real_environment_is_isolated(
    runner_name: str, real_image: RootfsImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = get_runner(runner_name)
    runner.check_available()  # both must work here: a skip would hide a broken runner
    check_network_unreachable(runner, real_image, tmp_path)
    check_writes_confined(runner, real_image, tmp_path)
    check_environment_clean(runner, real_image, tmp_path, monkeypatch)
    check_hostname_and_devices(runner, real_image, tmp_path)
    code, output = _run(
        runner, real_image, "gcc --version | head -1; pkg-config --modversion openssl", _spec(tmp_path), tmp_path
    )
    assert code == 0 and "gcc" in output, output


# -- loopback and localhost with the network cut ------------------------------------------------------

LOOPBACK_PROBE_C = r"""
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* Listen on 127.0.0.1, connect to it by the name "localhost", and pass one message through. */
int main(void) {
    struct sockaddr_in address = {0};
    socklen_t length = sizeof address;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 1)
        || getsockname(listener, (struct sockaddr *)&address, &length)) { perror("listen"); return 1; }
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(address.sin_port));
    struct addrinfo hints = {0}, *found;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int error = getaddrinfo("localhost", port, &hints, &found);
    if (error) { printf("RESOLVE-FAILED %s\n", gai_strerror(error)); return 1; }
    int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, found->ai_addr, found->ai_addrlen)) { perror("connect"); return 1; }
    int server = accept(listener, NULL, NULL);
    char buffer[8] = {0};
    if (write(client, "ping", 4) != 4 || read(server, buffer, 4) != 4) { perror("transfer"); return 1; }
    printf("LOOPBACK-TCP %s via localhost:%s\n", buffer, port);
    return 0;
}
"""


def test_localhost_resolves_and_loopback_tcp_works_without_network(
    runner: Runner, tiny_image: RootfsImage, tmp_path: Path
) -> None:
    spec = _spec(tmp_path)
    source = tmp_path / "loopback.c"
    source.write_text(LOOPBACK_PROBE_C)
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler on this host")
    subprocess.run([cc, "-O1", "-o", str(tmp_path / "src" / "loopback"), str(source)], check=True)
    code, output = _run(runner, tiny_image, "getent hosts localhost; /src/loopback; getent hosts reprobuild",
                        spec, tmp_path)  # fmt: skip
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].split() in (["127.0.0.1", "localhost"], ["::1", "localhost", "ip6-localhost", "ip6-loopback"])
    assert lines[1].startswith("LOOPBACK-TCP ping via localhost:"), output  # resolved to 127.0.0.1, connected
    assert lines[2].split() == ["127.0.1.1", "reprobuild"], output  # the sandbox's own name resolves too
    # The same, every time and on every runner: no host entries, no container name.
    assert "host.containers.internal" not in output and socket.gethostname() not in output.replace("reprobuild", "")


# -- variations applied from the host: each proven inside the sandbox -----------------------------------


def _needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/bootstrap installs it)")


def test_time_variation_shifts_the_clock_inside(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    from verify.environments.perturb import find_libfaketime

    try:
        find_libfaketime()
    except ToolMissing:
        pytest.skip("libfaketime is not installed (scripts/bootstrap installs it)")
    code, output = _run(runner, tiny_image, "date +%s", _spec(tmp_path, clock_offset="+397d"), tmp_path)
    assert code == 0, output
    shifted = int(output.split()[-1]) - int(time.time())
    assert abs(shifted - 397 * 86400) < 600, shifted
    code, output = _run(runner, tiny_image, "date +%s", _spec(tmp_path), tmp_path)
    assert abs(int(output.split()[-1]) - int(time.time())) < 600  # the baseline's clock is the host's


def test_fileordering_variation_reverses_directory_entries(
    runner: Runner, tiny_image: RootfsImage, tmp_path: Path
) -> None:
    _needs("disorderfs")
    spec = _spec(tmp_path, reversed_directory_order=True, cwd="/out")
    for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"):
        (tmp_path / "out" / name).write_text(name)
    host_order = os.listdir(tmp_path / "out")
    # Only this run's sandbox directories are judged: another build on the machine may hold its own
    # disorderfs mounts while this test runs.
    before = set(Path(tempfile.gettempdir()).glob("cpython-verify-sandbox-*"))
    code, output = _run(runner, tiny_image, "ls -f; touch /out/made-inside", spec, tmp_path)
    assert code == 0, output
    inside = [name for name in output.splitlines() if name not in (".", "..")]
    assert inside == list(reversed(host_order)) != host_order
    assert (tmp_path / "out" / "made-inside").is_file()  # writes go through to the real directory
    ours = set(Path(tempfile.gettempdir()).glob("cpython-verify-sandbox-*")) - before
    assert not any(os.path.ismount(mount) for sandbox in ours for mount in sandbox.glob("*"))
    code, output = _run(runner, tiny_image, "ls -f", _spec(tmp_path, cwd="/out"), tmp_path)
    assert [name for name in output.splitlines() if name not in (".", "..")] == os.listdir(tmp_path / "out")


def test_kernel_variation_changes_uname(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    _needs("setarch")
    code, output = _run(runner, tiny_image, "uname -r", _spec(tmp_path, uname_2_6=True), tmp_path)
    assert code == 0, output
    assert output.split()[-1].startswith("2.6.") and output.split()[-1] != platform.release()
    code, output = _run(runner, tiny_image, "uname -r", _spec(tmp_path), tmp_path)
    assert output.split()[-1] == platform.release()


STACK_OF_TWO_PROCESSES = (
    'for run in 1 2; do bash -c \'while read -r line; do case $line in *\\[stack\\]*) echo "$line";; esac; '
    "done < /proc/self/maps'; done; cat /proc/self/personality"
)


def test_aslr_variation_turns_randomisation_off(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    _needs("setarch")
    if Path("/proc/sys/kernel/randomize_va_space").read_text().strip() == "0":
        pytest.skip("ASLR is off on this host: nothing to toggle")
    code, output = _run(runner, tiny_image, STACK_OF_TWO_PROCESSES, _spec(tmp_path, aslr=False), tmp_path)
    assert code == 0, output
    first, second, personality = output.splitlines()[-3:]
    assert first == second and int(personality, 16) & 0x0040000  # the same stack address twice: no randomisation
    code, output = _run(runner, tiny_image, STACK_OF_TWO_PROCESSES, _spec(tmp_path), tmp_path)
    first, second, personality = output.splitlines()[-3:]
    assert first != second and not int(personality, 16) & 0x0040000


def test_probe_proves_every_host_variation_at_once(runner: Runner, tiny_image: RootfsImage, tmp_path: Path) -> None:
    from verify.environments.perturb import probe

    for tool in ("setarch", "disorderfs"):
        _needs(tool)
    spec = _spec(tmp_path, clock_offset="+397d", uname_2_6=True, aslr=False, reversed_directory_order=True, cwd="/src")
    (tmp_path / "src" / "second.txt").write_text("x")
    report = probe(runner, tiny_image, spec, tmp_path / "probe.log")
    assert set(report.proofs) == {"time", "kernel", "aslr", "fileordering"}
    assert report.uname.startswith("2.6.") and "+397.00 days" in report.proofs["time"]
