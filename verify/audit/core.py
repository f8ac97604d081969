"""Run the questions over one installation and gather the answers into an :class:`AuditReport`."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from verify.audit.config import read_config_args
from verify.audit.conventions import package_for
from verify.audit.coverage import (
    CONFIG,
    HEADERS,
    INSTALLATION,
    INTERPRETER,
    LIBPYTHON,
    PACKAGE_SET,
    PARTS,
    STDLIB,
    AuditCoverage,
    PartCoverage,
    count_parts,
    installation_part,
    rebuild_parts,
)
from verify.audit.elf import RebuildSide, audit_elf, split_config_args
from verify.audit.files import find_library_dir, tree_entries
from verify.audit.layout import DISABLE_TEST_MODULES, LIBRARY_DIRS
from verify.audit.model import AuditError, AuditReport, ElfAudit, SourceAudit
from verify.audit.patches import Patch
from verify.audit.pyc import audit_pyc
from verify.audit.release import check_release, release_witnesses
from verify.audit.sources import SourceModel, audit_sources, read_source_model
from verify.manifest import DIRECTORY, Manifest
from verify.source.releases import Version


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
    ``packages`` are the Debian packages (``name version``) the installation was unpacked from: then the
    subject is their share of an installation, not a whole one (:mod:`verify.audit.coverage`). ``abi`` is
    ``t`` for a free-threaded build, whose files are named ``pythonX.Yt`` (PEP 703), else empty.
    Raises :class:`AuditError` when the prefix or the source tree is not what it should be, and
    :class:`~verify.audit.release.ReleaseMismatch` when the installation records another release.
    """
    notes: list[str] = []
    layout = version.series + abi
    package_set = bool(packages)
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
        notes.append(
            f"nothing in the installation records its release (no build-details.json, patchlevel.h or "
            f"Debian package version): audited as {version}"
        )
    if not (source_tree / "Lib").is_dir():
        raise AuditError(f"no Lib/ directory in the source tree {source_tree}")
    rebuild = RebuildSide(against, None, against.inputs) if isinstance(against, Manifest) else against
    try:
        model = read_source_model(source_tree)
        config_args, sysconfigdata = read_config_args(stdlib)
        configured = split_config_args(config_args) or ()
        sources = audit_sources(
            prefix,
            layout,
            source_tree,
            install_prefix=install_prefix,
            patches=patches,
            distribution=distribution,
            libdir=libdir,
            model=model,
            package_set=package_set,
            without_test_modules=DISABLE_TEST_MODULES in configured,
        )
        pyc = audit_pyc(stdlib, version, prefix, reference_python)
        elf = audit_elf(prefix, stdlib, version, rebuild, config_args, layout=layout)
        present = installation_paths(prefix, layout, libdir)
    except OSError as error:
        raise AuditError(f"cannot read {error.filename or prefix}: {error.strerror or error}") from error
    if config_args is None:
        notes.append("no _sysconfigdata*.py with CONFIG_ARGS found: configure arguments unknown")
    coverage = measure_coverage(
        layout,
        libdir,
        model,
        sources,
        elf,
        present,
        rebuild=None
        if rebuild is None
        else rebuild_parts((entry.path for entry in rebuild.manifest.entries if entry.kind != DIRECTORY), layout),
        package_set=package_set,
        distribution=distribution,
    )
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
        coverage=coverage,
    )


def installation_paths(prefix: Path, series: str, libdir: str) -> list[str]:
    """Prefix-relative paths of every file and link where ``make install`` puts its parts: ``LIBDIR/pythonX.Y``,
    ``include/pythonX.Y``, ``bin`` and the library directories (one level down for a multiarch directory).

    Links are listed, never followed; what is not a part is dropped later by
    :func:`verify.audit.coverage.installation_part`.
    """
    paths = [f"{libdir}/python{series}/{rel}" for rel, _ in tree_entries(prefix / libdir / f"python{series}")]
    paths += [f"include/python{series}/{rel}" for rel, _ in tree_entries(prefix / "include" / f"python{series}")]
    for directory in ("bin", *LIBRARY_DIRS):
        top = prefix / directory
        if not top.is_dir() or top.is_symlink():
            continue
        for child in _listing(top):
            if child.name.startswith("python") and directory in LIBRARY_DIRS:
                continue  # LIBDIR/pythonX.Y: listed above (or another version's, not this installation's)
            if child.is_dir() and not child.is_symlink():
                if directory in LIBRARY_DIRS:
                    paths += [
                        f"{directory}/{child.name}/{grand.name}"
                        for grand in _listing(child)
                        if grand.name.startswith("libpython") and (grand.is_symlink() or not grand.is_dir())
                    ]
                continue
            paths.append(f"{directory}/{child.name}")
    return paths


