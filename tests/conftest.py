"""Shared test fixtures: the real CPython release data lives outside the project, in one configurable place."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from httpserver import FaultyServer
from schema_support import check_cli_json

from verify.environments.bwrap import BwrapRunner, bwrap_command, unpacked_rootfs
from verify.environments.interface import RootfsImage, RunResult, SandboxSpec
from verify.environments.podman import image_tag
from verify.environments.sandbox import check_spec, run_process
from verify.source.unpack import extract_all_data

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def fixtures_root() -> Path:
    """``$CPYTHON_VERIFY_FIXTURES``, or ``../shared/fixtures`` beside the checkout."""
    configured = os.environ.get("CPYTHON_VERIFY_FIXTURES")
    return Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A ``release`` test (a real release build CI does not make, docs/testing.md) is also ``slow``: the fast
    suite (``-m "not slow"``) never runs one, whatever its module says. ``tryfirst``: before ``-m`` selects."""
    for item in items:
        if item.get_closest_marker("release") is not None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """The real release data (tarballs, signatures, bundles, keys, checksums)."""
    root = fixtures_root()
    if not (root / "cpython").is_dir():
        pytest.fail(f"real fixtures not found at {root}; set CPYTHON_VERIFY_FIXTURES")
    return root


@pytest.fixture(scope="session")
def cpython_fixtures(fixtures: Path) -> Path:
    """``fixtures/cpython``: real tarballs, ``.asc`` and ``.sigstore`` files, release metadata."""
    return fixtures / "cpython"


@pytest.fixture(scope="session")
def ftp_root(tmp_path_factory: pytest.TempPathFactory, cpython_fixtures: Path) -> Path:
    """python.org's layout for 3.13.5 (tarball, ``.asc``, ``.sigstore``), made of symbolic links to the real
    fixture files: the document root of :func:`server`."""
    root = tmp_path_factory.mktemp("www")
    release = root / "ftp" / "python" / "3.13.5"
    release.mkdir(parents=True)
    for name in ("Python-3.13.5.tar.xz", "Python-3.13.5.tar.xz.asc", "Python-3.13.5.tar.xz.sigstore"):
        (release / name).symlink_to(cpython_fixtures / name)
    return root


@pytest.fixture
def server(ftp_root: Path) -> Iterator[FaultyServer]:
    """A real HTTP server on 127.0.0.1 serving :func:`ftp_root` (a python.org mirror), faults on demand."""
    with FaultyServer(ftp_root) as running:
        yield running


def unpack_audited_parts(tarball: Path, top: str, target: Path) -> Path:
    """Unpack from a real release ``tarball`` exactly the parts the audit itself reads
    (``verify.audit.sources.SOURCE_PARTS``) under ``target``; return its ``top`` directory."""
    from verify.audit.sources import SOURCE_PARTS

    with tarfile.open(tarball) as archive:
        prefixes = tuple(f"{top}/{part}" for part in SOURCE_PARTS)
        extract_all_data(archive, target, [m for m in archive.getmembers() if m.name.startswith(prefixes)])
    return target / top


