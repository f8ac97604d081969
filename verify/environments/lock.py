"""Environment specs (what a packager asks for) and lock files (exactly what gets installed).

``recipes/environments/NAME.toml`` is the short, hand-written spec: Debian suite(s),
architecture, mmdebstrap variant and the top-level packages. ``NAME.lock`` beside it is generated from
it by ``cpython-verify env lock NAME``: every package of the closure with its exact version, pool
path, size and ``.deb`` sha256, the ``SOURCE_DATE_EPOCH`` of the environment and the sha256 of the
rootfs tarball that building it yields. One package per line, sorted, so a re-lock is a readable diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verify.environments.errors import LockFileError
from verify.source import names

LOCK_SCHEMA = 1
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian Policy 5.6.1
_VARIANTS = ("essential", "apt", "required", "minbase", "buildd")


def environments_dir() -> Path:
    """``$CPYTHON_VERIFY_ENVIRONMENTS`` or the environments shipped in the package (package data)."""
    configured = os.environ.get("CPYTHON_VERIFY_ENVIRONMENTS")
    if configured:
        return Path(configured)
    from verify.source.shipped import shipped_dir

    return shipped_dir("environments")


@dataclass(frozen=True, slots=True)
class EnvironmentSpec:
    """The hand-written request a lock is resolved from."""

    name: str
    suites: tuple[str, ...]
    """The first is the release (``bookworm``); others are overlaid on it (``bookworm-updates``)."""
    components: tuple[str, ...]
    architecture: str
    variant: str
    include: tuple[str, ...]
    sha256: str
    """sha256 of the spec file: the lock records it so a stale lock is detected."""

    @property
    def suite(self) -> str:
        """The Debian release the environment is built from."""
        return self.suites[0]


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One ``.deb`` of the environment, pinned by version and digest."""

    name: str
    version: str
    architecture: str
    path: str
    """Pool path relative to the archive root (``pool/main/a/apt/apt_2.6.1_amd64.deb``)."""
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        """The ``.deb`` file name."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class EnvironmentLock:
    """Everything needed to rebuild an environment bit for bit, and the digest it must produce."""

    name: str
    spec_sha256: str
    suites: tuple[str, ...]
    architecture: str
    variant: str
    include: tuple[str, ...]
    source_date_epoch: int
    release_date: str
    """``Date`` of the suite's Release file when locked: pick a snapshot archive timestamp at or after it."""
    rootfs_sha256: str
    packages: tuple[LockedPackage, ...]
    sha256: str = ""
    """sha256 of the lock file's bytes (empty until rendered or loaded): recorded in results."""

    @property
    def suite(self) -> str:
        """The Debian release the environment is built from."""
        return self.suites[0]


def parse_spec(text: bytes, name: str) -> EnvironmentSpec:
    """Validate the bytes of a spec file."""
    data = _load_toml(text, f"{name}.toml")
    where = f"{name}.toml"
    _expect_keys(data, where, {"schema", "suites", "components", "architecture", "variant", "include"}, {"comment"})
    if data["schema"] != LOCK_SCHEMA:
        raise LockFileError(f"{where}: unsupported schema {data['schema']!r}")
    variant = _string(data, "variant", where)
    if variant not in _VARIANTS:
        raise LockFileError(f"{where}: variant {variant!r} is not one of {', '.join(_VARIANTS)}")
    suites = _strings(data, "suites", where)
    include = _strings(data, "include", where)
    if not suites or not include:
        raise LockFileError(f"{where}: 'suites' and 'include' must not be empty")
    for package in include:
        if not _PACKAGE_RE.match(package):
            raise LockFileError(f"{where}: {package!r} is not a Debian package name")
    return EnvironmentSpec(
        name=name,
        suites=suites,
        components=_strings(data, "components", where),
        architecture=_string(data, "architecture", where),
        variant=variant,
        include=include,
        sha256=hashlib.sha256(text).hexdigest(),
    )


def parse_lock(text: bytes, name: str) -> EnvironmentLock:
    """Validate the bytes of a lock file; every digest must be 64 lower-case hex digits."""
    where = f"{name}.lock"
    data = _load_toml(text, where)
    _expect_keys(
        data,
        where,
        {
            "schema",
            "name",
            "spec_sha256",
            "suites",
            "architecture",
            "variant",
            "include",
            "source_date_epoch",
            "release_date",
            "rootfs_sha256",
            "packages",
        },
        set(),
    )
    if data["schema"] != LOCK_SCHEMA:
        raise LockFileError(f"{where}: unsupported schema {data['schema']!r}")
    if data["name"] != name:
        raise LockFileError(f"{where}: names environment {data['name']!r}, expected {name!r}")
    epoch = data["source_date_epoch"]
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise LockFileError(f"{where}: 'source_date_epoch' must be a non-negative integer")
    packages_data = data["packages"]
    if not isinstance(packages_data, list) or not packages_data:
        raise LockFileError(f"{where}: 'packages' must be a non-empty list")
    packages = tuple(_parse_package(entry, where, index) for index, entry in enumerate(packages_data))
    names = [(package.name, package.architecture) for package in packages]
    if len(set(names)) != len(names):
        raise LockFileError(f"{where}: a package is listed twice")
    for key in ("spec_sha256", "rootfs_sha256"):
        _sha256(data, key, where)
    return EnvironmentLock(
        name=name,
        spec_sha256=data["spec_sha256"],
        suites=_strings(data, "suites", where),
        architecture=_string(data, "architecture", where),
        variant=_string(data, "variant", where),
        include=_strings(data, "include", where),
        source_date_epoch=epoch,
        release_date=_string(data, "release_date", where),
        rootfs_sha256=data["rootfs_sha256"],
        packages=packages,
        sha256=hashlib.sha256(text).hexdigest(),
    )


