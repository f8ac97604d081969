"""``.pyc`` files: the header, the marshal representation, and the code, told apart by ``verify.pyc``."""

from __future__ import annotations

from typing import Final

from verify.compare.comparators.interface import Comparator, Declined, FilePair, capped
from verify.compare.model import FileComparison
from verify.compare.paths import guess_build_paths
from verify.manifest import PYC
from verify.pyc import PycError, compare_pyc, load_pyc, parse_header
from verify.pyc.compare import equal_with_replaced_path, string_constants
from verify.pyc.header import LEGACY_CODE_LAYOUT_SERIES

_ADVICE: Final = {
    "header-only": "set SOURCE_DATE_EPOCH so compileall writes hash-based headers, or give the sources equal mtimes",
    "reference-flags-only": "marshal's reference flags follow reference counts (CPython #78274/#98819); compile "
    "the .pyc files exactly as the Makefile does (same compileall -j and order); a free-threaded build's marshal "
    "follows object ownership too and differs from run to run even so (CPython gh-129724)",
    "path-only": "compile with the same install path/DESTDIR (compileall -d / -s)",
    "semantic": "a real difference in the source or the compiler",
    "build-path": "the module records the directory it was built in (sysconfigdata does); use a fixed build path",
    "source-hash": "compare the .py sources: the hash is of the source, so either the sources differ or one .pyc "
    "no longer matches its source (a checked-hash .pyc is then recompiled or ignored by CPython; an "
    "unchecked-hash one is used as it is)",
}


class PycComparator(Comparator):
    """Header, reference-flag, path and code differences of two ``.pyc`` files."""

    name = "pyc"

    def recognizes(self, pair: FilePair) -> bool:
        return pair.kind_a == PYC and pair.kind_b == PYC

    def compare(self, pair: FilePair) -> FileComparison | Declined | None:
        try:
            result = compare_pyc(pair.data_a, pair.data_b)
        except PycError as error:
            # Unreadable code: the byte comparator says where the bytes differ, this says why.
            return Declined(f"unreadable .pyc: {error.message}")
        if result.category == "identical":
            # Equal bytes are no difference to classify (the engine only asks about differing files).
            return Declined("the two .pyc are byte-identical")
        code_lines: list[str] = []
        filenames_a: list[str] = []
        filenames_b: list[str] = []
        for difference in result.code_differences:
            code_lines.append(f"{difference.path}: {difference.field}")
            code_lines.extend(f"  {line}" for line in difference.detail)
            if difference.field == "filename" and len(difference.detail) >= 2:
                filenames_a.append(difference.detail[0])
                filenames_b.append(difference.detail[1])
        lines, truncated = capped([*result.header_differences, *code_lines])
        build_paths = guess_build_paths(filenames_a, filenames_b) if filenames_a else None
        explanation = result.explanation
        if result.category == "header-only" and result.header_differences:
            explanation += f" ({'; '.join(result.header_differences)})"
        elif result.header_differences:
            explanation += f"; the header differs too ({'; '.join(result.header_differences)})"
        if build_paths is not None:
            explanation += f"; paths {build_paths[0]} vs {build_paths[1]}"
        category: str = result.category
        replaced = _replaced_path(pair) if category == "semantic" else None
        if replaced is not None:
            category, build_paths = "build-path", replaced
            explanation = (
                f"the code is equal once {replaced[0]} is replaced by {replaced[1]} in its strings: only an "
                "embedded path differs"
            )
            if result.header_differences:
                explanation += f"; the header differs too ({'; '.join(result.header_differences)})"
        hashes = _source_hashes(pair) if category == "header-only" else None
        if hashes is not None:
            # Both .pyc are already hash-based, so SOURCE_DATE_EPOCH changes nothing: the hashes are of the
            # sources, and differing hashes mean the sources differ (or one .pyc is stale for its source).
            category = "source-hash"
            explanation = (
                f"the marshalled code is byte-identical, but the {hashes} .pyc record different source "
                f"hashes ({'; '.join(result.header_differences)})"
            )
        advice = _ADVICE.get(category)
        if advice:
            explanation += f": {advice}"
        return FileComparison("pyc", category, explanation, lines, (), build_paths, truncated or result.truncated)


def _source_hashes(pair: FilePair) -> str | None:
    """``checked-hash`` / ``unchecked-hash`` when both headers are hash-based with different hashes; else None."""
    try:
        header_a, header_b = parse_header(pair.data_a), parse_header(pair.data_b)
    except PycError:
        return None
    hash_kinds = ("checked-hash", "unchecked-hash")
    if header_a.kind in hash_kinds and header_b.kind in hash_kinds and header_a.source_hash != header_b.source_hash:
        return header_a.kind if header_a.kind == header_b.kind else "hash-based"
    return None


def _replaced_path(pair: FilePair) -> tuple[str, str] | None:
    """The (A, B) path pair when B's code is A's with that path replaced in every string, else None.

    The pair is guessed from the strings only one side holds, then proven by comparing the whole code
    trees with the replacement applied (:func:`verify.pyc.compare.equal_with_replaced_path`).
    """
    try:
        left, right = load_pyc(pair.data_a), load_pyc(pair.data_b)
    except PycError:
        return None
    if left.header.magic != right.header.magic:
        return None
    strings_a, strings_b = string_constants(left.code), string_constants(right.code)
    if strings_a is None or strings_b is None:
        return None
    guessed = guess_build_paths(sorted(strings_a - strings_b), sorted(strings_b - strings_a))
    columns = left.header.python_version not in LEGACY_CODE_LAYOUT_SERIES
    if guessed is None or not equal_with_replaced_path(left.code, right.code, *guessed, columns_in_linetable=columns):
        return None
    return guessed
