"""Line diffs with bounded work, for text, configuration and bytecode listings from untrusted files.

``difflib.SequenceMatcher`` without its autojunk heuristic is cubic in the worst case: two 2,000-line files
of alternating lines took 87 seconds. With autojunk it is fast but drops every line that is more than 1% of
the input, which is most of a bytecode listing. :class:`BoundedMatcher` keeps difflib's interface and
output format and bounds the work instead:

1. lines shared at the start and end of a region match (cheap, and most of any real difference);
2. a region small enough (:data:`~verify.common.limits.DIFF_MAX_EXACT_CELLS`) is handed to difflib's exact matcher;
3. a larger region is split at the lines that occur exactly once on each side and keep their order (the
   "patience" anchors, a longest increasing subsequence), and each gap is treated the same way;
4. once :data:`~verify.common.limits.DIFF_MAX_WORK` line visits are spent, what is left is shown as replaced.

The result is always a correct diff (every line is kept, removed or added); only its minimality is given up
on hostile input.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from verify.common.limits import DIFF_MAX_EXACT_CELLS, DIFF_MAX_WORK


class BoundedMatcher(difflib.SequenceMatcher[Any]):
    """A ``difflib.SequenceMatcher`` over two sequences of hashable lines whose matching work is bounded."""

    def __init__(self, a: Sequence[Hashable], b: Sequence[Hashable], *, max_work: int = DIFF_MAX_WORK) -> None:
        """Match ``a`` against ``b`` spending at most about ``max_work`` line visits."""
        self._max_work = max_work
        self._lines_a, self._lines_b = a, b
        self._bounded_blocks: list[difflib.Match] | None = None
        self.work_spent = 0
        """Line visits spent so far (after :meth:`get_matching_blocks`), to charge a caller's own budget."""
        super().__init__(None, a, b, autojunk=False)

    def get_matching_blocks(self) -> list[difflib.Match]:
        """Matching blocks as difflib returns them: sorted, merged, ending with ``(len(a), len(b), 0)``."""
        if self._bounded_blocks is not None:
            return self._bounded_blocks
        found, left = _blocks(self._lines_a, self._lines_b, self._max_work)
        self.work_spent = self._max_work - max(left, 0)
        merged: list[difflib.Match] = []
        for i, j, size in sorted(found):
            if merged and merged[-1].a + merged[-1].size == i and merged[-1].b + merged[-1].size == j:
                last = merged[-1]
                merged[-1] = difflib.Match(last.a, last.b, last.size + size)
            else:
                merged.append(difflib.Match(i, j, size))
        merged.append(difflib.Match(len(self._lines_a), len(self._lines_b), 0))
        self._bounded_blocks = merged
        return merged


def _blocks(a: Sequence[Hashable], b: Sequence[Hashable], budget: int) -> tuple[list[tuple[int, int, int]], int]:
    """Matching (i, j, size) blocks, unsorted, and the budget left; iterative, so nesting cannot exhaust the stack."""
    out: list[tuple[int, int, int]] = []
    pending = [(0, len(a), 0, len(b))]
    while pending:
        alo, ahi, blo, bhi = pending.pop()
        budget -= (ahi - alo) + (bhi - blo)
        if budget < 0:
            continue  # out of budget: the rest of this region is shown as replaced
        prefix = 0
        while alo + prefix < ahi and blo + prefix < bhi and a[alo + prefix] == b[blo + prefix]:
            prefix += 1
        if prefix:
            out.append((alo, blo, prefix))
            alo, blo = alo + prefix, blo + prefix
        suffix = 0
        while alo < ahi - suffix and blo < bhi - suffix and a[ahi - 1 - suffix] == b[bhi - 1 - suffix]:
            suffix += 1
        if suffix:
            out.append((ahi - suffix, bhi - suffix, suffix))
            ahi, bhi = ahi - suffix, bhi - suffix
        if alo == ahi or blo == bhi:
            continue
        cells = (ahi - alo) * (bhi - blo)
        if cells <= DIFF_MAX_EXACT_CELLS:
            budget -= cells
            if budget < 0:
                continue
            exact = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            out.extend((alo + i, blo + j, size) for i, j, size in exact.get_matching_blocks() if size)
            continue
        anchors = _anchors(a, b, alo, ahi, blo, bhi)
        if not anchors:
            continue  # nothing pins the two regions together: replaced
        previous_i, previous_j = alo, blo
        for i, j in anchors:
            out.append((i, j, 1))
            pending.append((previous_i, i, previous_j, j))
            previous_i, previous_j = i + 1, j + 1
        pending.append((previous_i, ahi, previous_j, bhi))
    return out, budget


def _anchors(
    a: Sequence[Hashable], b: Sequence[Hashable], alo: int, ahi: int, blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Lines unique on both sides, in an order both sides agree on (longest increasing subsequence)."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    # Patience sorting: tails[k] is the smallest j ending an increasing run of length k + 1.
    tails: list[int] = []
    tail_index: list[int] = []
    previous: list[int] = []
    for index, (_i, j) in enumerate(pairs):
        position = bisect.bisect_left(tails, j)
        if position == len(tails):
            tails.append(j)
            tail_index.append(index)
        else:
            tails[position] = j
            tail_index[position] = index
        previous.append(tail_index[position - 1] if position else -1)
    chain: list[tuple[int, int]] = []
    cursor = tail_index[-1] if tail_index else -1
    while cursor >= 0:
        chain.append(pairs[cursor])
        cursor = previous[cursor]
    chain.reverse()
    return chain


def _range(start: int, stop: int) -> str:
    # difflib's unified range format: "start,length", 1-based; an empty range names the line before it.
    beginning, length = start + 1, stop - start
    if length == 1:
        return str(beginning)
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def unified_diff(
    a: Sequence[str], b: Sequence[str], from_name: str, to_name: str, *, context: int = 3
) -> Iterator[str]:
    """``difflib.unified_diff(a, b, from_name, to_name, n=context, lineterm="")`` with bounded work."""
    started = False
    for group in BoundedMatcher(a, b).get_grouped_opcodes(context):
        if not started:
            started = True
            yield f"--- {from_name}"
            yield f"+++ {to_name}"
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in a[i1:i2])
                continue
            if tag in ("replace", "delete"):
                yield from ("-" + line for line in a[i1:i2])
            if tag in ("replace", "insert"):
                yield from ("+" + line for line in b[j1:j2])
