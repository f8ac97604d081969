"""Resource budgets for every parser of untrusted bytes, in one place.

Files reach cpython-verify from peer trees, audited images, mirrors and attestations: any of them can be
hostile. Each parser below refuses input beyond its budget with a one-line error (or, for the comparators,
falls back to comparing bytes), so a small file can never cost gigabytes of memory or minutes of CPU.
``docs/limits.md`` has one table with every budget, what it bounds and why the value was chosen; a test keeps
that table and this module in step. Budgets that predate this module stay beside their parsers and are listed
in the same table.
"""

from __future__ import annotations

from typing import Final

# -- .pyc / marshal (verify/pyc/) -------------------------------------------------------------------------
PYC_MAX_BYTES: Final = 32 << 20
"""A ``.pyc`` file: the largest real ones (pydoc topics, mypy's checker) are under 1 MiB."""
PYC_MAX_DEPTH: Final = 2000
"""Nesting of marshalled objects: CPython's own MAX_MARSHAL_STACK_DEPTH on Linux."""
PYC_MAX_OBJECTS: Final = 2_000_000
"""Objects in one ``.pyc``: real files hold under 20,000; each costs ~100 bytes of reader memory."""
PYC_MAX_LONG_DIGITS: Final = 1 << 16
"""15-bit digits of one marshalled int (~296,000 decimal digits): compilers refuse decimal literals past
4,300 digits, so only a giant hex literal comes near."""
PYC_MAX_LISTING_WORK: Final = 2_000_000
"""Instructions decoded plus diff work for the bytecode listings of one ``.pyc`` comparison; past it the
remaining code objects are named as different without a listing."""

# -- ELF (verify/compare/comparators/elf.py, archive.py) ---------------------------------------------------
ELF_MAX_FILE_BYTES: Final = 512 << 20
"""An ELF file parsed section by section: a debug build of ``python3.13`` is ~30 MiB."""
ELF_MAX_SECTIONS: Final = 16_384
"""Sections of one ELF file: CPython's objects have under 200; extended numbering allows 2**32."""
ELF_MAX_SECTION_BYTES: Final = 64 << 20
"""One section after decompression (SHF_COMPRESSED or ``.zdebug_*``): ``.debug_info`` of libpython is ~15 MiB."""
ELF_MAX_DECOMPRESSED_BYTES: Final = 256 << 20
"""All compressed sections of one ELF file (or of all members of one ``ar`` archive), decompressed."""
ELF_MAX_SYMBOLS: Final = 1 << 20
"""Static symbols of one ELF file compared symbol by symbol: an unstripped ``python3.13`` has ~15,000."""

# -- ar archives (verify/compare/comparators/archive.py) ---------------------------------------------------
AR_MAX_MEMBERS: Final = 65_536
"""Members of one static archive: ``libpython3.13.a`` has ~420."""
AR_MAX_NAME_BYTES: Final = 1024
"""One member name read from the GNU ``//`` long-name table (the search for its end stops here)."""

# -- configuration text (verify/compare/comparators/config.py) ---------------------------------------------
SYSCONFIGDATA_MAX_BYTES: Final = 256 << 10
"""A ``_sysconfigdata*.py`` parsed with ``ast``: real ones are ~45-60 KiB; ``ast`` needs ~500 bytes of
memory per source byte on hostile input."""
CONFIG_TEXT_MAX_BYTES: Final = 4 << 20
"""The installed ``Makefile`` or ``pyconfig.h`` read key by key: real ones are ~150 KiB and ~50 KiB."""

# -- line diffs (verify/common/linediff.py: text, config and bytecode diffs) --------------------------------------
DIFF_MAX_WORK: Final = 2_000_000
"""Line visits of one bounded diff; past it, the rest is shown as replaced rather than aligned."""
DIFF_MAX_EXACT_CELLS: Final = 10_000
"""Largest region (lines A x lines B) handed to difflib's exact matcher, which is cubic in the worst case."""
AUDIT_DIFF_MAX_LINES_PER_FILE: Final = 200
"""Lines of the unified diff the audit keeps for one unexplained file; the report says how many it cut."""
AUDIT_DIFF_MAX_LINES: Final = 5_000
"""Lines of unified diff the audit keeps in all; later unexplained files say their diff was not kept."""

# -- JSON documents (verify/common/jsonutil.py) -------------------------------------------------------------------
JSON_MAX_DEPTH: Final = 64
"""Nesting of any JSON document read (bundles, DSSE, release metadata, manifests, plans, audited images'
index and manifests): the formats read here nest under 10 levels."""
SIGSTORE_MAX_BUNDLE_BYTES: Final = 1 << 20
"""A Sigstore bundle: real ones are 5-10 KiB."""
PLAN_MAX_BYTES: Final = 16 << 20
"""A plan (``plan`` output) or a ``releases --json`` file read by ``plan`` and ``merge``: a few KiB each."""
PGO_TRAINING_MAX_BYTES: Final = 64 << 10
"""The training record inside a ``pgo-profile.tar`` (``cpython-verify-pgo.json``): real ones are under 1 KiB."""

# -- recipes (verify/source/recipes.py) ---------------------------------------------------------------------------
RECIPE_MAX_BYTES: Final = 256 << 10
"""A recipe file: real ones are ~2 KiB."""

# -- the status page site (verify/site/status_site.py, ``merge``) -----------------------------------------------
STATUS_MAX_BYTES: Final = 64 << 20
"""The previous site's ``status.json``, read back so ``merge`` can add to it: a night of a few dozen rows with
their differences is well under 1 MiB."""
STATUS_HISTORY_MAX_RUNS: Final = 100
"""Earlier runs kept per row page (about three months of nights); older ones are dropped, newest kept."""
STATUS_MANIFEST_MAX_BYTES: Final = 64 << 20
"""A manifest published beside an attestation and copied into the site: an install tree's is ~2 MiB."""
STATUS_COMPARE_HTML_MAX_BYTES: Final = 32 << 20
"""A ``compare --html`` report published beside an attestation: real ones are well under 1 MiB."""
STATUS_LOG_MAX_BYTES: Final = 8 << 20
"""One build log copied into the site (head and tail kept): the rebuild's own cap per phase log."""
STATUS_MAX_LOGS: Final = 64
"""Log files copied per attestation: a rebuild writes one per phase, about ten."""

# -- locks (verify/common/locking.py; ``$CPYTHON_VERIFY_LOCK_TIMEOUT`` overrides both) -----------------------------
BUILD_LOCK_TIMEOUT_SECONDS: Final = 4 * 3600
"""Seconds a run waits for another run that is building (or checking) the same rebuild cache entry or
rootfs: a 3.13.5 PGO+LTO build took ~13 min on an idle 2-core machine, several times that when loaded."""
PUBLISH_LOCK_TIMEOUT_SECONDS: Final = 600
"""Seconds a run waits for another that is replacing the same result directory or status site: a
publication is seconds of hard links and copies."""
