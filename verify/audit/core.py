"""Run the four questions over one installation and gather the answers into an :class:`AuditReport`."""

from __future__ import annotations

import os
from pathlib import Path

from verify.audit.config import read_config_args
from verify.audit.elf import audit_elf
from verify.audit.model import AuditError, AuditReport
from verify.audit.pyc import audit_pyc
from verify.audit.sources import audit_sources
from verify.manifest import Manifest
from verify.releases import Version


def find_stdlib(prefix: Path, version: Version) -> Path:
    """``PREFIX/lib/pythonX.Y``; raise :class:`AuditError` if it is not there."""
    stdlib = prefix / "lib" / f"python{version.series}"
    if not stdlib.is_dir():
        raise AuditError(f"no standard library at {stdlib}: is {prefix} a Python {version.series} prefix?")
    return stdlib


def audit_installation(
    prefix: Path,
    version: Version,
    source_tree: Path,
    *,
    against: Manifest | None = None,
    reference_python: Path | None = None,
) -> AuditReport:
    """Audit the Python ``version`` installed under ``prefix`` against the verified ``source_tree``.

    ``source_tree`` is the unpacked, verified tarball (the directory holding ``Lib/``). ``against`` is a
    rebuild's manifest for the ELF comparison; ``reference_python`` an interpreter of the same version,
    not under ``prefix``, to recompile the sources with.
    Raises :class:`AuditError` when the prefix or the source tree is not what it should be.
    """
    stdlib = find_stdlib(prefix, version)
    lib = source_tree / "Lib"
    if not lib.is_dir():
        raise AuditError(f"no Lib/ directory in the source tree {source_tree}")
    try:
        sources = audit_sources(stdlib, lib, stdlib.relative_to(prefix).as_posix())
        pyc = audit_pyc(stdlib, version, prefix, reference_python)
        elf = audit_elf(prefix, stdlib, version, against)
        config_args, sysconfigdata = read_config_args(stdlib)
    except OSError as error:
        raise AuditError(f"cannot read {error.filename or prefix}: {error.strerror or error}") from error
    notes = []
    if config_args is None:
        notes.append("no _sysconfigdata*.py with CONFIG_ARGS found: configure arguments unknown")
    return AuditReport(
        prefix=os.fspath(prefix),
        version=str(version),
        stdlib=os.fspath(stdlib),
        sources=sources,
        pyc=pyc,
        elf=elf,
        config_args=config_args,
        sysconfigdata=sysconfigdata,
        notes=tuple(notes),
    )