@pytest.fixture(scope="session")
def source_tree(cpython_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the audit reads of the real Python-3.11.2.tgz (the command gets it from the verified pipeline),
    shared by every audit test module."""
    target = tmp_path_factory.mktemp("source")
    return unpack_audited_parts(cpython_fixtures / "Python-3.11.2.tgz", "Python-3.11.2", target)


@pytest.fixture(scope="session")
def keys_fixtures(fixtures: Path) -> Path:
    """``fixtures/keys``: release managers' real public keys (and one key that never signs source)."""
    return fixtures / "keys"


@pytest.fixture(scope="session")
def shared_rebuild_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``--rebuild-cache`` of the slow tests that use the real 3.13.5. CI's tier (``slow and not release``)
    makes exactly one real build, the recipe's ``default`` profile with no variation: the first test that
    needs it (test_rebuild_real's ``baseline``) builds it here with a real source verdict, and every later
    one (the tool image's ``rebuild`` + ``attest``, ...) finds it in this cache. The ``release`` tier adds its
    builds (check's varied build, varied build paths, other releases) to the same cache.

    ``$CPYTHON_VERIFY_TEST_REBUILD_CACHE`` names a cache to reuse across sessions instead (then nothing is
    rebuilt that is already there: for working on the later tests, not for CI)."""
    configured = os.environ.get("CPYTHON_VERIFY_TEST_REBUILD_CACHE")
    return Path(configured) if configured else tmp_path_factory.mktemp("shared-rebuilds")


@pytest.fixture(scope="session")
def real_image(tmp_path_factory: pytest.TempPathFactory) -> RootfsImage:
    """bookworm-cpython, built for real (or reused from $CPYTHON_VERIFY_TEST_CACHE between CI runs): one
    build per session for every slow test that runs in the real environment."""
    from verify.environments import ensure_environment

    configured = os.environ.get("CPYTHON_VERIFY_TEST_CACHE")
    cache = Path(configured) if configured else tmp_path_factory.getbasetemp() / "env-cache"
    return ensure_environment("bookworm-cpython", cache_dir=cache)


# -- the command line as a user runs it ---------------------------------------------------------------------


def cli_command(*args: object) -> list[str]:
    """The argv that runs the real console entry point with ``args`` (paths and numbers become text)."""
    return [sys.executable, "-m", "verify", *map(str, args)]


def cli_environment(*, cache: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a CLI subprocess runs in: this process's, with plain (uncoloured) output, the
    shipped recipes rather than a developer's ``$CPYTHON_VERIFY_RECIPES``, and this checkout's code
    whatever the working directory (``PYTHONPATH``). ``cache`` becomes ``$CPYTHON_VERIFY_CACHE``;
    ``extra`` variables are laid over the rest."""
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(PROJECT_ROOT))
    env.pop("CPYTHON_VERIFY_RECIPES", None)
    if cache is not None:
        env["CPYTHON_VERIFY_CACHE"] = str(cache)
    env.update(extra or {})
    return env


def run_cli(
    *args: object,
    cache: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = PROJECT_ROOT,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess and wait: exit code, stdout and stderr exactly as a user sees them.

    ``env`` holds variables added to :func:`cli_environment`'s. Output that is not UTF-8 (a file name's
    raw bytes) is kept as surrogate escapes, so a test can still look for a traceback in it. A ``--json``
    report is checked against its schema (:func:`schema_support.check_cli_json`)."""
    completed = subprocess.run(
        cli_command(*args),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=cli_environment(cache=cache, extra=env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    # Every --json report a test produces is a real output: it must match the schema the package ships.
    check_cli_json(args, completed.returncode, completed.stdout)
    return completed


# -- tiny rootfs tarballs made from this host's own programs -------------------------------------------
#
# The fast tests run the shipped runners on real rootfs tarballs, checked against their real sha256
# exactly as a pinned environment is; only the contents are small: a few host programs with the
# files they load. Slow tests use the real bookworm-cpython environment.

TINYPROJECT = Path(__file__).parent / "data" / "tinyproject"
TINYPROJECT_PROGRAMS = ("sh", "make", "cc", "as", "ld", "sed", "date", "mkdir", "install", "cp", "rm", "touch",
                        "head", "sleep", "uname", "cat", "ls")  # fmt: skip
"""What tests/data/tinyproject's configure, make and make install run (plus the compiler's helpers), and
what the rebuild's variation probe runs (date, uname, cat, ls)."""
ROOTFS_DIRECTORIES = ("etc", "proc", "dev", "tmp", "src", "out", "build", "run", "var", "var/tmp", "usr/bin")
"""Empty directories every rootfs has: mount points for the runners, /etc for podman's own files."""


def host_program(name: str) -> Path:
    """The host's ``name`` as found on a plain system PATH (not a developer's ~/bin)."""
    found = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
    if found is None:
        pytest.skip(f"{name} is not installed on this host")
    return Path(found)


def _shared_libraries(binary: Path) -> set[Path]:
    listing = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    return {Path(word) for line in listing.splitlines() for word in line.split() if word.startswith("/")}


def _compiler_files(scratch: Path) -> set[Path]:
    """cc's own programs and plugin, and every header and linker input it uses for the tiny project.

    The compiler is asked rather than guessed: one compile of hello.c with the options of the
    project's PGO build (the superset) lists its headers (-MD) and its linker inputs (ld --trace).
    """
    cc = str(host_program("cc"))
    files: set[Path] = set()
    for program in ("cc1", "collect2", "lto-wrapper", "lto1"):
        files.add(Path(_capture([cc, f"-print-prog-name={program}"], scratch)))
    files.add(Path(_capture([cc, "-print-file-name=liblto_plugin.so"], scratch)))
    depfile = scratch / "hello.d"
    trace = _capture([cc, "-g", "-O1", "-fprofile-generate", "-MD", "-MF", str(depfile), "-Wl,--trace",
                      "-o", str(scratch / "hello"), str(TINYPROJECT / "hello.c")], scratch)  # fmt: skip
    headers = depfile.read_text().replace("\\\n", " ").split(":", 1)[1].split()
    for name in [*headers, *trace.split()]:
        if name.startswith("/") and not name.startswith((str(scratch), str(TINYPROJECT))):
            files.add(Path(name))
    return files


def _capture(argv: list[str], cwd: Path) -> str:
    # TMPDIR: the compiler's temporary objects appear in ld's trace; keep them where they are filtered out.
    env = {**os.environ, "TMPDIR": str(cwd)}
    completed = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    if completed.returncode != 0:
        pytest.skip(f"{' '.join(argv)} failed on this host: {completed.stderr.strip()[-300:]}")
    return completed.stdout.strip()


def write_rootfs_tarball(tarball: Path, files: set[Path]) -> str:
    """Write a deterministic rootfs tarball holding ``files`` (host paths); return its sha256.

    The layout is merged-/usr like Debian's: every file lives under ``usr/`` and ``/bin``, ``/lib`` and
    ``/lib64`` are symlinks. A file is stored under the name it was asked for, with the contents of
    whatever that name resolves to (``cc`` stays ``cc``, not ``x86_64-linux-gnu-gcc-12``). Owners are
    root, times are zero, members are sorted: the same host files give the same bytes.
    """
    members: dict[str, Path] = {}
    for path in files:
        relative = os.path.normpath(path).lstrip("/")
        members[relative if relative.startswith("usr/") else f"usr/{relative}"] = path
    directories = set(ROOTFS_DIRECTORIES)
    for name in members:
        parent = Path(name).parent
        while str(parent) != ".":
            directories.add(str(parent))
            parent = parent.parent
    with tarfile.open(tarball, "w", format=tarfile.GNU_FORMAT) as archive:
        for name in sorted(directories):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")):
            info = tarfile.TarInfo(link)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
            archive.addfile(info)
        for name, path in sorted(members.items()):
            with path.open("rb") as stream:
                info = tarfile.TarInfo(name)
                info.size, info.mode = os.fstat(stream.fileno()).st_size, path.stat().st_mode & 0o755
                archive.addfile(info, stream)
    with tarball.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _rootfs_image(name: str, directory: Path, files: set[Path]) -> Iterator[RootfsImage]:
    """A RootfsImage of ``files`` (plus the libraries they load) with its real digest. Afterwards the
    tarball, its unpacked copy and its podman image (if a test imported one) are removed: each is a
    copy of host files, and pytest keeps several sessions' temporary directories."""
    files = set(files)
    for path in list(files):
        with path.open("rb") as stream:
            if stream.read(4) == b"\x7fELF":
                files |= _shared_libraries(path)
    tarball = directory / "rootfs.tar"
    digest = write_rootfs_tarball(tarball, files)
    image = RootfsImage(name=name, tarball=tarball, sha256=digest, lock_sha256="0" * 64)
    yield image
    if shutil.which("podman"):
        subprocess.run(["podman", "rmi", "--force", image_tag(image)], capture_output=True, check=False)
    shutil.rmtree(tarball.with_name(f"{digest}.unpacked"), ignore_errors=True)
    tarball.unlink()


def libfaketime_dependencies() -> set[Path]:
    """The libraries the host's libfaketime loads (libm): a real rootfs has them, a tiny one must too.
    libfaketime itself is never in a rootfs: the runner binds it from the host."""
    from verify.common.errors import ToolMissing
    from verify.environments.perturb import find_libfaketime

    try:
        return _shared_libraries(find_libfaketime())
    except ToolMissing:
        return set()


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RootfsImage]:
    """A rootfs of the host's bash and a few coreutils: enough to probe a sandbox's isolation and variations
    (``find``, ``xargs``, ``sha256sum`` and ``rm``: what the sandbox probe, verify.environments.isolation, runs)."""
    tools = (
        "bash",
        "sh",
        "env",
        "cat",
        "touch",
        "id",
        "nproc",
        "ls",
        "date",
        "uname",
        "getent",
        "find",
        "xargs",
        "sha256sum",
        "rm",
    )
    files = {host_program(t) for t in tools} | libfaketime_dependencies()
    yield from _rootfs_image("tiny-test", tmp_path_factory.mktemp("tiny-rootfs"), files)


@pytest.fixture(scope="session")
def tinyproject_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RootfsImage]:
    """A rootfs that can configure, build (with PGO) and install tests/data/tinyproject, and nothing more."""
    directory = tmp_path_factory.mktemp("tinyproject-rootfs")
    scratch = directory / "probe"
    scratch.mkdir()
    files = {host_program(name) for name in TINYPROJECT_PROGRAMS} | _compiler_files(scratch)
    files |= libfaketime_dependencies()
    shutil.rmtree(scratch)
    yield from _rootfs_image("tinyproject-test", directory, files)


