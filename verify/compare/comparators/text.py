"""Text and arbitrary bytes: capped unified diffs, first differing offset, embedded paths."""

from __future__ import annotations

import re
from typing import Final

from verify.common.linediff import BoundedMatcher, unified_diff
from verify.compare.comparators.interface import Comparator, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import guess_build_paths
from verify.manifest import ELF_KINDS, TEXT_KINDS

MAX_DIFF_INPUT_LINES: Final = 20_000
"""Longer texts are diffed by their first lines only (and :mod:`verify.common.linediff` bounds the work of the rest)."""
MAX_COUNTED_BYTES: Final = 1 << 20
_CHUNK: Final = 1 << 16
_PRINTABLE: Final = re.compile(rb"[\x20-\x7e]{6,}")


def first_difference(a: bytes, b: bytes) -> int:
    """The offset of the first differing byte (the shorter length when one is a prefix of the other)."""
    shorter = min(len(a), len(b))
    view_a, view_b = memoryview(a)[:shorter], memoryview(b)[:shorter]
    for start in range(0, shorter, _CHUNK):
        if view_a[start : start + _CHUNK] != view_b[start : start + _CHUNK]:
            chunk_a, chunk_b = a[start : start + _CHUNK], b[start : start + _CHUNK]
            return start + next(i for i, (x, y) in enumerate(zip(chunk_a, chunk_b, strict=False)) if x != y)
    return min(len(a), len(b))


def changed_lines(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """The lines removed from ``a`` and added in ``b`` (by the opcodes of a bounded diff)."""
    removed: list[str] = []
    added: list[str] = []
    matcher = BoundedMatcher(a, b)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed.extend(a[i1:i2])
            added.extend(b[j1:j2])
    return removed, added


def replaced_everywhere(pair: FilePair, paths: tuple[str, str]) -> bool:
    """True when B's bytes are A's with every occurrence of path ``paths[0]`` replaced by ``paths[1]``:
    the evidence that an embedded build path is the whole difference, not one difference among others."""
    old, new = paths[0].encode("utf-8", "surrogateescape"), paths[1].encode("utf-8", "surrogateescape")
    return pair.data_a.replace(old, new) == pair.data_b


def text_difference(pair: FilePair, comparator: str, what: str) -> FileComparison:
    """A capped unified diff of two texts, with the build-path pair guessed from the changed lines."""
    lines_a = pair.data_a.decode("utf-8", "replace").splitlines()
    lines_b = pair.data_b.decode("utf-8", "replace").splitlines()
    cut = len(lines_a) > MAX_DIFF_INPUT_LINES or len(lines_b) > MAX_DIFF_INPUT_LINES
    lines_a, lines_b = lines_a[:MAX_DIFF_INPUT_LINES], lines_b[:MAX_DIFF_INPUT_LINES]
    diff = list(unified_diff(lines_a, lines_b, "A/" + pair.path, "B/" + pair.path, context=1))
    removed, added = changed_lines(lines_a, lines_b)
    build_paths = guess_build_paths(removed, added)
    details, truncated = capped(diff)
    changed = max(len(removed), len(added))
    if build_paths is not None and replaced_everywhere(pair, build_paths):
        category = "build-path"
        explanation = (
            f"{what}: {changed} line(s) differ, embedding build path {build_paths[0]} vs {build_paths[1]}; "
            "use a fixed build path"
        )
    elif not diff:
        category = "whitespace"
        explanation = f"{what}: the lines are equal; line endings or a final newline differ"
    else:
        category = "content"
        explanation = f"{what}: {changed} line(s) differ"
        if build_paths is not None:
            explanation += (
                f", more than the embedded build path {build_paths[0]} vs {build_paths[1]} accounts for "
                "(replacing it does not make the files equal)"
            )
    if cut:
        explanation += f" (diffed the first {MAX_DIFF_INPUT_LINES} lines only)"
    return FileComparison(comparator, category, explanation, details, (), build_paths, truncated or cut)


class TextComparator(Comparator):
    """Any two texts: a unified diff."""

    name = "text"

    def recognizes(self, pair: FilePair) -> bool:
        return pair.kind_a in TEXT_KINDS and pair.kind_b in TEXT_KINDS

    def compare(self, pair: FilePair) -> FileComparison | None:
        return text_difference(pair, self.name, "text")


class BinaryComparator(Comparator):
    """The last resort: sizes, first differing offset, and paths among the printable strings."""

    name = "binary"

    def recognizes(self, pair: FilePair) -> bool:
        return True

    def compare(self, pair: FilePair) -> FileComparison:
        a, b = pair.data_a, pair.data_b
        first = first_difference(a, b)
        details = [f"size: {len(a)} vs {len(b)} bytes", f"first difference at byte offset {first}"]
        if pair.kind_a != pair.kind_b:
            details.insert(0, f"kind: {pair.kind_a} vs {pair.kind_b}")
        if len(a) == len(b) <= MAX_COUNTED_BYTES:
            differing = sum(1 for x, y in zip(a, b, strict=True) if x != y)
            details.append(f"{differing} byte(s) differ")
        strings_a = {m.decode("ascii") for m in _PRINTABLE.findall(a)}
        strings_b = {m.decode("ascii") for m in _PRINTABLE.findall(b)}
        build_paths = guess_build_paths(sorted(strings_a - strings_b), sorted(strings_b - strings_a))
        if pair.kind_a != pair.kind_b:
            category = "kind-changed"
            explanation = f"the file changed type: {pair.kind_a} in A, {pair.kind_b} in B"
            if pair.kind_a in ELF_KINDS or pair.kind_b in ELF_KINDS:
                explanation += " (one side is not a valid ELF file)"
        elif build_paths is not None and replaced_everywhere(pair, build_paths):
            category = "build-path"
            explanation = (
                f"binary content embeds build path {build_paths[0]} vs {build_paths[1]}; use a fixed build path"
            )
        else:
            category = "content"
            explanation = f"binary content differs from byte {first}"
            if build_paths is not None:
                explanation += f", more than the embedded build path {build_paths[0]} vs {build_paths[1]} accounts for"
        return FileComparison(self.name, category, explanation, tuple(details), (), build_paths)
