"""Run the questions over one installation and gather the answers into an :class:`AuditReport`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from verify.audit.config import read_config_args
from verify.audit.elf import RebuildSide, audit_elf
from verify.audit.files import find_library_dir
from verify.audit.layout import LIBRARY_DIRS
from verify.audit.model import AuditError, AuditReport
from verify.audit.patches import Patch
from verify.audit.pyc import audit_pyc
from verify.audit.release import check_release, release_witnesses
from verify.audit.sources import audit_sources
from verify.manifest import Manifest
from verify.releases import Version


def find_stdlib(prefix: Path, version: Version, libdir: str | None = None, abi: str = "") -> Path:
    """``PREFIX/LIBDIR/pythonX.Y`` (``pythonX.Yt`` for a free-threaded build, ``abi`` ``t``), ``LIBDIR`` being
    ``libdir`` or else where the standard library is (``lib`` or ``lib64``:
    :func:`verify.audit.files.find_library_dir`); raise :class:`AuditError` if it is not there.
    """
    layout = version.series + abi
    name = libdir or find_library_dir(prefix, layout).name
    if name not in LIBRARY_DIRS:
        raise AuditError(f"{name!r} is not a library directory: expected one of {', '.join(LIBRARY_DIRS)}")
    stdlib = prefix / name / f"python{layout}"
    if not stdlib.is_dir() or stdlib.is_symlink():
        raise AuditError(f"no standard library at {stdlib}: is {prefix} a Python {layout} prefix?")
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
    libdir: str | None = None,
    packages: Sequence[str] = (),
    abi: str = "",
) -> AuditReport:
    """Audit the Python ``version`` installed under ``prefix`` against the verified ``source_tree``.

    ``source_tree`` is the unpacked, verified tarball (the directory holding ``Lib/``). ``against`` is a
    rebuild for the ELF comparison (a bare manifest: digests only); ``reference_python`` an interpreter
    of the same version, not under ``prefix``, to recompile the sources with. ``patches`` is a parsed
    quilt series that may account for modified files; ``distribution`` names the convention table to apply (``debian``);
    ``install_prefix`` is where ``prefix`` lives on its own system (default: ``prefix`` itself).
    ``libdir`` is the library directory holding ``pythonX.Y`` (``lib`` or ``lib64``), when the caller
    has found it already; by default it is found here, under ``prefix``, and the report says why.
    ``packages`` are the Debian packages (``name version``) the installation was unpacked from. ``abi`` is
    ``t`` for a free-threaded build, whose files are named ``pythonX.Yt`` (PEP 703), else empty.
    Raises :class:`AuditError` when the prefix or the source tree is not what it should be, and
    :class:`~verify.audit.release.ReleaseMismatch` when the installation records another release.
    """
    notes: list[str] = []
    layout = version.series + abi
    if libdir is None:
        library = find_library_dir(prefix, layout)
        libdir = library.name
        notes.extend(library.notes)
    stdlib = find_stdlib(prefix, version, libdir, abi)
    witnesses = release_witnesses(prefix, stdlib, version.series, packages)
    check_release(version, witnesses)
    if witnesses:
        notes.append(f"release {version}, as recorded by {', '.join(sorted({w.source for w in witnesses}))}")
    else:
        notes.append(f"nothing in the installation records its release (no build-details.json, patchlevel.h or "
                     f"Debian package version): audited as {version}")
    if not (source_tree / "Lib").is_dir():
        raise AuditError(f"no Lib/ directory in the source tree {source_tree}")
    try:
        sources = audit_sources(prefix, layout, source_tree, install_prefix=install_prefix,
                                patches=patches, distribution=distribution, libdir=libdir)
        pyc = audit_pyc(stdlib, version, prefix, reference_python)
        config_args, sysconfigdata = read_config_args(stdlib)
        rebuild = RebuildSide(against, None, against.inputs) if isinstance(against, Manifest) else against
        elf = audit_elf(prefix, stdlib, version, rebuild, config_args, layout=layout)
    except OSError as error:
        raise AuditError(f"cannot read {error.filename or prefix}: {error.strerror or error}") from error
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