def render_lock(lock: EnvironmentLock) -> bytes:
    """The lock file's bytes: deterministic, one package per line, sorted by name."""

    def quote(value: str) -> str:
        # JSON string escaping is valid TOML basic-string escaping for the characters that occur here.
        return json.dumps(value, ensure_ascii=False)

    def strings(values: Sequence[str]) -> str:
        return "[" + ", ".join(quote(value) for value in values) + "]"

    lines = [
        f"# Generated by `cpython-verify env lock {lock.name}` from {lock.name}.toml: do not edit by hand.",
        "# Every .deb is pinned by sha256; rootfs_sha256 is the tarball `cpython-verify env build` must produce.",
        f"schema = {LOCK_SCHEMA}",
        f"name = {quote(lock.name)}",
        f"spec_sha256 = {quote(lock.spec_sha256)}",
        f"suites = {strings(lock.suites)}",
        f"architecture = {quote(lock.architecture)}",
        f"variant = {quote(lock.variant)}",
        f"include = {strings(lock.include)}",
        f"source_date_epoch = {lock.source_date_epoch}",
        "# If the mirror no longer serves a version below, set CPYTHON_VERIFY_DEBIAN_SNAPSHOT to a snapshot",
        "# archive URL whose timestamp is at or after this date.",
        f"release_date = {quote(lock.release_date)}",
        f"rootfs_sha256 = {quote(lock.rootfs_sha256)}",
        "packages = [",
    ]
    for package in sorted(lock.packages, key=lambda p: (p.name, p.architecture)):
        lines.append(
            f"  {{ name = {quote(package.name)}, version = {quote(package.version)}, "
            f"architecture = {quote(package.architecture)}, size = {package.size}, "
            f"sha256 = {quote(package.sha256)}, path = {quote(package.path)} }},"
        )
    lines.append("]")
    return ("\n".join(lines) + "\n").encode("utf-8")


def spec_path(name: str, directory: Path | None = None) -> Path:
    """Where the spec of environment ``name`` lives."""
    return (directory or environments_dir()) / f"{name}.toml"


def lock_path(name: str, directory: Path | None = None) -> Path:
    """Where the lock of environment ``name`` lives."""
    return (directory or environments_dir()) / f"{name}.lock"


def load_spec(name: str, directory: Path | None = None) -> EnvironmentSpec:
    """Load and validate the spec of environment ``name``."""
    return parse_spec(_read(spec_path(name, directory), name, "spec"), name)


def load_lock(name: str, directory: Path | None = None) -> EnvironmentLock:
    """Load and validate the lock of environment ``name`` (its ``sha256`` goes into results)."""
    return parse_lock(_read(lock_path(name, directory), name, "lock"), name)


def _read(path: Path, name: str, kind: str) -> bytes:
    problem = names.environment_problem(name)
    if problem is not None:
        raise LockFileError(problem)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        hint = f"; run `cpython-verify env lock {name}`" if kind == "lock" else ""
        raise LockFileError(f"no {kind} for environment {name!r}: {path} does not exist{hint}") from None
    except OSError as exc:
        raise LockFileError(f"cannot read {path}: {exc.strerror}") from None


def _load_toml(text: bytes, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LockFileError(f"{where}: not valid TOML: {exc}") from None


def _expect_keys(data: Mapping[str, Any], where: str, required: set[str], optional: set[str]) -> None:
    missing = required - data.keys()
    unknown = data.keys() - required - optional
    if missing:
        raise LockFileError(f"{where}: missing key(s) {', '.join(sorted(missing))}")
    if unknown:
        raise LockFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise LockFileError(f"{where}: {key!r} must be a non-empty string")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise LockFileError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(value)


def _sha256(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not _SHA256_RE.match(value):
        raise LockFileError(f"{where}: {key!r} must be a sha256 (64 lower-case hex digits), not {value!r}")
    return value


def _parse_package(entry: Any, where: str, index: int) -> LockedPackage:
    here = f"{where}: packages[{index}]"
    if not isinstance(entry, dict):
        raise LockFileError(f"{here} must be a table")
    _expect_keys(entry, here, {"name", "version", "architecture", "size", "sha256", "path"}, set())
    size = entry["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise LockFileError(f"{here}: 'size' must be a positive integer")
    path = _string(entry, "path", here)
    # The path is joined onto mirror URLs and cache directories: refuse anything that could leave the pool.
    if not path.startswith("pool/") or ".." in path.split("/") or not path.endswith(".deb") or "\\" in path:
        raise LockFileError(f"{here}: path {path!r} is not a .deb under pool/")
    name = _string(entry, "name", here)
    if not _PACKAGE_RE.match(name):
        raise LockFileError(f"{here}: {name!r} is not a Debian package name")
    return LockedPackage(
        name=name,
        version=_string(entry, "version", here),
        architecture=_string(entry, "architecture", here),
        path=path,
        size=size,
        sha256=_sha256(entry, "sha256", here),
    )
