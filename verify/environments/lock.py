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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from verify.common.strict import StrictModel, load_toml, parse_model
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


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must be a non-empty string")
    return value


def _non_empty_list(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("must be a non-empty list")
    return values


def _schema(value: int) -> int:
    if value != LOCK_SCHEMA:
        raise ValueError(f"names unsupported schema {value!r}; this cpython-verify reads schema {LOCK_SCHEMA}")
    return value


def _sha256(value: str) -> str:
    if not _SHA256_RE.match(value):
        raise ValueError(f"must be a sha256 (64 lower-case hex digits), not {value!r}")
    return value


def _package_name(value: str) -> str:
    if not _PACKAGE_RE.match(value):
        raise ValueError(f"must be a Debian package name, not {value!r}")
    return value


def _variant(value: str) -> str:
    if value not in _VARIANTS:
        raise ValueError(f"must be one of {', '.join(_VARIANTS)}, not {value!r}")
    return value


def _pool_path(value: str) -> str:
    # The path is joined onto mirror URLs and cache directories: refuse anything that could leave the pool.
    if not value.startswith("pool/") or ".." in value.split("/") or not value.endswith(".deb") or "\\" in value:
        raise ValueError(f"is not a .deb under pool/: {value!r}")
    return value


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must be a non-negative integer")
    return value


_Text = Annotated[str, AfterValidator(_non_empty)]
# TOML arrays arrive as lists: a tuple field takes them (lax for the container only; items stay strict).
_Texts = Annotated[tuple[_Text, ...], Field(strict=False)]
_Sha256 = Annotated[str, AfterValidator(_sha256)]
_PackageName = Annotated[str, AfterValidator(_package_name)]
_Schema = Annotated[int, AfterValidator(_schema)]
_Variant = Annotated[str, AfterValidator(_variant)]


class _SpecFile(StrictModel):
    """``NAME.toml``, as written by a packager."""

    schema_: _Schema = Field(alias="schema")
    comment: str = ""
    suites: Annotated[_Texts, AfterValidator(_non_empty_list)]
    components: _Texts
    architecture: _Text
    variant: _Variant
    include: Annotated[tuple[_PackageName, ...], Field(strict=False), AfterValidator(_non_empty_list)]


class _LockFileEntry(StrictModel):
    """One element of a lock file's ``packages``."""

    name: _PackageName
    version: _Text
    architecture: _Text
    size: Annotated[int, AfterValidator(_positive)]
    sha256: _Sha256
    path: Annotated[str, AfterValidator(_pool_path)]


class _LockFile(StrictModel):
    """``NAME.lock``, as :func:`render_lock` writes it."""

    schema_: _Schema = Field(alias="schema")
    name: _Text
    spec_sha256: _Sha256
    suites: _Texts
    architecture: _Text
    variant: _Text
    include: _Texts
    source_date_epoch: Annotated[int, AfterValidator(_not_negative)]
    release_date: _Text
    rootfs_sha256: _Sha256
    packages: Annotated[tuple[_LockFileEntry, ...], Field(strict=False), AfterValidator(_non_empty_list)]

    @model_validator(mode="after")
    def _each_package_once(self) -> _LockFile:
        keys = [(package.name, package.architecture) for package in self.packages]
        if len(set(keys)) != len(keys):
            raise ValueError("a package is listed twice")
        return self


def parse_spec(text: bytes, name: str) -> EnvironmentSpec:
    """Validate the bytes of a spec file."""
    where = f"{name}.toml"
    spec = parse_model(_SpecFile, load_toml(text, where=where, error=LockFileError), where=where, error=LockFileError)
    fields = spec.model_dump(exclude={"schema_", "comment"})
    return EnvironmentSpec(name=name, sha256=hashlib.sha256(text).hexdigest(), **fields)


def parse_lock(text: bytes, name: str) -> EnvironmentLock:
    """Validate the bytes of a lock file; every digest must be 64 lower-case hex digits."""
    where = f"{name}.lock"
    lock = parse_model(_LockFile, load_toml(text, where=where, error=LockFileError), where=where, error=LockFileError)
    if lock.name != name:
        raise LockFileError(f"{where}: names environment {lock.name!r}, expected {name!r}")
    fields = lock.model_dump(exclude={"schema_", "name", "packages"})
    packages = tuple(LockedPackage(**package.model_dump()) for package in lock.packages)
    return EnvironmentLock(name=name, packages=packages, sha256=hashlib.sha256(text).hexdigest(), **fields)


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