def _listing(directory: Path) -> list[Path]:
    """The entries of ``directory``, sorted; none when it cannot be read (a library directory of ``/usr`` may
    hold another program's private directory: it is not the installation's, and not a reason to stop)."""
    try:
        return sorted(directory.iterdir())
    except OSError:
        return []


def measure_coverage(
    series: str,
    libdir: str,
    model: SourceModel,
    sources: SourceAudit,
    elf: ElfAudit,
    present_paths: Iterable[str],
    *,
    rebuild: Mapping[str, frozenset[str]] | None,
    package_set: bool,
    distribution: str | None,
) -> AuditCoverage:
    """How much of what ``make install`` installs the audit compared, per part (:mod:`verify.audit.coverage`).

    ``present_paths`` lists the installation (:func:`installation_paths`); ``rebuild`` is what the rebuild of
    ``--against`` installed, per part (None without one).
    """
    listed = list(present_paths)
    present = count_parts(listed, series, libdir)
    by_source = count_parts(sources.compared, series, libdir)
    by_rebuild = count_parts(elf.compared, series, libdir)
    absent_by_part = {part: 0 for part in PARTS}
    unaccounted_by_part = {part: 0 for part in PARTS}
    for group in sources.missing_groups:
        part = HEADERS if group.group == "headers" else STDLIB
        absent_by_part[part] += group.count
        if not group.accounted_for:
            unaccounted_by_part[part] += group.count
    names = {posixpath.basename(path) for path in listed if installation_part(path, series, libdir) is not None}
    stdlib_files = sum(
        1 for rel in model.stdlib if installation_part(f"{libdir}/python{series}/{rel}", series, libdir) == STDLIB
    )
    installs: dict[str, int | None] = {STDLIB: stdlib_files, HEADERS: len(model.headers)}
    for part in (INTERPRETER, LIBPYTHON, CONFIG):
        if rebuild is not None:
            installs[part] = len(rebuild[part])
            absent_by_part[part] = sum(1 for path in rebuild[part] if posixpath.basename(path) not in names)
        elif part == INTERPRETER:
            # make install (altinstall, every configuration) installs bin/pythonX.Y; the rest depends on options.
            installs[part] = 1
            absent_by_part[part] = 0 if f"python{series}" in names else 1
        else:
            installs[part] = None
    # Held against an installation: bin/pythonX.Y alone (make altinstall installs no bin/python3; a distribution
    # may ship the -config scripts elsewhere), unless the distribution says which package ships it.
    if f"python{series}" not in names and not package_for(distribution, INTERPRETER, series):
        unaccounted_by_part[INTERPRETER] = 1
    rebuilt = "with the rebuild (--against)" if rebuild is not None or elf.compared else None
    not_compared = "not compared: no rebuild given (--against)"
    how = {
        STDLIB: f"{by_source[STDLIB]:,} of the {stdlib_files:,} files make install copies from Lib/ compared "
        f"byte for byte with the verified source; extension modules "
        + (f"compared {rebuilt}" if rebuilt else not_compared),
        HEADERS: "compared byte for byte with the verified source's Include/",
        INTERPRETER: f"ELF files compared {rebuilt}" if rebuilt else not_compared,
        LIBPYTHON: (
            f"ELF files compared {rebuilt}; static archives (.a) are not compared" if rebuilt else not_compared
        ),
        CONFIG: "written by make install from the build's configuration (sysconfigdata, config-X.Y/, pyconfig.h): "
        "read for CONFIG_ARGS, not compared",
    }
    parts = tuple(
        PartCoverage(
            part,
            installs[part],
            present[part],
            by_source[part] + by_rebuild[part],
            absent_by_part[part],
            unaccounted_by_part[part],
            how[part],
        )
        for part in PARTS
    )
    return AuditCoverage(PACKAGE_SET if package_set else INSTALLATION, parts)
