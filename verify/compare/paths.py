"""Find the two build paths behind a difference, from the strings that differ.

Two builds under ``/build/a`` and ``/build/b`` embed ``/build/a/Modules/_ssl.c`` and
``/build/b/Modules/_ssl.c``: strip the longest common suffix that starts at a path separator and what is
left is the pair of build paths. The most frequent pair wins; a packager can then act on it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from typing import Final

_PATH_TOKEN: Final = re.compile(r"(?:/[A-Za-z0-9_.+@~%-]+)+/?")
MAX_TOKENS: Final = 300
"""Per side: pairing is quadratic, and a few hundred differing paths are plenty to vote with."""


def path_tokens(strings: Iterable[str]) -> set[str]:
    """Absolute-path-looking substrings of ``strings`` (at most :data:`MAX_TOKENS`)."""
    found: set[str] = set()
    for text in strings:
        for match in _PATH_TOKEN.finditer(text):
            token = match.group(0).rstrip("/")
            if token.count("/") >= 1 and len(token) > 1:
                found.add(token)
                if len(found) >= MAX_TOKENS:
                    return found
    return found


def prefix_pair(a: str, b: str) -> tuple[str, str] | None:
    """The differing prefixes of two paths that share a suffix starting at ``/`` (or the whole paths)."""
    if a == b:
        return None
    common = 0
    limit = min(len(a), len(b))
    while common < limit and a[-1 - common] == b[-1 - common]:
        common += 1
    suffix = a[len(a) - common :] if common else ""
    # The shared suffix must begin at a component boundary: /build/xa vs /build/ya share "a", not a path.
    if suffix and not suffix.startswith("/"):
        slash = suffix.find("/")
        suffix = suffix[slash:] if slash >= 0 else ""
    prefix_a, prefix_b = a[: len(a) - len(suffix)], b[: len(b) - len(suffix)]
    if len(prefix_a) < 2 or len(prefix_b) < 2 or prefix_a == prefix_b:
        return None
    return prefix_a, prefix_b


def guess_build_paths(only_a: Iterable[str], only_b: Iterable[str]) -> tuple[str, str] | None:
    """The most likely (path in A, path in B) pair, from strings found only in A and only in B."""
    tokens_a, tokens_b = sorted(path_tokens(only_a)), sorted(path_tokens(only_b))
    votes: Counter[tuple[str, str]] = Counter()
    for token_a in tokens_a:
        for token_b in tokens_b:
            pair = prefix_pair(token_a, token_b)
            if pair is not None:
                # Longer shared suffixes and prefixes are stronger evidence than two unrelated paths:
                # /tmp/x/build-one vs /tmp/x/build-two share no suffix but a long prefix, while a stray
                # "/I" in binary data paired with anything shares next to nothing.
                shared_prefix = len(os.path.commonpath([token_a, token_b]))
                votes[pair] += 1 + (len(token_a) - len(pair[0])) + shared_prefix
    if not votes:
        return None
    best = max(votes.items(), key=lambda item: (item[1], -len(item[0][0]), item[0]))
    return best[0]


def most_common_pair(pairs: Iterable[tuple[str, str] | None]) -> tuple[str, str] | None:
    """The pair named most often (ties: shortest, then alphabetical), ignoring None."""
    votes = Counter(pair for pair in pairs if pair is not None)
    if not votes:
        return None
    return max(votes.items(), key=lambda item: (item[1], -len(item[0][0]), item[0]))[0]


def fix_hint(pair: tuple[str, str] | None) -> str:
    """The packager-facing sentence about a build-path pair."""
    if pair is None:
        return "build the two sides under the same build path"
    return f"build path {pair[0]} vs {pair[1]}; build both under one fixed path"
