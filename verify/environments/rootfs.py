"""Resolve locks and build reproducible rootfs tarballs with mmdebstrap; cache them by digest.

Resolving (``env lock``) runs mmdebstrap once against the real mirror and records what apt chose.
Building (``env build``) never lets apt see the mirror: the pinned ``.deb`` files are downloaded and
checked against the lock, put in a throwaway flat repository, and mmdebstrap installs from that
repository alone, so nothing outside the lock can enter the rootfs. ``SOURCE_DATE_EPOCH`` and a
customize hook that removes host-specific files make two builds bit-identical; the result must equal
the lock's ``rootfs_sha256`` or the build fails loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from verify.common import faults, interrupts
from verify.common.cachecheck import KindCheck
from verify.common.errors import OperationalError, ToolMissing
from verify.common.fsutil import cache_root, sha256_file
from verify.common.limits import BUILD_LOCK_TIMEOUT_SECONDS
from verify.common.locking import LOCK_SUFFIX, Staging, TargetLock, lock_timeout, remove_path, sweep_abandoned
from verify.environments.debian import (
    deb_control,
    flat_packages_index,
    flat_release,
    lock_packages,
    parse_installed,
    release_date,
)
from verify.environments.errors import EnvironmentBuildError, LockFileError, RootfsMismatch
from verify.environments.fetch import DebCache, Progress, fetch_debs
from verify.environments.interface import RootfsImage
from verify.environments.lock import (
    EnvironmentLock,
    EnvironmentSpec,
    load_lock,
    lock_path,
    parse_lock,
    render_lock,
    spec_path,
)
from verify.source.locations.apt_sources import resolve_mirror, resolve_snapshot

STAGING_PREFIX = ".staging-"
"""Tarballs being built (and rootfs trees being unpacked) in ``rootfs/``, each held by its writer."""
MOUNT_POINTS = ("/build", "/out", "/src")
"""Empty directories the runners bind the build tree, the output and the source onto."""

_AUTOMOUNT_HOOKS = Path("/usr/share/mmdebstrap/hooks/file-mirror-automount")
_CHROOT_CLEANED_TMP = Path("/tmp")  # noqa: S108 - see MmdebstrapBuilder: it must be /tmp itself
_DPKG_QUERY_FORMAT = r"${Package}\t${Version}\t${Architecture}\n"


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class EnvironmentCache:
    """Where the environment stage keeps its files under the project cache."""

    root: Path

    @classmethod
    def at(cls, cache_dir: Path | None) -> EnvironmentCache:
        """``<cache root>/environments``; the root is ``cache_dir`` if given (see :func:`cache_root`)."""
        return cls(cache_root(cache_dir) / "environments")

    @property
    def debs(self) -> DebCache:
        """``.deb`` files by sha256."""
        return DebCache(self.root / "debs")

    @property
    def rootfs_dir(self) -> Path:
        """Rootfs tarballs by sha256."""
        return self.root / "rootfs"

    def tarball(self, sha256: str) -> Path:
        """Where the rootfs tarball with digest ``sha256`` is cached."""
        return self.rootfs_dir / f"{sha256}.tar"

    def log(self, name: str) -> Path:
        """The log of the latest mmdebstrap run for environment ``name`` (kept: errors name it)."""
        path = self.root / "logs" / f"{name}.mmdebstrap.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def lock_for(self, sha256: str, what: str, progress: Progress = _quiet) -> TargetLock:
        """The lock under which the rootfs ``sha256`` is checked and built (``rootfs/.<digest>.lock``)."""
        return TargetLock(
            self.rootfs_dir / f".{sha256}{LOCK_SUFFIX}",
            what=what,
            timeout=lock_timeout(BUILD_LOCK_TIMEOUT_SECONDS),
            on_wait=progress,
        )

    def sweep(self) -> list[Path]:
        """Remove what killed runs left in ``rootfs/``: staging tarballs and unpacked trees nobody holds."""
        return sweep_abandoned(self.rootfs_dir, STAGING_PREFIX)

    def check_all(self, *, tree: bool = True) -> KindCheck:
        """Re-hash every cached rootfs tarball against the digest its name promises, check every unpacked
        rootfs against its manifest, remove the damaged ones and the staging areas nobody holds."""
        from verify.environments.bwrap import UNPACKED_SUFFIX, check_unpacked_rootfs

        report = KindCheck("rootfs", str(self.rootfs_dir))
        if not self.rootfs_dir.is_dir():
            return report
        for path in self.sweep():
            report.remove(path, "staging abandoned by a run that did not finish")
        for path in sorted(self.rootfs_dir.iterdir()):
            name = path.name
            digest = name.split(".", 1)[0]
            if name.startswith(".") or len(digest) != 64:
                if not name.startswith("."):
                    report.kept.append((str(path), "not a cache entry (an earlier version's, or someone else's)"))
                continue
            if name.endswith(".mismatch.tar"):
                report.kept.append((str(path), "a build that did not match its lock, kept for inspection"))
                continue
            if name not in (f"{digest}.tar", f"{digest}{UNPACKED_SUFFIX}"):
                report.kept.append((str(path), "not a cache entry (an earlier version's, or someone else's)"))
                continue
            lock = TargetLock(path.with_name(f".{name}{LOCK_SUFFIX}") if name.endswith(UNPACKED_SUFFIX)
                              else self.rootfs_dir / f".{digest}{LOCK_SUFFIX}", what=name, timeout=0)  # fmt: skip
            if not lock.try_acquire() and not lock.read_only:
                report.in_use.append(str(path))
                continue
            try:
                report.checked += 1
                if name.endswith(".tar"):
                    problems = [] if sha256_file(path) == digest else ["its bytes are not the digest its name promises"]
                elif tree:
                    problems = check_unpacked_rootfs(path, digest)
                else:
                    problems = []
                if problems:
                    if lock.held:
                        remove_path(path)
                    report.damage(path, "; ".join(problems[:3]), removed=lock.held)
            finally:
                lock.release()
        return report

    def scratch(self) -> Path:
        """A directory for temporary files on the same filesystem as the cache (atomic renames)."""
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


# -- pure command construction -----------------------------------------------------------------


def cleanup_hook(name: str) -> str:
    """The customize hook that removes host-specific and time-dependent files from the rootfs.

    mmdebstrap's own ``cleanup/reproducible`` handles dpkg/apt logs and the ldconfig cache; this
    removes what differs between hosts (resolv.conf, hostname, machine-id), every remaining log and
    cache file, and replaces apt's sources with a fixed line: the build-time repository path would
    otherwise land in the image.
    """
    mounts = " ".join(f'"$1{point}"' for point in MOUNT_POINTS)
    return "; ".join(
        [
            "set -e",
            'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1/etc/machine-id" "$1/var/lib/dbus/machine-id"',
            'find "$1/var/log" "$1/var/cache" -type f -delete',
            'rm -rf "$1/var/lib/apt/lists" "$1/etc/apt/sources.list.d"',
            'mkdir -p "$1/var/lib/apt/lists/partial" "$1/etc/apt/sources.list.d"',
            "printf '# cpython-verify environment %s: offline; packages pinned by %s.lock\\n' "
            f'{shlex.quote(name)} {shlex.quote(name)} > "$1/etc/apt/sources.list"',
            f"mkdir -p {mounts}",
        ]
    )


def mmdebstrap_build_command(lock: EnvironmentLock, repository: Path, output: Path) -> list[str]:
    """mmdebstrap installing ``lock`` from the flat repository at ``repository`` only."""
    return [
        "mmdebstrap",
        "--mode=root",
        f"--variant={lock.variant}",
        f"--architectures={lock.architecture}",
        "--format=tar",
        f"--include={','.join(lock.include)}",
        f"--hook-dir={_AUTOMOUNT_HOOKS}",
        f"--customize-hook={cleanup_hook(lock.name)}",
        lock.suite,
        str(output),
        # trusted=yes: the repository is made of files whose sha256 was just checked against the lock,
        # which is stronger than the archive signature (it pins the exact bytes, not just the origin).
        f"deb [trusted=yes] file://{repository} ./",
    ]


def mmdebstrap_resolve_command(spec: EnvironmentSpec, mirror: str, sources: Path, out: Path) -> list[str]:
    """mmdebstrap against the real mirror, recording what apt installed and the indexes it used."""
    lists = shlex.quote(str(out / "lists"))
    debs = shlex.quote(str(out / "debs"))
    installed = shlex.quote(str(out / "installed"))
    return [
        "mmdebstrap",
        "--mode=root",
        f"--variant={spec.variant}",
        f"--architectures={spec.architecture}",
        "--format=null",
        f"--include={','.join(spec.include)}",
        f"--customize-hook=chroot \"$1\" dpkg-query -W -f='{_DPKG_QUERY_FORMAT}' > {installed}",
        f"--customize-hook=mkdir -p {lists} {debs}; "
        f'cp "$1"/var/lib/apt/lists/*Packages "$1"/var/lib/apt/lists/*Release {lists}/; '
        f'find "$1/var/cache/apt/archives" -name "*.deb" -exec cp {{}} {debs}/ ";"',
        spec.suite,
        "/dev/null",
        str(sources),
    ]


def deb822_sources(spec: EnvironmentSpec, mirror: str) -> str:
    """The apt sources file given to mmdebstrap when resolving (the archive keyring checks signatures)."""
    return (
        f"Types: deb\nURIs: {mirror}\nSuites: {' '.join(spec.suites)}\n"
        f"Components: {' '.join(spec.components)}\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def _mmdebstrap_env(epoch: int, tmpdir: Path) -> dict[str, str]:
    # A fixed environment: host locale, TZ or TMPDIR must not change what mmdebstrap writes.
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SOURCE_DATE_EPOCH": str(epoch),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/root",
        "TMPDIR": str(tmpdir),
    }


MMDEBSTRAP_GRACE_SECONDS = 60.0
"""How long an interrupted mmdebstrap may take to clean up (kill apt and dpkg in its chroot, unmount,
remove its temporary directory) after SIGTERM, before it is killed."""


def _run_mmdebstrap(command: Sequence[str], env: dict[str, str], log: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise ToolMissing("mmdebstrap", "mmdebstrap")
    with log.open("wb") as handle:
        # Interrupted, mmdebstrap gets SIGTERM and time for its own cleanup: killed outright, it would
        # leave apt or dpkg running in the chroot and its mounts behind. No stdin: in its own process
        # group it must never wait on the terminal.
        returncode = interrupts.run_child(
            command, grace=MMDEBSTRAP_GRACE_SECONDS, env=env, stdin=subprocess.DEVNULL, stdout=handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    if returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise EnvironmentBuildError(f"mmdebstrap failed with exit {returncode}: {tail[0]} (log: {log})")


def _link_or_copy(source: Path, destination: Path) -> None:
    """A hard link keeps the repository cheap; /tmp may be another filesystem, then copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)


