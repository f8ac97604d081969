"""A quilt patch series (a Debian source package's ``debian/patches/``), parsed into hunks. Pure.

Only what attribution needs is kept: for each patch, the files it touches (paths with the first
component stripped, as quilt's ``-p1``) and each hunk's old and new lines. A patch that names a path
outside the source tree (absolute, ``..``) is refused: it has no business in a series that is applied
to a tree, and the audit must not be led to read files by it.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

from verify.common.errors import OperationalError

MAX_PATCHES: Final = 2000
MAX_PATCH_BYTES: Final = 16 * 1024 * 1024
_HUNK_RE: Final = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DEV_NULL: Final = "/dev/null"


class PatchError(OperationalError):
    """A series or patch that cannot be used: malformed, too large, or naming a path outside the tree."""


@dataclass(frozen=True, slots=True)
class Hunk:
    """One ``@@`` block: the lines it expects (context and removals) and the lines it leaves."""

    old_start: int
    """1-based line of the old side (0 for a new file)."""
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilePatch:
    """What one patch does to one file."""

    path: str
    """Relative to the source tree, e.g. ``Lib/venv/scripts/common/activate``."""
    hunks: tuple[Hunk, ...]
    creates: bool = False
    deletes: bool = False


@dataclass(frozen=True, slots=True)
class Patch:
    """One patch of the series, by its name in ``series``."""

    name: str
    files: tuple[FilePatch, ...]


def text_lines(text: str) -> list[str]:
    """Lines split at ``\\n`` only: ``str.splitlines`` would also split at form feeds, which stdlib files contain."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_series(text: str) -> list[str]:
    """Patch names from a quilt ``series`` file: comments and per-patch options (``-p1``) dropped."""
    names: list[str] = []
    for line in text_lines(text):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split()[0]
        _check_relative(name, "series", "patch name")
        names.append(name)
    if len(names) > MAX_PATCHES:
        raise PatchError(f"series: {len(names)} patches, more than the limit of {MAX_PATCHES}")
    return names


def _check_relative(path: str, where: str, what: str) -> str:
    """``path`` normalized; :class:`PatchError` if it is absolute or climbs out with ``..``."""
    if not path or "\x00" in path or path.startswith("/") or "\\" in path:
        raise PatchError(f"{where}: refused {what} {path!r}: absolute, empty or odd path")
    normal = posixpath.normpath(path)
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise PatchError(f"{where}: refused {what} {path!r}: points outside the source tree")
    return normal


def _header_path(raw: str, where: str) -> str | None:
    """The ``---``/``+++`` header's path with its first component stripped; None for ``/dev/null``."""
    path = raw.split("\t", 1)[0].strip()
    if path == _DEV_NULL:
        return None
    if path.startswith("/"):
        raise PatchError(f"{where}: refused path {path!r}: absolute")
    for part in path.split("/"):
        if part == "..":
            raise PatchError(f"{where}: refused path {path!r}: points outside the source tree")
    stripped = path.split("/", 1)[1] if "/" in path else path
    return _check_relative(stripped, where, "path")


