"""Audit an installed CPython (a server's ``/usr``, an unpacked container image) against verified source.

Four questions, each answered as data in an :class:`AuditReport`:

1. Is every stdlib ``.py`` the one in the verified source tarball's ``Lib/``? Modified, missing and
   extra files are listed by name, so a distribution's patches show up here.
2. Does every ``.pyc`` belong to its ``.py``? The header's source size/mtime or source hash must match;
   with an independent interpreter of the same version (not the audited one), each ``.pyc`` is also
   recompiled from its source and the code compared. Orphan ``.pyc`` files (no source: a sourceless
   import is a place to hide code) and ``.pyc`` files in unexpected places are reported.
3. Given a rebuild's manifest, are the ELF binaries and extension modules the rebuilt ones?
4. Which ``CONFIG_ARGS`` did the installation record, so it can be rebuilt "like this installation"?

The core takes an already verified, unpacked source tree; obtaining and verifying it is the caller's job.
"""

from __future__ import annotations

import _imp
import difflib
import json
import multiprocessing
import os
import shlex
import stat
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from verify.compare.comparators.config import sysconfig_vars
from verify.errors import OperationalError
from verify.fsutil import sha256_file
from verify.manifest import ELF_KINDS, Manifest, ManifestEntry, detect_kind
from verify.pyc import PycError, compare_pyc, parse_header
from verify.releases import Version

EXPECTED_EXTRA_DIRS: Final = frozenset({"site-packages", "dist-packages"})
"""Third-party locations inside the stdlib directory: their contents are expected extras."""
GENERATED_PREFIXES: Final = ("_sysconfigdata", "_sysconfig_vars")
"""Modules ``make install`` generates at build time: not in ``Lib/``, expected in every installation."""
EQUIVALENT_CATEGORIES: Final = frozenset({"identical", "header-only", "reference-flags-only", "path-only"})
MAX_SOURCE_BYTES: Final = 64 << 20
RECOMPILE_TIMEOUT: Final = 600.0
PARALLEL_THRESHOLD: Final = 64


