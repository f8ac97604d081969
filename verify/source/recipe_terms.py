"""The words a recipe is written in: signature kinds, the ways a path can differ, the comparator categories.

Plain data, shared by the recipe's values (:mod:`verify.source.recipes`) and its file format
(:mod:`verify.source.recipe_file`), so that neither imports the other's dependencies.
"""

from __future__ import annotations

import re
from typing import Final

RECIPE_SCHEMA: Final = 1
"""The ``schema`` this cpython-verify reads."""
SIGNATURE_KINDS: Final = ("openpgp", "sigstore")
INAPPLICABLE_NAME_RE: Final = re.compile(r"^[a-z][a-z_]{0,39}\Z")
"""A variation name under ``[build.profiles.<name>.inapplicable]``."""
FINGERPRINT_RE: Final = re.compile(r"^[0-9A-F]{40}$")
SERIES_RE: Final = re.compile(r"3\.[0-9]{1,2}", re.ASCII)
PLACEHOLDERS: Final = frozenset({"version", "base", "series", "filename"})
"""What a file name or URL template may name."""

# The compare stage's names for the ways a path can differ (verify.compare.model.CHANGES); repeated here
# as data so that recipes are validated without importing the comparison stage.
EXPECTABLE_CHANGES = ("only-in-a", "only-in-b", "type", "mode", "link-target", "content")
CONTENT_CHANGE = "content"
NONDETERMINISTIC = "nondeterministic"
"""The name under which a profile's :attr:`BuildProfile.nondeterministic` entry explains a difference: not
a variation, since such a difference appears between two builds that varied nothing."""
# The comparators' categories (verify.compare.model.CATEGORIES), as data for the same reason. A content
# difference is explained only when its category is one the entry names: the comparator's evidence must
# match the documented cause, whatever path the glob matches.
EXPECTABLE_CATEGORIES = (
    "debug-info",
    "build-id-only",
    "lto-random-seed",
    "build-path",
    "embedded-date",
    "embedded-date-and-path",
    "header-only",
    "reference-flags-only",
    "path-only",
    "whitespace",
)
"""Categories that name a cause leaving the code unchanged, each given only on the comparator's evidence."""
REAL_DIFFERENCE_CATEGORIES = (
    "code",
    "semantic",
    "content",
    "settings",
    "probed-features",
    "install-prefix",
    "source-hash",
    "stale-source-hash",
    "pyc-header",
    "kind-changed",
    "unreadable",
    "layout",
    "membership",
    "symbol-table",
    "mixed",
)
"""Categories of a real difference, or of one no comparator could show to be harmless: never expected.
A variation whose documented effect is such a difference does not apply to that profile
(``[build.profiles.<name>.inapplicable.<variation>]``)."""
