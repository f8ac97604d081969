"""Question 3: are the installation's ELF binaries and extension modules the ones a rebuild produced?

A differing ELF file is explained by ``compare``'s own comparators (``verify.compare``), never by an
audit-only guess, but only when that says something: two binaries configured with other arguments
differ for that reason alone, so the configure arguments are compared first. With the rebuild's
bytes at hand (a rebuild result or install tree) its ``CONFIG_ARGS`` are read from its sysconfigdata;
with its manifest alone only the digests can be compared, as ``compare`` does for a manifest.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify.audit.config import read_config_args
from verify.audit.files import regular_files
from verify.audit.layout import LIBRARY_DIRS
from verify.audit.model import ElfAudit, Finding
from verify.common.fsutil import sha256_file
from verify.compare.engine import digest_only_verdict, explain_files
from verify.compare.model import FileComparison
from verify.compare.recorded import recorded_inputs, with_recorded_inputs
from verify.manifest import ELF_KINDS, SYSCONFIGDATA, Manifest, ManifestEntry, detect_kind
from verify.source.releases import Version


@dataclass(frozen=True, slots=True)
class RebuildSide:
    """What ``--against`` names: a rebuild's manifest, and the directory holding its files when available."""

    manifest: Manifest
    root: Path | None = None
    """The install tree the manifest's paths are relative to (None: a manifest file alone)."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """The rebuild's recorded inputs (recipe, settings), when it recorded them."""


def split_config_args(text: str | None) -> tuple[str, ...] | None:
    """``CONFIG_ARGS`` split as the shell would; None when unknown."""
    if text is None:
        return None
    try:
        return tuple(shlex.split(text))
    except ValueError:
        return (text,)


def _rebuild_config_args(rebuild: RebuildSide, series: str) -> tuple[str, ...] | None:
    """The rebuild's ``CONFIG_ARGS``, read from its own sysconfigdata (None without its bytes)."""
    if rebuild.root is None:
        return None
    for entry in rebuild.manifest.entries:
        parent, _, name = entry.path.rpartition("/")
        # The rebuild's own stdlib, free-threaded (pythonX.Yt) or not, whatever the installation's is.
        in_stdlib = _without_libdir(parent).endswith((f"lib/python{series}", f"lib/python{series}t"))
        if entry.kind == SYSCONFIGDATA and in_stdlib and name.endswith(".py"):
            text, _ = read_config_args(rebuild.root / parent)
            if text is not None:
                return split_config_args(text)
    return None


def _flag_difference(installed: tuple[str, ...], rebuilt: tuple[str, ...]) -> str:
    """One line naming the configure arguments only one side has (order does not matter to configure)."""
    here, there = Counter(installed), Counter(rebuilt)
    only_here = sorted((here - there).elements())
    only_there = sorted((there - here).elements())
    return (
        f"only here: {' '.join(shlex.quote(a) for a in only_here) or '-'}; "
        f"only in the rebuild: {' '.join(shlex.quote(a) for a in only_there) or '-'}"
    )


def _elf_candidates(prefix: Path, stdlib: Path, series: str) -> list[str]:
    """Relative paths (to ``prefix``) of the installation's ELF files: stdlib, interpreter, libpython.

    libpython is looked for in both library directories whatever ``stdlib``'s is: ``--with-platlibdir``
    moves the stdlib, not ``LIBDIR`` (Fedora passes ``--libdir=/usr/lib64`` too, a plain build keeps ``lib``).
    A library directory that is a link is not followed.
    """
    candidates: list[Path] = [stdlib / rel for rel, _ in regular_files(stdlib)]
    searched = [(prefix / "bin", f"python{series}*")]
    for libdir in LIBRARY_DIRS:
        searched += [(prefix / libdir, f"libpython{series}*"), (prefix / libdir, f"*/libpython{series}*")]
    for directory, pattern in searched:
        if directory.is_dir() and not directory.is_symlink():
            candidates.extend(p for p in directory.glob(pattern) if p.is_file() and not p.is_symlink())
    found = []
    for path in sorted(set(candidates)):
        if _kind(path) in ELF_KINDS:
            found.append(path.relative_to(prefix).as_posix())
    return found


