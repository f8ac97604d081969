"""Question 2: does every ``.pyc`` belong to its ``.py``?

The header's source size/mtime or source hash must match the ``.py`` beside it; with an independent
interpreter of the same version, each source is also recompiled and the code compared.
"""

from __future__ import annotations

import _imp
import json
import multiprocessing
import os
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from verify.audit.files import EXPECTED_EXTRA_DIRS, regular_files
from verify.audit.model import Finding, PycAudit
from verify.pyc import PycError, compare_pyc, parse_header
from verify.source.releases import Version

EQUIVALENT_CATEGORIES: Final = frozenset({"identical", "header-only", "reference-flags-only", "path-only"})
RECOMPILE_TIMEOUT: Final = 600.0
PARALLEL_THRESHOLD: Final = 64


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
    for rel, _info in sorted(regular_files(stdlib)):
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
            [
                os.fspath(reference),
                "-I",
                "-S",
                "-c",
                "import importlib.util,sys;print(importlib.util.MAGIC_NUMBER.hex(),sys.version.split()[0])",
            ],
            capture_output=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
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
    requests = [
        (os.fspath(stdlib / j.source), os.fspath(work / f"{i}.pyc"), j.optimize)
        for i, j in enumerate(jobs)
        if j.source is not None
    ]
    try:
        completed = subprocess.run(
            [os.fspath(reference), "-I", "-S", "-c", _RECOMPILE_SCRIPT],
            input=json.dumps(requests).encode(),
            capture_output=True,
            timeout=RECOMPILE_TIMEOUT,
            check=False,
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


def audit_pyc(stdlib: Path, version: Version, prefix: Path, reference: Path | None) -> PycAudit:
    """Every ``.pyc`` under ``stdlib`` against its source; recompiled with ``reference`` when it is independent."""
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
        note = (
            "no independent interpreter of this version was given (--reference-python, e.g. a rebuild from the "
            "verified source): .pyc code was not recompiled, only headers were checked"
        )
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
