"""Download progress, as the HTTP client sees it: the process's one progress display (:mod:`verify.common.progress`)."""

from __future__ import annotations

from verify.common.progress import NoProgress, ProgressReporter, RichProgress, default_progress

__all__ = ["NoProgress", "ProgressReporter", "RichProgress", "default_progress"]