@contextlib.contextmanager
def _scratch_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A temporary directory removed afterwards, but never through a mount point.

    A failed mmdebstrap can leave its chroot's bind mounts (the file:// repository, /proc, /dev)
    behind; deleting recursively through them would delete host files. Unmount them first, and if
    any remains, leave the directory for a human rather than risk it.
    """
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    try:
        yield path
    finally:
        for mount_point in sorted(_mounts_below(path), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", mount_point], capture_output=True, check=False)
        if not _mounts_below(path):
            shutil.rmtree(path, ignore_errors=True)


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    mounts = []
    with Path("/proc/self/mountinfo").open(encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with spaces and similar escaped as octal (\040).
            mount_point = line.split()[4].encode().decode("unicode_escape")
            if mount_point.startswith(prefix):
                mounts.append(mount_point)
    return mounts


# -- building ----------------------------------------------------------------------------------

RootfsBuilder = Callable[[EnvironmentLock, Path], None]
"""Writes the rootfs tarball of a lock to the given path (injected in tests)."""


@dataclass(frozen=True, slots=True)
class MmdebstrapBuilder:
    """The real builder: pinned ``.deb`` files -> flat repository -> mmdebstrap -> tarball."""

    cache: EnvironmentCache
    mirror: str | None = None
    snapshot: str | None = None
    progress: Progress = _quiet

    def __call__(self, lock: EnvironmentLock, output: Path) -> None:
        """Build ``lock``'s rootfs into ``output``."""
        mirror = resolve_mirror(lock.suite, self.mirror)
        debs = fetch_debs(
            lock.packages,
            self.cache.debs,
            mirror=mirror,
            snapshot=resolve_snapshot(self.snapshot),
            progress=self.progress,
        )
        # The repository must live under /tmp: mmdebstrap bind-mounts a file:// mirror at the same path
        # inside the chroot and leaves the mount point's directories behind, and /tmp is the one place
        # it empties (cleanup/tmp). Anywhere else, the cache's path would end up in the rootfs tarball
        # and its digest would depend on where the cache lives.
        with _scratch_dir(_CHROOT_CLEANED_TMP, "cpython-verify-rootfs-") as work:
            repository = work / "repo"
            repository.mkdir()
            entries = []
            for package, path in debs.items():
                _link_or_copy(path, repository / package.filename)
                entries.append((package, deb_control(path.read_bytes())))
            index = flat_packages_index(entries).encode("utf-8")
            (repository / "Packages").write_bytes(index)
            (repository / "Release").write_text(
                flat_release(
                    suite=lock.suite, architecture=lock.architecture, packages_index=index, epoch=lock.source_date_epoch
                ),
                encoding="utf-8",
            )
            self.progress(f"mmdebstrap: {len(entries)} pinned packages, SOURCE_DATE_EPOCH={lock.source_date_epoch}")
            _run_mmdebstrap(
                mmdebstrap_build_command(lock, repository, output),
                _mmdebstrap_env(lock.source_date_epoch, work),
                self.cache.log(lock.name),
            )