class AuditError(OperationalError):
    """The installation or the source tree cannot be audited (missing stdlib directory, unreadable files)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One file the audit has something to say about."""

    path: str
    """Relative to the installation prefix."""
    status: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SourceAudit:
    """Stdlib ``.py`` files against the verified ``Lib/``."""

    checked: int
    identical: int
    modified: tuple[Finding, ...]
    missing: tuple[Finding, ...]
    extra: tuple[Finding, ...]
    expected_extra: tuple[Finding, ...]
    """Third-party directories and generated modules, one finding per directory or file."""

    def missing_by_package(self) -> dict[str, int]:
        """Missing files counted by top-level module or package (a distribution's split packages)."""
        counts = Counter(finding.detail for finding in self.missing)
        return dict(sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class PycAudit:
    """``.pyc`` files against their sources."""

    checked: int
    header_ok: int
    stale: tuple[Finding, ...]
    """The header names a different source (size, mtime or hash) than the ``.py`` beside it."""
    orphans: tuple[Finding, ...]
    unexpected: tuple[Finding, ...]
    unreadable: tuple[Finding, ...]
    recompiled: int
    equivalent: int
    mismatched: tuple[Finding, ...]
    reference: str
    """Which interpreter recompiled the sources, or why none did."""


@dataclass(frozen=True, slots=True)
class ElfAudit:
    """ELF binaries and extension modules against a rebuild's manifest."""

    checked: int
    matching: int
    differing: tuple[Finding, ...]
    not_in_rebuild: tuple[Finding, ...]
    note: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Everything the audit found about one installation."""

    prefix: str
    version: str
    stdlib: str
    sources: SourceAudit
    pyc: PycAudit
    elf: ElfAudit
    config_args: str | None
    """``CONFIG_ARGS`` from the installation's sysconfigdata (None if none was found)."""
    sysconfigdata: str | None
    notes: tuple[str, ...] = ()

    @property
    def config_args_list(self) -> tuple[str, ...]:
        """``CONFIG_ARGS`` split as the shell would: arguments for ``./configure``."""
        if not self.config_args:
            return ()
        try:
            return tuple(shlex.split(self.config_args))
        except ValueError:
            return (self.config_args,)

    def findings(self) -> list[Finding]:
        """Everything that deviates from the verified source (expected extras excluded)."""
        return [
            *self.sources.modified,
            *self.sources.missing,
            *self.sources.extra,
            *self.pyc.stale,
            *self.pyc.orphans,
            *self.pyc.unexpected,
            *self.pyc.unreadable,
            *self.pyc.mismatched,
            *self.elf.differing,
        ]

    @property
    def clean(self) -> bool:
        """True when the installation matches the verified source in everything checked."""
        return not self.findings()


# --------------------------------------------------------------------------- helpers


def _files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files below ``root`` (relative POSIX path, lstat), symlinks not followed."""
    pending = [("", os.fspath(root))]
    while pending:
        relative_dir, absolute = pending.pop()
        with os.scandir(absolute) as listing:
            children = list(listing)
        for child in children:
            relative = f"{relative_dir}/{child.name}" if relative_dir else child.name
            info = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                pending.append((relative, child.path))
            elif stat.S_ISREG(info.st_mode):
                yield relative, info


def _top(relative: str) -> str:
    first = relative.split("/", 1)[0]
    return first.removesuffix(".py")


def _line_delta(installed: bytes, upstream: bytes) -> str:
    a = upstream.decode("utf-8", "replace").splitlines()
    b = installed.decode("utf-8", "replace").splitlines()
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    return f"+{added} -{removed} lines against Lib/"


# --------------------------------------------------------------------------- (1) sources


def _audit_sources(stdlib: Path, lib: Path, prefix_rel: str) -> tuple[SourceAudit, dict[str, os.stat_result]]:
    upstream = {rel for rel, _ in _files(lib) if rel.endswith(".py")}
    installed: dict[str, os.stat_result] = {}
    expected_dirs: Counter[str] = Counter()
    extra: list[Finding] = []
    expected_extra: list[Finding] = []
    for rel, info in _files(stdlib):
        if not rel.endswith(".py"):
            continue
        parts = rel.split("/")
        third_party = next((p for p in parts[:-1] if p in EXPECTED_EXTRA_DIRS), None)
        if third_party is not None:
            expected_dirs["/".join(parts[: parts.index(third_party) + 1])] += 1
            continue
        installed[rel] = info
    identical = 0
    modified: list[Finding] = []
    for rel in sorted(installed):
        shown = f"{prefix_rel}/{rel}"
        if rel not in upstream:
            if rel.rsplit("/", 1)[-1].startswith(GENERATED_PREFIXES):
                expected_extra.append(Finding(shown, "generated", "written by make install; not in Lib/"))
            else:
                extra.append(Finding(shown, "extra", "not in the verified source's Lib/"))
            continue
        mine = (stdlib / rel).read_bytes()
        theirs = (lib / rel).read_bytes()
        if mine == theirs:
            identical += 1
        else:
            modified.append(Finding(shown, "modified", _line_delta(mine, theirs)))
    missing = [Finding(f"{prefix_rel}/{rel}", "missing", _top(rel)) for rel in sorted(upstream - installed.keys())]
    expected_extra.extend(
        Finding(f"{prefix_rel}/{directory}", "third-party", f"{count} .py file(s): site packages, not the stdlib")
        for directory, count in sorted(expected_dirs.items())
    )
    audit = SourceAudit(
        checked=len(installed),
        identical=identical,
        modified=tuple(modified),
        missing=tuple(missing),
        extra=tuple(extra),
        expected_extra=tuple(expected_extra),
    )
    return audit, installed


# --------------------------------------------------------------------------- (2) .pyc


@dataclass(frozen=True, slots=True)
class _PycJob:
    pyc: str
    """Path relative to the stdlib directory."""
    source: str | None
    optimize: int


def _pyc_jobs(stdlib: Path, tag: str, base: str) -> tuple[list[_PycJob], list[Finding], list[Finding]]:
    """Pair every ``.pyc`` with its source; sort out orphans and ``.pyc`` files in odd places."""
    jobs: list[_PycJob] = []
    orphans: list[Finding] = []
    unexpected: list[Finding] = []
    for rel, _info in sorted(_files(stdlib)):
        if not rel.endswith(".pyc"):
            continue
        parts = rel.split("/")
        if any(part in EXPECTED_EXTRA_DIRS for part in parts[:-1]):
            continue
        shown = f"{base}/{rel}"
        directory, name = "/".join(parts[:-1]), parts[-1]
        if parts[-2:-1] != ["__pycache__"]:
            # Outside __pycache__ the import system loads a .pyc even with no .py at all (PEP 3147).
            source = f"{directory}/{name[:-1]}" if directory else name[:-1]
            if (stdlib / source).is_file():
                unexpected.append(Finding(shown, "legacy-location", "a .pyc beside its source, outside __pycache__"))
            else:
                orphans.append(Finding(shown, "sourceless", "importable without any source: sourceless .pyc"))
            continue
        module, _, rest = name.partition(".")
        if not rest.startswith(tag + "."):
            unexpected.append(Finding(shown, "other-interpreter", f"cache tag is not {tag}"))
            continue
        level = rest[len(tag) + 1 : -len(".pyc")]
        optimize = {"": 0, "opt-1": 1, "opt-2": 2}.get(level)
        if optimize is None:
            unexpected.append(Finding(shown, "unknown-optimization", f"unknown optimization level {level!r}"))
            continue
        package = "/".join(parts[:-2])
        source = f"{package}/{module}.py" if package else f"{module}.py"
        if not (stdlib / source).is_file():
            orphans.append(Finding(shown, "orphan", f"no {module}.py beside __pycache__"))
            continue
        jobs.append(_PycJob(rel, source, optimize))
    return jobs, orphans, unexpected


def _check_header(stdlib: Path, job: _PycJob, series: str) -> tuple[str, str]:
    """('ok', '') or (status, detail) for one ``.pyc`` header against its source."""
    assert job.source is not None
    try:
        data = (stdlib / job.pyc).read_bytes()
        header = parse_header(data)
    except PycError as error:
        return "unreadable", error.message
    source = stdlib / job.source
    if header.python_version != series:
        return "wrong-version", f"written by Python {header.python_version} (magic {header.magic}), not {series}"
    if header.kind == "timestamp":
        info = source.stat()
        expected = (int(info.st_mtime) & 0xFFFFFFFF, info.st_size & 0xFFFFFFFF)
        if (header.mtime, header.source_size) != expected:
            return "stale", (
                f"header says mtime={header.mtime} size={header.source_size}, the source has "
                f"mtime={expected[0]} size={expected[1]}"
            )
        return "ok", ""
    # The key of CPython's source hash is the raw 4-byte magic of the interpreter that wrote the file.
    key = int.from_bytes(data[:4], "little")
    actual = _imp.source_hash(key, source.read_bytes())
    if actual != header.source_hash:
        mode = "never checked at import: " if header.kind == "unchecked-hash" else ""
        return "stale", f"{mode}source hash in header {header.source_hash!r:.40} does not match the source"
    return "ok", ""


_RECOMPILE_SCRIPT: Final = r"""
import importlib.util, json, marshal, sys
jobs = json.load(sys.stdin)
magic = importlib.util.MAGIC_NUMBER
for source, out, optimize in jobs:
    try:
        with open(source, "rb") as stream:
            code = compile(stream.read(), source, "exec", dont_inherit=True, optimize=optimize)
        with open(out, "wb") as stream:
            stream.write(magic + b"\x00" * 12 + marshal.dumps(code))
    except (SyntaxError, ValueError, OSError) as error:
        print(json.dumps([source, str(error)]))
"""


def _probe_reference(reference: Path, magic: bytes) -> str | None:
    """Why ``reference`` cannot recompile for this magic number; None if it can."""
    try:
        completed = subprocess.run(
            [os.fspath(reference), "-I", "-S", "-c",
             "import importlib.util,sys;print(importlib.util.MAGIC_NUMBER.hex(),sys.version.split()[0])"],
            capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"reference interpreter {reference} could not run: {error}"
    if completed.returncode != 0:
        return f"reference interpreter {reference} failed (exit {completed.returncode})"
    found_magic, _, found_version = completed.stdout.decode().strip().partition(" ")
    if found_magic != magic.hex():
        return f"reference interpreter {reference} (Python {found_version}) writes a different bytecode version"
    return None


def _compare_one(item: tuple[str, str]) -> str:
    """Worker: the compare_pyc category of an installed and a recompiled ``.pyc`` (or 'error: ...')."""
    installed, recompiled = item
    try:
        with open(installed, "rb") as a, open(recompiled, "rb") as b:
            return compare_pyc(a.read(), b.read()).category
    except (OSError, PycError) as error:
        return f"error: {error}"


def _recompile(
    stdlib: Path, base: str, jobs: list[_PycJob], reference: Path, work: Path
) -> tuple[int, int, list[Finding], str | None]:
    """Recompile every job's source with ``reference``; compare code. Returns counts, mismatches, failure."""
    requests = [(os.fspath(stdlib / j.source), os.fspath(work / f"{i}.pyc"), j.optimize)
                for i, j in enumerate(jobs) if j.source is not None]
    try:
        completed = subprocess.run(
            [os.fspath(reference), "-I", "-S", "-c", _RECOMPILE_SCRIPT],
            input=json.dumps(requests).encode(), capture_output=True, timeout=RECOMPILE_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return 0, 0, [], f"recompiling with {reference} failed: {error}"
    if completed.returncode != 0:
        return 0, 0, [], f"recompiling with {reference} failed (exit {completed.returncode})"
    failures = {}
    for line in completed.stdout.decode("utf-8", "replace").splitlines():
        try:
            source, message = json.loads(line)
        except ValueError:
            continue
        failures[source] = message
    items = [(os.fspath(stdlib / j.pyc), os.fspath(work / f"{i}.pyc")) for i, j in enumerate(jobs)]
    if len(items) >= PARALLEL_THRESHOLD and len(os.sched_getaffinity(0)) > 1:
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=len(os.sched_getaffinity(0)), mp_context=context) as pool:
            categories = list(pool.map(_compare_one, items, chunksize=16))
    else:
        categories = [_compare_one(item) for item in items]
    mismatched: list[Finding] = []
    equivalent = 0
    for job, category in zip(jobs, categories, strict=True):
        source = os.fspath(stdlib / job.source) if job.source else ""
        if source in failures:
            mismatched.append(Finding(f"{base}/{job.pyc}", "not-recompilable", failures[source]))
        elif category in EQUIVALENT_CATEGORIES:
            equivalent += 1
        else:
            detail = "code differs from its recompiled source" if category == "semantic" else category
            mismatched.append(Finding(f"{base}/{job.pyc}", "code-mismatch", detail))
    return len(jobs), equivalent, mismatched, None


def _audit_pyc(stdlib: Path, version: Version, prefix: Path, reference: Path | None) -> PycAudit:
    tag = f"cpython-{version.major}{version.minor}"
    base = stdlib.relative_to(prefix).as_posix()
    jobs, orphans, unexpected = _pyc_jobs(stdlib, tag, base)
    stale: list[Finding] = []
    unreadable: list[Finding] = []
    good: list[_PycJob] = []
    for job in jobs:
        status, detail = _check_header(stdlib, job, version.series)
        if status == "ok":
            good.append(job)
        elif status == "unreadable":
            unreadable.append(Finding(f"{base}/{job.pyc}", status, detail))
        else:
            stale.append(Finding(f"{base}/{job.pyc}", status, detail))
    recompiled = equivalent = 0
    mismatched: list[Finding] = []
    if reference is None:
        note = ("no independent interpreter of this version was given (--reference-python, e.g. a rebuild from the "
                "verified source): .pyc code was not recompiled, only headers were checked")
    elif _is_within(reference, prefix):
        note = f"{reference} belongs to the audited installation; refusing to use it as the reference"
    elif not good:
        note = "no .pyc with a valid header to recompile"
    else:
        magic = (stdlib / good[0].pyc).read_bytes()[:4]
        problem = _probe_reference(reference, magic)
        if problem is not None:
            note = problem
        else:
            with tempfile.TemporaryDirectory(prefix="cpython-verify-audit-") as work:
                recompiled, equivalent, mismatched, failure = _recompile(stdlib, base, good, reference, Path(work))
            note = failure or f"recompiled {recompiled} source(s) with {reference}"
    return PycAudit(
        checked=len(jobs),
        header_ok=len(good),
        stale=tuple(stale),
        orphans=tuple(orphans),
        unexpected=tuple(unexpected),
        unreadable=tuple(unreadable),
        recompiled=recompiled,
        equivalent=equivalent,
        mismatched=tuple(mismatched),
        reference=note,
    )


def _is_within(program: Path, prefix: Path) -> bool:
    try:
        resolved = program.resolve()
        return resolved.is_relative_to(prefix.resolve())
    except OSError:
        return False


# --------------------------------------------------------------------------- (3) ELF


def _elf_candidates(prefix: Path, stdlib: Path, series: str) -> list[str]:
    """Relative paths (to ``prefix``) of the installation's ELF files: stdlib, interpreter, libpython."""
    candidates: list[Path] = [stdlib / rel for rel, _ in _files(stdlib)]
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


def _match(rel: str, by_name: dict[str, list[ManifestEntry]]) -> ManifestEntry | None:
    candidates = by_name.get(rel.rsplit("/", 1)[-1], [])
    exact = [e for e in candidates if e.path == rel or e.path.endswith("/" + rel)]
    if exact:
        return exact[0]
    # Distributions move libpython into a multiarch directory: fall back to a unique file name.
    return candidates[0] if len(candidates) == 1 else None


def _audit_elf(prefix: Path, stdlib: Path, version: Version, against: Manifest | None) -> ElfAudit:
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
        elif sha256_file(prefix / rel) == entry.sha256:
            matching += 1
        else:
            differing.append(Finding(rel, "differs-from-rebuild", f"sha256 differs from the rebuild's {entry.path}"))
    note = f"compared with a rebuild manifest of {len(against.entries)} entries"
    return ElfAudit(len(elf_files), matching, tuple(differing), tuple(absent), note)


# --------------------------------------------------------------------------- (4) CONFIG_ARGS


def _config_args(stdlib: Path) -> tuple[str | None, str | None]:
    for candidate in sorted(stdlib.glob("_sysconfigdata*.py")):
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        variables = sysconfig_vars(text)
        if variables and isinstance(variables.get("CONFIG_ARGS"), str):
            return str(variables["CONFIG_ARGS"]), candidate.name
    return None, None


# --------------------------------------------------------------------------- the audit


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
        sources, _installed = _audit_sources(stdlib, lib, stdlib.relative_to(prefix).as_posix())
        pyc = _audit_pyc(stdlib, version, prefix, reference_python)
        elf = _audit_elf(prefix, stdlib, version, against)
        config_args, sysconfigdata = _config_args(stdlib)
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