PYTHON_STDLIB_LEFT_OUT = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "dist-packages", "__pycache__",
    "pydoc_data", "ensurepip",
})  # fmt: skip
"""Parts of the host's standard library a training in the tiny project never imports (it needs venv and ctypes)."""


def _python_files() -> set[Path]:
    """The host's python3, its standard library (less :data:`PYTHON_STDLIB_LEFT_OUT`) and its extension modules."""
    python = host_program("python3")
    where = "import os, sysconfig, _ctypes as c; print(sysconfig.get_paths()['stdlib'], os.path.dirname(c.__file__))"
    completed = subprocess.run([str(python), "-c", where], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        pytest.skip(f"the host's python3 has no ctypes: {completed.stderr.strip()[-200:]}")
    stdlib, dynload = completed.stdout.split()
    files = {python}
    for top in {Path(stdlib), Path(dynload)}:
        for directory, dirnames, filenames in os.walk(top):
            dirnames[:] = [name for name in dirnames if name not in PYTHON_STDLIB_LEFT_OUT]
            files |= {Path(directory) / name for name in filenames if not name.endswith(".pyc")}
    return files


@pytest.fixture(scope="session")
def tinyproject_python_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RootfsImage]:
    """:func:`tinyproject_image` plus the host's python3 (standard library, venv, ctypes): enough to run
    cpython-verify's trainer as the tiny project's training task."""
    directory = tmp_path_factory.mktemp("tinyproject-python-rootfs")
    scratch = directory / "probe"
    scratch.mkdir()
    files = {host_program(name) for name in TINYPROJECT_PROGRAMS} | _compiler_files(scratch) | _python_files()
    files |= libfaketime_dependencies()
    shutil.rmtree(scratch)
    yield from _rootfs_image("tinyproject-python-test", directory, files)