def parse_patch(name: str, text: str) -> Patch:
    """Parse one unified diff (plain, quilt or ``git format-patch``); the description before it is ignored."""
    lines = text_lines(text)
    files: list[FilePatch] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not (line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ ")):
            index += 1
            continue
        old_path = _header_path(line[4:], name)
        new_path = _header_path(lines[index + 1][4:], name)
        index += 2
        hunks: list[Hunk] = []
        while index < len(lines):
            match = _HUNK_RE.match(lines[index])
            if match is None:
                break
            old_count = int(match.group(2)) if match.group(2) is not None else 1
            new_count = int(match.group(4)) if match.group(4) is not None else 1
            index += 1
            old: list[str] = []
            new: list[str] = []
            while (len(old) < old_count or len(new) < new_count) and index < len(lines):
                body = lines[index]
                index += 1
                if body.startswith("\\"):
                    continue  # "\ No newline at end of file"
                marker, content = (body[:1], body[1:]) if body else (" ", "")
                if marker == " ":
                    old.append(content)
                    new.append(content)
                elif marker == "-":
                    old.append(content)
                elif marker == "+":
                    new.append(content)
                else:
                    raise PatchError(f"{name}: malformed hunk line {index}: {body[:60]!r}")
            if len(old) != old_count or len(new) != new_count:
                raise PatchError(f"{name}: hunk at line {index} is truncated")
            while index < len(lines) and lines[index].startswith("\\"):
                index += 1
            hunks.append(Hunk(int(match.group(1)), tuple(old), tuple(new)))
        path = new_path or old_path
        if path is None:
            raise PatchError(f"{name}: a diff from /dev/null to /dev/null")
        files.append(FilePatch(path, tuple(hunks), creates=old_path is None, deletes=new_path is None))
    return Patch(name, tuple(files))


def _find(haystack: list[str], needle: tuple[str, ...], expected: int) -> int | None:
    """Where ``needle`` occurs in ``haystack`` as a block, nearest to ``expected`` (patch's offset rule)."""
    if not needle:
        return max(0, min(expected, len(haystack)))
    first = needle[0]
    best: int | None = None
    for start in range(len(haystack) - len(needle) + 1):
        if (
            haystack[start] == first
            and tuple(haystack[start : start + len(needle)]) == needle
            and (best is None or abs(start - expected) < abs(best - expected))
        ):
            best = start
    return best


@dataclass(frozen=True, slots=True)
class Attribution:
    """How far a series of patches goes towards turning the upstream file into the installed one."""

    patched: tuple[str, ...]
    """The upstream lines with every patch applied that brings them closer to the installed file."""
    patches: tuple[str, ...]
    """Names of the patches that were applied, in series order."""


MAX_SEARCH_LEAVES: Final = 512
"""Combinations of patches tried for one file before falling back to the best single choices."""


class _Distance:
    """Lines to add plus lines to remove to turn a candidate into the fixed installed text, as multisets.

    Order is ignored: hunks are placed by their context, so what decides between candidates is which
    lines they hold. Counting is linear, where a sequence diff of a 3,000-line module per candidate
    made the search the audit's slowest part; the final verdict is an exact comparison.
    """

    def __init__(self, installed: list[str]) -> None:
        self._installed = Counter(installed)

    def __call__(self, candidate: list[str]) -> int:
        have = Counter(candidate)
        return sum((have - self._installed).values()) + sum((self._installed - have).values())


def _apply_hunk(current: list[str], hunk: Hunk, shift: int) -> tuple[list[str], int] | None:
    at = _find(current, hunk.old, max(hunk.old_start - 1 + shift, 0))
    if at is None:
        return None
    result = list(current)
    result[at : at + len(hunk.old)] = hunk.new
    return result, shift + len(hunk.new) - len(hunk.old)


def _apply(current: list[str], file_patch: FilePatch) -> list[str] | None:
    """``current`` with every hunk of ``file_patch`` applied (nearest offset, no fuzz); None if one does not apply."""
    if file_patch.creates:
        return list(file_patch.hunks[0].new) if file_patch.hunks and not current else None
    result, shift = list(current), 0
    for hunk in file_patch.hunks:
        applied = _apply_hunk(result, hunk, shift)
        if applied is None:
            return None
        result, shift = applied
    return result


def _apply_helpful(current: list[str], file_patch: FilePatch, distance: _Distance) -> list[str] | None:
    """``current`` with those hunks of ``file_patch`` applied that each bring it closer; None if none does."""
    if file_patch.creates:
        return None
    result, shift, taken = list(current), 0, False
    score = distance(result)
    for hunk in file_patch.hunks:
        applied = _apply_hunk(result, hunk, shift)
        if applied is None:
            continue
        candidate_score = distance(applied[0])
        if candidate_score < score:
            (result, shift), score, taken = applied, candidate_score, True
    return result if taken else None


def attribute(upstream: list[str], installed: list[str], patches: list[tuple[str, FilePatch]]) -> Attribution:
    """The patches (in series order) whose hunks, applied, come closest to ``installed``.

    Each patch is skipped, applied whole (every hunk where ``patch`` with no fuzz would put it), or
    applied in part (the hunks that each bring the text closer). A series may be newer than the
    installation — a later security update adds patches, or hunks to a patch — and what the
    installation does not have must not count for or against it. The combinations are searched
    exhaustively up to :data:`MAX_SEARCH_LEAVES`, then greedily.
    """
    distance = _Distance(installed)
    best: tuple[int, int, list[str], tuple[str, ...]] = (distance(upstream), 0, list(upstream), ())
    leaves = 0

    def search(index: int, current: list[str], used: tuple[str, ...], greedy: bool) -> None:
        nonlocal best, leaves
        if index == len(patches):
            leaves += 1
            score = distance(current)
            if (score, len(used)) < best[:2]:
                best = (score, len(used), current, used)
            return
        name, file_patch = patches[index]
        options: list[tuple[list[str], tuple[str, ...]]] = [(current, used)]
        whole = _apply(current, file_patch)
        if whole is not None:
            options.append((whole, used if name in used else (*used, name)))
        partial = _apply_helpful(current, file_patch, distance)
        if partial is not None and partial != whole:
            options.append((partial, used if name in used else (*used, name)))
        if greedy or leaves >= MAX_SEARCH_LEAVES:
            options = [min(options, key=lambda option: (distance(option[0]), len(option[1])))]
        for text, names in options:
            if best[0] == 0:
                return
            search(index + 1, text, names, greedy or leaves >= MAX_SEARCH_LEAVES)

    # The plain series first: when the installation is exactly this series, that is the answer.
    plain = list(upstream)
    plain_used: list[str] = []
    for name, file_patch in patches:
        applied = _apply(plain, file_patch)
        if applied is not None:
            plain = applied
            if name not in plain_used:
                plain_used.append(name)
    if plain == installed:
        return Attribution(tuple(plain), tuple(plain_used))
    search(0, list(upstream), (), False)
    return Attribution(tuple(best[2]), best[3])
