"""Plumbing every stage shares, and nothing stage-specific: the error roots (and their exit codes),
file-system helpers (atomic writes, bounded reads, digests), bounded JSON, limits, locks and staging,
progress output, fault-injection points, signal handling, the cache checker and the text-line helpers.

Nothing here imports a stage (``tests/test_layout.py`` keeps it so).
"""