def ensure_environment(
    name: str,
    *,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    snapshot: str | None = None,
    locks_dir: Path | None = None,
    builder: RootfsBuilder | None = None,
    progress: Progress = _quiet,
) -> RootfsImage:
    """The verified rootfs of environment ``name``: from the cache if intact, else built now.

    A cached tarball is re-hashed on every call; a damaged one (a flipped bit, a truncated copy) is
    deleted and rebuilt, never used, and the returned image's ``notes`` say so. A fresh build whose
    digest differs from the lock raises :class:`RootfsMismatch` and is kept beside the cache
    (``<digest>.mismatch.tar``) for diffoscope. Checking and building happen under the digest's lock
    (``rootfs/.<digest>.lock``): a second run waits for the first's build instead of building too.
    A read-only cache serves an intact tarball and cannot build one.
    """
    lock = load_lock(name, locks_dir)
    _check_spec_unchanged(lock, locks_dir)
    cache = EnvironmentCache.at(cache_dir)
    image = RootfsImage(
        name=name, tarball=cache.tarball(lock.rootfs_sha256), sha256=lock.rootfs_sha256, lock_sha256=lock.sha256
    )
    notes: list[str] = []
    with cache.lock_for(lock.rootfs_sha256, f"the rootfs of {name}", progress) as held:
        if held.held:
            cache.sweep()
        if image.tarball.is_file():
            if sha256_file(image.tarball) == lock.rootfs_sha256:
                progress(f"cache hit: {image.tarball}")
                return image
            if not held.held:
                raise OperationalError(
                    f"the cached rootfs {image.tarball} is damaged (digest mismatch) and the cache is read-only"
                )
            note = f"the cached rootfs {image.tarball} is damaged (digest mismatch): removed and rebuilt, never used"
            progress(note)
            notes.append(note)
            image.tarball.unlink()
        if not held.held:
            raise OperationalError(
                f"the environment cache {cache.root} is read-only and holds no intact rootfs of {name} "
                f"(sha256 {lock.rootfs_sha256}); give a writable --cache"
            )
        actual, built = build_rootfs(lock, cache, builder or MmdebstrapBuilder(cache, mirror, snapshot, progress))
        if actual != lock.rootfs_sha256:
            kept = cache.rootfs_dir / f"{actual}.mismatch.tar"
            built.path.replace(kept)
            built.committed()
            raise RootfsMismatch(
                f"environment {name}: built rootfs has sha256 {actual}, the lock pins {lock.rootfs_sha256} "
                f"(kept as {kept})"
            )
        built.path.replace(image.tarball)
        built.committed()
    return dataclasses.replace(image, notes=tuple(notes))