def _kind(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            head = stream.read(4096)
    except OSError:
        return None
    return detect_kind(path.name, head)


def _without_libdir(path: str) -> str:
    """``path`` with every library directory component spelled ``lib``: a ``lib64`` installation's
    ``lib64/python3.X/lib-dynload/x.so`` is the rebuild's ``lib/python3.X/lib-dynload/x.so``."""
    return "/".join("lib" if part in LIBRARY_DIRS else part for part in path.split("/"))


def _match(rel: str, by_name: dict[str, list[ManifestEntry]]) -> ManifestEntry | None:
    candidates = by_name.get(rel.rsplit("/", 1)[-1], [])
    wanted = _without_libdir(rel)
    exact = [e for e in candidates if (normal := _without_libdir(e.path)) == wanted or normal.endswith("/" + wanted)]
    if exact:
        return exact[0]
    # Distributions move libpython into a multiarch directory: fall back to a unique file name.
    return candidates[0] if len(candidates) == 1 else None


def _verdict(prefix: Path, rel: str, entry: ManifestEntry, rebuild: RebuildSide) -> FileComparison:
    """``compare``'s verdict on the installation's ``rel`` against the rebuild's ``entry``."""
    kind = _kind(prefix / rel) or entry.kind
    if rebuild.root is None:
        size = (prefix / rel).stat().st_size
        installed = ManifestEntry(rel, kind, 0o644, size, "0" * 64)
        return digest_only_verdict(entry, installed)
    verdict = explain_files(entry.path, os.fspath(rebuild.root / entry.path), os.fspath(prefix / rel), entry.kind, kind)
    # The installation records no inputs; the rebuild's (PGO, LTO, build directory) complete the verdict.
    return with_recorded_inputs(verdict, recorded_inputs(rebuild.inputs, {}))


def audit_elf(
    prefix: Path,
    stdlib: Path,
    version: Version,
    against: RebuildSide | None,
    config_args: str | None = None,
    *,
    layout: str | None = None,
) -> ElfAudit:
    """The installation's ELF files against the rebuild ``against`` (only counted when None).

    ``stdlib`` is ``PREFIX/LIBDIR/pythonX.Y`` wherever the audit found it (``lib`` or ``lib64``); a
    file is matched with the rebuild's file of the same path whichever library directory either uses.

    ``config_args`` is the installation's ``CONFIG_ARGS``. A differing file is explained by
    ``compare``'s comparators when both sides' configure arguments are known to be equal (or cannot
    be compared but the rebuild's bytes are there); when they differ, the difference is the flags.
    """
    layout = layout or version.series  # "3.14t" for a free-threaded build's python3.14t, libpython3.14t
    elf_files = _elf_candidates(prefix, stdlib, layout)
    if against is None:
        return ElfAudit(len(elf_files), 0, (), (), "no rebuild given (--against): ELF files not compared")
    installed_flags = split_config_args(config_args)
    rebuilt_flags = _rebuild_config_args(against, version.series)
    flags_match = (
        None
        if installed_flags is None or rebuilt_flags is None
        else (Counter(installed_flags) == Counter(rebuilt_flags))
    )
    by_name: dict[str, list[ManifestEntry]] = {}
    for recorded in against.manifest.entries:
        if recorded.kind in ELF_KINDS:
            by_name.setdefault(recorded.path.rsplit("/", 1)[-1], []).append(recorded)
    matching = 0
    differing: list[Finding] = []
    absent: list[Finding] = []
    compared: list[str] = []
    for rel in elf_files:
        entry = _match(rel, by_name)
        if entry is None:
            absent.append(Finding(rel, "not-in-rebuild", "no ELF file of this name in the rebuild"))
            continue
        compared.append(rel)
        if sha256_file(prefix / rel) == entry.sha256:
            matching += 1
        elif flags_match is False:
            assert installed_flags is not None and rebuilt_flags is not None
            differing.append(
                Finding(
                    rel,
                    "differs-from-rebuild",
                    (
                        f"configured with other arguments than the rebuild's {entry.path} "
                        f"({_flag_difference(installed_flags, rebuilt_flags)}): rebuild with this installation's "
                        "CONFIG_ARGS to compare its binaries"
                    ),
                )
            )
        else:
            verdict = _verdict(prefix, rel, entry, against)
            differing.append(
                Finding(rel, "differs-from-rebuild", f"{verdict.category}: {verdict.explanation}", comparison=verdict)
            )
    where = "its install tree" if against.root is not None else "its manifest only (digests)"
    note = f"compared with a rebuild of {len(against.manifest.entries)} entries, {where}"
    if flags_match is True:
        note += "; configured with the same arguments, so differences are explained by compare's comparators"
    elif flags_match is False:
        note += "; configured with other arguments (see the configure arguments), so binaries are not comparable"
    elif against.root is not None:
        note += "; the configure arguments could not be compared (CONFIG_ARGS missing on one side)"
    else:
        note += "; give the rebuild result directory to read its CONFIG_ARGS and explain each difference"
    return ElfAudit(
        len(elf_files),
        matching,
        tuple(differing),
        tuple(absent),
        note,
        rebuild_config_args=rebuilt_flags,
        config_args_match=flags_match,
        compared=tuple(compared),
    )
