"""Question 3: are the installation's ELF binaries and extension modules the ones a rebuild produced?"""

from __future__ import annotations

import hashlib
from pathlib import Path

from verify.audit.files import regular_files
from verify.audit.model import ElfAudit, Finding
from verify.manifest import ELF_KINDS, Manifest, ManifestEntry, detect_kind
from verify.releases import Version


def _elf_candidates(prefix: Path, stdlib: Path, series: str) -> list[str]:
    """Relative paths (to ``prefix``) of the installation's ELF files: stdlib, interpreter, libpython."""
    candidates: list[Path] = [stdlib / rel for rel, _ in regular_files(stdlib)]
    for directory, pattern in ((prefix / "bin", f"python{series}*"), (prefix / "lib", f"libpython{series}*"),
                               (prefix / "lib", f"*/libpython{series}*")):
        if directory.is_dir():
            candidates.extend(p for p in directory.glob(pattern) if p.is_file() and not p.is_symlink())
    found = []
    for path in sorted(set(candidates)):
        try:
            with path.open("rb") as stream:
                head = stream.read(4096)
        except OSError:
            continue
        if detect_kind(path.name, head) in ELF_KINDS:
            found.append(path.relative_to(prefix).as_posix())
    return found


def _digest(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _match(rel: str, by_name: dict[str, list[ManifestEntry]]) -> ManifestEntry | None:
    candidates = by_name.get(rel.rsplit("/", 1)[-1], [])
    exact = [e for e in candidates if e.path == rel or e.path.endswith("/" + rel)]
    if exact:
        return exact[0]
    # Distributions move libpython into a multiarch directory: fall back to a unique file name.
    return candidates[0] if len(candidates) == 1 else None


def audit_elf(prefix: Path, stdlib: Path, version: Version, against: Manifest | None) -> ElfAudit:
    """The installation's ELF files against the rebuild manifest ``against`` (only counted when None)."""
    elf_files = _elf_candidates(prefix, stdlib, version.series)
    if against is None:
        return ElfAudit(len(elf_files), 0, (), (), "no rebuild manifest given (--against): ELF files not compared")
    by_name: dict[str, list[ManifestEntry]] = {}
    for recorded in against.entries:
        if recorded.kind in ELF_KINDS:
            by_name.setdefault(recorded.path.rsplit("/", 1)[-1], []).append(recorded)
    matching = 0
    differing: list[Finding] = []
    absent: list[Finding] = []
    for rel in elf_files:
        entry = _match(rel, by_name)
        if entry is None:
            absent.append(Finding(rel, "not-in-rebuild", "no ELF file of this name in the rebuild"))
        elif _digest(prefix / rel) == entry.sha256:
            matching += 1
        else:
            differing.append(Finding(rel, "differs-from-rebuild", f"sha256 differs from the rebuild's {entry.path}"))
    note = f"compared with a rebuild manifest of {len(against.entries)} entries"
    return ElfAudit(len(elf_files), matching, tuple(differing), tuple(absent), note)
