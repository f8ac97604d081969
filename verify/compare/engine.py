"""Compare two install trees or manifests: which paths differ, how, and why.

The manifest diff is pure and linear (both manifests are sorted). Content differences are then
explained: by the comparators when both sides' bytes are available (only for differing digests, in
worker processes, because the comparators are CPU-bound Python), or from the recorded digests and
``.pyc`` headers alone when a side is only a manifest.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Final

from verify.compare.comparators import FilePair, explain
from verify.compare.diffoscope import DiffoscopeSettings, run_all
from verify.compare.model import (
    CONTENT,
    LINK_TARGET,
    MODE,
    ONLY_IN_A,
    ONLY_IN_B,
    TYPE,
    Comparison,
    Difference,
    FileComparison,
)
from verify.compare.paths import most_common_pair
from verify.compare.recorded import comparison_build_paths, recorded_inputs, with_recorded_inputs
from verify.compare.sides import Side, load_side
from verify.manifest import DIRECTORY, SPECIAL, SYMLINK, Manifest, ManifestEntry

MAX_COMPARED_BYTES: Final = 1 << 30
"""Files larger than this are judged by digest only: the comparators hold both files in memory."""
PARALLEL_THRESHOLD: Final = 4
"""Fewer differing files than this are compared in-process: a worker pool costs more than it saves."""


def _node_type(entry: ManifestEntry) -> str:
    return entry.kind if entry.kind in (DIRECTORY, SYMLINK, SPECIAL) else "file"


def _merge(
    a: tuple[ManifestEntry, ...], b: tuple[ManifestEntry, ...]
) -> Iterator[tuple[str, ManifestEntry | None, ManifestEntry | None]]:
    """Walk two path-sorted entry lists together (linear, no dictionaries of a million entries)."""
    i = j = 0
    while i < len(a) or j < len(b):
        if j >= len(b) or (i < len(a) and a[i].path < b[j].path):
            yield a[i].path, a[i], None
            i += 1
        elif i >= len(a) or b[j].path < a[i].path:
            yield b[j].path, None, b[j]
            j += 1
        else:
            yield a[i].path, a[i], b[j]
            i += 1
            j += 1


def diff_manifests(a: Manifest, b: Manifest) -> tuple[Difference, ...]:
    """Every path whose presence, type, mode, link target or content differs; no explanations yet."""
    entries_a = tuple(sorted(a.entries, key=lambda e: e.path))
    entries_b = tuple(sorted(b.entries, key=lambda e: e.path))
    differences: list[Difference] = []
    for path, left, right in _merge(entries_a, entries_b):
        if left is None:
            assert right is not None
            differences.append(Difference(path, right.kind, (ONLY_IN_B,), None, right))
            continue
        if right is None:
            differences.append(Difference(path, left.kind, (ONLY_IN_A,), left, None))
            continue
        changes: list[str] = []
        if _node_type(left) != _node_type(right):
            changes.append(TYPE)
        else:
            if left.mode != right.mode:
                changes.append(MODE)
            if left.target != right.target:
                changes.append(LINK_TARGET)
            if left.sha256 != right.sha256:
                changes.append(CONTENT)
        if changes:
            differences.append(Difference(path, left.kind, tuple(changes), left, right))
    return tuple(differences)


def digest_only_verdict(left: ManifestEntry, right: ManifestEntry) -> FileComparison:
    """What two manifest entries alone say about a content difference (no bytes to open)."""
    suffix = "only the manifests' digests were available; compare the install trees to explain it"
    if left.kind != right.kind:
        return FileComparison("digest", "kind-changed", f"the file changed type: {left.kind} vs {right.kind}; {suffix}")
    if left.pyc is not None and right.pyc is not None:
        if left.pyc != right.pyc:
            return FileComparison(
                "digest",
                "pyc-header",
                f"the .pyc header differs ({left.pyc.describe()} vs {right.pyc.describe()}); whether the code "
                f"differs too is unknown: {suffix}",
            )
        return FileComparison("digest", "content", f"same .pyc header, different marshalled code; {suffix}")
    return FileComparison(
        "digest", "content", f"sha256 differs ({left.size} vs {right.size} bytes, {left.kind}); {suffix}"
    )


def _explain_task(task: tuple[str, str, str, str, str]) -> FileComparison:
    """Worker: read both files and ask the comparators (top-level so a process pool can call it)."""
    return explain_files(*task)


def explain_files(path: str, full_a: str, full_b: str, kind_a: str, kind_b: str) -> FileComparison:
    """Read two differing files (``kind_a``/``kind_b``: their manifest kinds) and ask the comparator registry.

    What ``compare`` does for each differing pair of two trees; ``audit --against`` uses it for ELF files.
    """
    try:
        with open(full_a, "rb") as stream_a, open(full_b, "rb") as stream_b:
            data_a = stream_a.read(MAX_COMPARED_BYTES + 1)
            data_b = stream_b.read(MAX_COMPARED_BYTES + 1)
    except OSError as error:
        return FileComparison(
            "digest", "unreadable", f"the file could not be read for comparison: {error.strerror or error}"
        )
    if len(data_a) > MAX_COMPARED_BYTES or len(data_b) > MAX_COMPARED_BYTES:
        return FileComparison(
            "digest", "content", f"larger than {MAX_COMPARED_BYTES >> 20} MiB: compared by sha256 only"
        )
    return explain(FilePair(path, kind_a, kind_b, data_a, data_b))


def _run_tasks(tasks: list[tuple[str, str, str, str, str]], workers: int) -> list[FileComparison]:
    if len(tasks) < PARALLEL_THRESHOLD or workers <= 1:
        return [_explain_task(task) for task in tasks]
    # forkserver, not fork: the caller may have threads (hashing pools), and forking those is unsafe.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
        # Largest first, so one big binary does not start last and finish alone.
        order = sorted(range(len(tasks)), key=lambda i: -_size(tasks[i][1]))
        results = dict(zip(order, pool.map(_explain_task, [tasks[i] for i in order]), strict=True))
    return [results[i] for i in range(len(tasks))]


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size  # noqa: PTH116 - str path from the task
    except OSError:
        return 0


def compare_sides(
    a: Side,
    b: Side,
    *,
    workers: int | None = None,
    diffoscope: DiffoscopeSettings | None = None,
) -> Comparison:
    """Compare two loaded sides and explain every content difference.

    Files with equal sha256 are never opened. With both trees present, differing files go to the
    comparator registry; otherwise the verdict comes from the manifests and says so.
    """
    differences = list(diff_manifests(a.manifest, b.manifest))
    notes = [*a.notes, *b.notes]
    deep = a.root is not None and b.root is not None
    if not deep:
        which = " and ".join(side.info.label for side in (a, b) if side.root is None)
        notes.append(f"{which}: manifest only, so content differences are judged by sha256 and recorded kind/header")
    content_indexes = [i for i, d in enumerate(differences) if CONTENT in d.changes]
    if deep:
        assert a.root is not None and b.root is not None
        tasks = []
        for index in content_indexes:
            difference = differences[index]
            assert difference.a is not None and difference.b is not None
            tasks.append(
                (
                    difference.path,
                    os.fspath(a.root / difference.path),
                    os.fspath(b.root / difference.path),
                    difference.a.kind,
                    difference.b.kind,
                )
            )
        verdicts = _run_tasks(tasks, workers or len(os.sched_getaffinity(0)))
    else:
        verdicts = []
        for index in content_indexes:
            left, right = differences[index].a, differences[index].b
            assert left is not None and right is not None
            verdicts.append(digest_only_verdict(left, right))
    recorded = recorded_inputs(a.info.inputs, b.info.inputs)
    for index, verdict in zip(content_indexes, verdicts, strict=True):
        differences[index] = replace(differences[index], comparison=with_recorded_inputs(verdict, recorded))
    if diffoscope is not None:
        if deep and a.root is not None and b.root is not None:
            pairs = [
                (differences[i].path, a.root / differences[i].path, b.root / differences[i].path)
                for i in content_indexes
            ]
            outputs, diffoscope_notes = run_all(pairs, diffoscope)
            notes.extend(diffoscope_notes)
            differences = [replace(d, diffoscope=outputs[d.path]) if d.path in outputs else d for d in differences]
        else:
            notes.append("--diffoscope needs the files themselves: both sides must be trees or rebuild results")
    differences = name_install_prefixes(differences)
    if deep and a.root is not None and b.root is not None:
        differences = name_stale_hash_pyc(differences, a.root, b.root)
    guessed = most_common_pair(
        d.comparison.build_paths
        for d in differences
        if d.comparison is not None and d.comparison.category != INSTALL_PREFIX
    )
    build_paths = comparison_build_paths(recorded, guessed)
    return Comparison(a.info, b.info, tuple(differences), build_paths, tuple(notes))


INSTALL_PREFIX: Final = "install-prefix"
STALE_SOURCE_HASH: Final = "stale-source-hash"


def _stale_side(root: Path, pyc_path: str) -> str | None:
    """Why the checked-hash ``.pyc`` at ``pyc_path`` does not belong to the ``.py`` beside it (None when it does)."""
    import _imp

    from verify.pyc import PycError, parse_header

    parts = pyc_path.split("/")
    if len(parts) < 2 or parts[-2] != "__pycache__" or not parts[-1].endswith(".pyc"):
        return None
    source = "/".join([*parts[:-2], parts[-1].split(".", 1)[0] + ".py"])
    try:
        data = (root / pyc_path).read_bytes()[:16]
        header = parse_header(data)
        if header.kind != "checked-hash":
            return None
        source_bytes = (root / source).read_bytes()
    except (OSError, PycError):
        return None
    if _imp.source_hash(int.from_bytes(data[:4], "little"), source_bytes) == header.source_hash:
        return None
    return f"its checked source hash does not match {source} beside it"


def name_stale_hash_pyc(differences: list[Difference], root_a: Path, root_b: Path) -> list[Difference]:
    """A ``header-only`` ``.pyc`` whose checked source hash no longer matches its source is not harmless.

    The code is identical and only the header differs, but a checked-hash ``.pyc`` is validated against
    its source at import: CPython recompiles it (or ignores it, on a read-only tree) instead of using
    it. The advice to set SOURCE_DATE_EPOCH would be wrong: the file is already hash-based.
    """
    renamed = []
    for difference in differences:
        verdict = difference.comparison
        if verdict is not None and verdict.comparator == "pyc" and verdict.category in ("header-only", "source-hash"):
            stale = [
                (label, why)
                for label, root in (("A", root_a), ("B", root_b))
                if (why := _stale_side(root, difference.path)) is not None
            ]
            if stale:
                sides = "; ".join(f"{label}: {why}" for label, why in stale)
                verdict = replace(
                    verdict,
                    category=STALE_SOURCE_HASH,
                    explanation=(
                        f"the marshalled code is identical, but {sides}: CPython will recompile or ignore that .pyc "
                        "rather than load it, so it was not made from this source; recompile it and find out where it "
                        "came from (SOURCE_DATE_EPOCH would change nothing: it is already hash-based)"
                    ),
                )
                difference = replace(difference, comparison=verdict)
        renamed.append(difference)
    return renamed


def name_install_prefixes(differences: list[Difference]) -> list[Difference]:
    """Call a path pair that is the two sides' ``--prefix`` an install prefix, wherever it was guessed as a build path.

    Only the configuration files say what the prefix is (``prefix`` in sysconfigdata and the Makefile);
    a binary or a ``.pyc`` that embeds the same pair records the installation prefix, and the advice
    to build under one fixed path would change nothing.
    """
    prefixes = {
        d.comparison.build_paths
        for d in differences
        if d.comparison is not None and d.comparison.category == INSTALL_PREFIX
    }
    renamed = []
    for difference in differences:
        verdict = difference.comparison
        if verdict is not None and verdict.category == "build-path" and verdict.build_paths in prefixes:
            assert verdict.build_paths is not None
            old, new = verdict.build_paths
            verdict = replace(
                verdict,
                category=INSTALL_PREFIX,
                explanation=(
                    f"{verdict.comparator}: the differing paths {old} vs {new} are the installation prefix "
                    "(configure --prefix), not a build path: configure both with the same --prefix to compare them"
                ),
            )
            difference = replace(difference, comparison=verdict)
        renamed.append(difference)
    return renamed


def compare_paths(
    a: Path, b: Path, *, workers: int | None = None, diffoscope: DiffoscopeSettings | None = None
) -> Comparison:
    """Load ``a`` and ``b`` (manifest file, install tree, or rebuild result each) and compare them."""
    return compare_sides(
        load_side(a, "A", workers=workers), load_side(b, "B", workers=workers), workers=workers, diffoscope=diffoscope
    )
