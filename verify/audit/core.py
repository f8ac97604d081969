"""Run the questions over one installation and gather the answers into an :class:`AuditReport`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from verify.audit.config import read_config_args
from verify.audit.elf import RebuildSide, audit_elf
from verify.audit.model import AuditError, AuditReport
from verify.audit.patches import Patch
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
    against: RebuildSide | Manifest | None = None,
    reference_python: Path | None = None,
    patches: Sequence[Patch] = (),
    distribution: str | None = None,
    install_prefix: str = "",
) -> AuditReport:
    """Audit the Python ``version`` installed under ``prefix`` against the verified ``source_tree``.

    ``source_tree`` is the unpacked, verified tarball (the directory holding ``Lib/``). ``against`` is a
    rebuild for the ELF comparison (a bare manifest: digests only); ``reference_python`` an interpreter
    of the same version, not under ``prefix``, to recompile the sources with. ``patches`` is a parsed
    quilt series that may account for modified files; ``distribution`` names the convention table to apply (``debian``);
    ``install_prefix`` is where ``prefix`` lives on its own system (default: ``prefix`` itself).
    Raises :class:`AuditError` when the prefix or the source tree is not what it should be.
    """
    stdlib = find_stdlib(prefix, version)
    if not (source_tree / "Lib").is_dir():
        raise AuditError(f"no Lib/ directory in the source tree {source_tree}")
    try:
        sources = audit_sources(prefix, version.series, source_tree, install_prefix=install_prefix,
                                patches=patches, distribution=distribution)
        pyc = audit_pyc(stdlib, version, prefix, reference_python)
        config_args, sysconfigdata = read_config_args(stdlib)
        rebuild = RebuildSide(against, None, against.inputs) if isinstance(against, Manifest) else against
        elf = audit_elf(prefix, stdlib, version, rebuild, config_args)
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
        distribution=distribution,
    )