def build_rootfs(lock: EnvironmentLock, cache: EnvironmentCache, builder: RootfsBuilder) -> tuple[str, Staging]:
    """Build into a staging file in the cache; return its sha256 and the staging file (the caller renames
    it into place, then calls ``committed()``). A failure or a kill leaves no tarball under a digest."""
    staging, descriptor = Staging.file(cache.rootfs_dir, f"{STAGING_PREFIX}{lock.name}-")
    os.close(descriptor)
    try:
        builder(lock, staging.path)
        faults.reached("rootfs-build")
        staging.path.chmod(0o644)  # the tarball holds nothing secret
        return sha256_file(staging.path), staging
    except BaseException:
        staging.discard()
        raise


def _check_spec_unchanged(lock: EnvironmentLock, locks_dir: Path | None) -> None:
    path = spec_path(lock.name, locks_dir)
    if path.is_file() and sha256_file(path) != lock.spec_sha256:
        raise LockFileError(
            f"{path.name} changed since {lock.name}.lock was made: run `cpython-verify env lock {lock.name}`"
        )


# -- locking -----------------------------------------------------------------------------------


def resolve_lock(
    spec: EnvironmentSpec,
    *,
    cache_dir: Path | None = None,
    mirror: str | None = None,
    progress: Progress = _quiet,
) -> EnvironmentLock:
    """Resolve ``spec`` against the mirror and build it once to learn the rootfs digest.

    The lock's ``rootfs_sha256`` is what building from the pinned packages produced here; every
    later build, on any machine, must reproduce it.
    """
    mirror_url = resolve_mirror(spec.suite, mirror)
    cache = EnvironmentCache.at(cache_dir)
    with _scratch_dir(cache.scratch(), "lock-") as work:
        sources = work / "sources.sources"
        sources.write_text(deb822_sources(spec, mirror_url), encoding="utf-8")
        progress(f"resolving {', '.join(spec.include)} in {' '.join(spec.suites)} from {mirror_url}")
        _run_mmdebstrap(
            mmdebstrap_resolve_command(spec, mirror_url, sources, work),
            _mmdebstrap_env(0, work),
            # In the cache, not the scratch directory: a failure names this log, and the scratch is removed.
            cache.log(f"{spec.name}.resolve"),
        )
        lists = work / "lists"
        indexes = [path.read_text(encoding="utf-8") for path in sorted(lists.glob("*_Packages"))]
        packages = lock_packages(parse_installed((work / "installed").read_text(encoding="utf-8")), indexes)
        release_files = sorted(lists.glob(f"*_dists_{spec.suite}_InRelease")) or sorted(
            lists.glob(f"*_dists_{spec.suite}_Release")
        )
        if not release_files:
            raise EnvironmentBuildError(f"apt downloaded no Release file for {spec.suite}")
        date, epoch = release_date(release_files[0].read_text(encoding="utf-8"))
        # Seed the .deb cache with what apt already downloaded (each is re-checked against the index).
        by_name = {package.filename: package for package in packages}
        debs = cache.debs  # one DebCache for all of them: eviction spares what this run added
        for deb in (work / "debs").glob("*.deb"):
            if deb.name in by_name:
                debs.add_verified(by_name[deb.name], deb)
    draft = EnvironmentLock(
        name=spec.name,
        spec_sha256=spec.sha256,
        suites=spec.suites,
        architecture=spec.architecture,
        variant=spec.variant,
        include=spec.include,
        source_date_epoch=epoch,
        release_date=date,
        rootfs_sha256="0" * 64,
        packages=packages,
    )
    progress(f"{len(packages)} packages pinned; building the rootfs once to record its digest")
    digest, built = build_rootfs(draft, cache, MmdebstrapBuilder(cache, mirror_url, None, progress))
    with cache.lock_for(digest, f"the rootfs of {spec.name}", progress):
        built.path.replace(cache.tarball(digest))
        built.committed()
    final = dataclasses.replace(draft, rootfs_sha256=digest)
    return parse_lock(render_lock(final), spec.name)


def write_lock(lock: EnvironmentLock, locks_dir: Path | None = None) -> Path:
    """Write ``lock`` atomically to ``recipes/environments/NAME.lock``."""
    path = lock_path(lock.name, locks_dir)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{lock.name}-", suffix=".lock")
    with os.fdopen(handle, "wb") as out:
        out.write(render_lock(lock))
    Path(temporary).replace(path)
    return path


__all__ = [
    "EnvironmentCache",
    "MmdebstrapBuilder",
    "ensure_environment",
    "load_lock",
    "resolve_lock",
    "write_lock",
]