class BwrapWithoutDevShmAndPtmx(BwrapRunner):
    """The shipped bwrap runner with a bare ``/dev``: no tmpfs ``/dev/shm``, no devpts ``/dev/ptmx``.

    Only tests use it: it reproduces the measured fact (DESIGN.md) that CPython's configure results
    and ``pyconfig.h`` change in a sandbox without them, which is why the shipped runner has both.
    """

    def run(
        self,
        image: RootfsImage,
        command: Sequence[str],
        spec: SandboxSpec,
        *,
        log_path: Path | None = None,
        interactive: bool = False,
    ) -> RunResult:
        """Run ``command`` as the shipped runner would, with ``/dev`` reduced to six host devices."""
        self.check_available()
        check_spec(spec)
        argv = bwrap_command(unpacked_rootfs(image), command, spec, interactive=interactive)
        bare_dev = ["--tmpfs", "/dev"]
        for node in ("null", "zero", "full", "random", "urandom", "tty"):
            bare_dev += ["--dev-bind", f"/dev/{node}", f"/dev/{node}"]
        argv = _replaced(argv, ["--dev", "/dev"], bare_dev)
        argv = _replaced(argv, ["--tmpfs", "/dev/shm"], [])
        return run_process(argv, log_path=log_path, interactive=interactive)


def _replaced(argv: list[str], old: list[str], new: list[str]) -> list[str]:
    for index in range(len(argv) - len(old) + 1):
        if argv[index : index + len(old)] == old:
            return [*argv[:index], *new, *argv[index + len(old) :]]
    raise AssertionError(f"the shipped bwrap command line no longer has {old}: update this test runner")


def processes_mentioning(*needles: str) -> list[str]:
    """Command lines of live processes (zombies have none) that contain any of ``needles``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if any(needle in argv for needle in needles):
            found.append(f"{proc.name}: {argv[:160]}")
    return found


def read_terminal(controller: int) -> bytes:
    """Everything a child wrote to a pseudo-terminal, read from its ``controller`` end until the child closed
    it (Linux then answers EIO); the controller is closed afterwards."""
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return shown
